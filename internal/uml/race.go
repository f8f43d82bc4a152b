//go:build race

package uml

// raceEnabled: ThreadSanitizer cannot map its shadow memory inside UML's smaller address space, so a race
// build cannot run in the guest (see testBinary).
const raceEnabled = true

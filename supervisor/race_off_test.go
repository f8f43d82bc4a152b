//go:build !race

package supervisor

// raceEnabled says the race detector is on: it makes the daemon several times slower, so load tests size
// themselves down to stay within their time.
const raceEnabled = false

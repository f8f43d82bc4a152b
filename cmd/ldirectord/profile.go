package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
)

// startProfile starts a CPU profile when LDIRECTORD_CPUPROFILE names a file, for the benchmarks of
// docs/benchmarks.md: the profile of the daemon as operators run it, not of a test harness. The returned
// stop writes it; LDIRECTORD_CPUPROFILE_FOR (a duration) stops it that long after the start instead, for
// the profile of the start alone.
func startProfile() (stop func()) {
	var cpu *os.File
	if path := os.Getenv("LDIRECTORD_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			cpu = f
		}
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if cpu != nil {
				pprof.StopCPUProfile()
				cpu.Close()
			}
		})
	}
	if d, err := time.ParseDuration(os.Getenv("LDIRECTORD_CPUPROFILE_FOR")); err == nil && cpu != nil {
		time.AfterFunc(d, stop)
	}
	return stop
}

// heapProfile writes a heap profile to LDIRECTORD_MEMPROFILE when that names a file: called when the
// daemon is told to stop, before it stops anything, so the profile shows what the running daemon holds.
func heapProfile() {
	if path := os.Getenv("LDIRECTORD_MEMPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			runtime.GC()
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
}

// releasePoll is how often releaseAfterStart looks whether the daemon has finished starting.
const releasePoll = 100 * time.Millisecond

// releaseAfterStart gives the memory that loading the config and the first round of checks used back to
// the system once r is running (or ctx ends first), rather than at the pace of the runtime's background
// scavenger: the garbage of a start is several times the daemon's steady heap. A runner that cannot say
// its phase is left alone.
func releaseAfterStart(ctx context.Context, r runner) {
	p, ok := r.(interface{ Phase() config.AlertStatus })
	if !ok {
		return
	}
	t := time.NewTicker(releasePoll)
	defer t.Stop()
	for p.Phase() != config.StatusRunning {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	debug.FreeOSMemory()
}

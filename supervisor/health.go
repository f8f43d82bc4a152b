package supervisor

import "fmt"

// Health is what the supervisor knows about a real server.
type Health int

// Health states. Unknown is a real that has not been checked yet and was not found serving in the kernel
// table at start or reload: it is neither added nor removed until its first check decides.
const (
	Unknown Health = iota
	Up
	Down
)

func (h Health) String() string {
	switch h {
	case Unknown:
		return "unknown"
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return fmt.Sprintf("Health(%d)", int(h))
}

// health is the failurecount/successcount state machine of one check, ldirectord's `failcount` plus the
// successcount extension. It is a plain value: the check loop feeds it results and acts on what it says.
type health struct {
	state Health
	// fails is ldirectord's failcount: consecutive failures while up (the soft failures), and at least 1
	// while down, so that the next up transition logs "Resetting soft failure count" as ldirectord does.
	fails int
	// oks counts consecutive successes while not up (successcount).
	oks int

	failureCount, successCount int

	// What the last step did, for the log: soft is n of "failure n/N" (0 for none), reset says the failure
	// count went back to 0 ("Resetting soft failure count").
	soft  int
	reset bool
}

func newHealth(state Health, failureCount, successCount int) health {
	h := health{state: state, failureCount: max(failureCount, 1), successCount: max(successCount, 1)}
	if state == Down {
		h.fails = 1
	}
	return h
}

// observe takes one check result (nil = healthy) and reports whether the state changed.
//
// Up goes down on the failurecount-th consecutive failure; failures 1..N-1 are soft. A down (or unknown)
// real comes up after successcount consecutive successes. Failures of a real that is already down are not
// counted, as in ldirectord. An unknown real goes down on its first failure: it was never up, so there is
// nothing to be soft about.
func (h *health) observe(err error) (changed bool) {
	h.soft, h.reset = 0, false
	if err == nil {
		if h.state == Up {
			if h.fails > 0 {
				h.fails, h.reset = 0, true
			}
			return false
		}
		h.oks++
		if h.oks < h.successCount {
			return false
		}
		h.state, h.fails, h.oks, h.reset = Up, 0, 0, true
		return true
	}
	h.oks = 0
	switch h.state {
	case Up:
		h.fails++
		if h.fails < h.failureCount {
			h.soft = h.fails
			return false
		}
		h.state = Down
		return true
	case Unknown:
		h.state, h.fails = Down, 1
		return true
	}
	return false
}

// forceDown takes the real down with no check and no failurecount (maintenancedir), as ldirectord's forced
// service_set(down) does: the failure count still rises.
func (h *health) forceDown() (changed bool) {
	h.soft, h.reset = 0, false
	h.oks = 0
	h.fails++
	if h.state == Down {
		return false
	}
	h.state = Down
	return true
}

package compare

import (
	"fmt"
	"sync"
	"time"
)

// monitor polls the kernel table every 100 ms from a daemon's start: when every healthy real is in, when
// the victim leaves after it started hanging, and every healthy real that left or hanging real that
// entered (each a problem: the first lies about a working server, the second about a dead one).
type monitor struct {
	t0      time.Time
	healthy int
	stopc   chan struct{}
	done    chan struct{}

	mu         sync.Mutex
	in         map[dest]bool // the table at the last poll
	seen       map[dest]bool // ever in the table
	nHealthy   int           // healthy reals in the table at the last poll
	convergeAt time.Time
	hangAt     time.Time
	goneAt     time.Time
	errs       []string
	dropped    int
	removed    int      // healthy reals that left the table (the victim only before it hangs)
	removals   []string // the first 50 of those events
	// onRemoval, when set, is run once, in a goroutine, when a healthy real first leaves the table: the
	// daemon's own account while those reals are still out (ldirectord show), in removalDiag.
	onRemoval   func() string
	removalDiag chan string
}

func watch(t0 time.Time, onRemoval func() string) *monitor {
	m := &monitor{t0: t0, stopc: make(chan struct{}), done: make(chan struct{}), seen: map[dest]bool{}, onRemoval: onRemoval}
	kind := map[dest]real{}
	for _, r := range reals() {
		kind[dest{r.virtual(), r.addr()}] = r
		if !r.hangs() {
			m.healthy++
		}
	}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			m.poll(kind)
			select {
			case <-m.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *monitor) poll(kind map[dest]real) {
	tab, err := readIPVS()
	if err == nil {
		// /proc/net/ip_vs is read in several chunks: a change between two of them can hide entries
		// that did not move. A real missing from one read counts only when a second read confirms it.
		var missing []dest
		for d := range m.in { // m.in is written only by this goroutine
			if !tab[d] {
				missing = append(missing, d)
			}
		}
		if len(missing) > 0 {
			again, err2 := readIPVS()
			err = err2
			for _, d := range missing {
				if again[d] {
					tab[d] = true
				}
			}
		}
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.problem("read the kernel table: %v", err)
		return
	}
	at := now.Sub(m.t0).Round(time.Millisecond)
	n := 0
	for d := range tab {
		r, ok := kind[d]
		switch {
		case !ok:
			m.problem("%v: %s (%s) is in the table but not in the config", at, d.addr, d.virtual)
		case r.hangs() && !m.seen[d]:
			m.problem("%v: hanging real %s (%s) added to the table", at, d.addr, d.virtual)
		case !r.hangs():
			n++
		}
		m.seen[d] = true
	}
	for d := range m.in {
		r := kind[d]
		if !tab[d] && !r.hangs() && !(r == victim && !m.hangAt.IsZero()) {
			if m.removed++; m.removed == 1 && m.onRemoval != nil {
				m.removalDiag = make(chan string, 1)
				go func(f func() string, c chan string) { c <- f() }(m.onRemoval, m.removalDiag)
			}
			if len(m.removals) < 50 {
				m.removals = append(m.removals, fmt.Sprintf("%v: healthy real %s (%s) removed from the table", at, d.addr, d.virtual))
			}
		}
	}
	m.nHealthy = n
	if m.convergeAt.IsZero() && n == m.healthy {
		m.convergeAt = now
	}
	vd := dest{victim.virtual(), victim.addr()}
	if !m.hangAt.IsZero() && m.goneAt.IsZero() && !tab[vd] {
		m.goneAt = now
	}
	m.in = tab
}

// removalAccount is what onRemoval said when a healthy real first left the table ("" when none left or
// it says nothing within 30 s).
func (m *monitor) removalAccount() string {
	m.mu.Lock()
	c := m.removalDiag
	m.mu.Unlock()
	if c == nil {
		return ""
	}
	select {
	case s := <-c:
		return s
	case <-time.After(30 * time.Second):
		return "(no account within 30 s)"
	}
}

// removedHealthy is how many times a healthy real left the table, and the first of those events.
func (m *monitor) removedHealthy() (int, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removed, append([]string(nil), m.removals...)
}

// problem records one problem; after 50 the rest are counted, not kept. The caller holds m.mu.
func (m *monitor) problem(format string, args ...any) {
	if len(m.errs) < 50 {
		m.errs = append(m.errs, fmt.Sprintf(format, args...))
	} else {
		m.dropped++
	}
}

func (m *monitor) victimHangs(at time.Time) {
	m.mu.Lock()
	m.hangAt = at
	m.mu.Unlock()
}

// waitConverged waits up to limit (from the start) for every healthy real to be in the table, and returns
// how long it took from the start, or 0.
func (m *monitor) waitConverged(limit time.Duration) time.Duration {
	for time.Since(m.t0) < limit {
		m.mu.Lock()
		at := m.convergeAt
		m.mu.Unlock()
		if !at.IsZero() {
			return at.Sub(m.t0)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0
}

// waitIn waits up to limit for d to be in the table.
func (m *monitor) waitIn(d dest, limit time.Duration) bool {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		m.mu.Lock()
		in := m.in[d]
		m.mu.Unlock()
		if in {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// waitVictimGone waits up to limit for the victim to leave the table and returns how long it took from
// victimHangs, or 0.
func (m *monitor) waitVictimGone(limit time.Duration) time.Duration {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		m.mu.Lock()
		gone, hang := m.goneAt, m.hangAt
		m.mu.Unlock()
		if !gone.IsZero() {
			return gone.Sub(hang)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0
}

func (m *monitor) healthyIn() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nHealthy
}

func (m *monitor) problems() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]string(nil), m.errs...)
	if m.dropped > 0 {
		out = append(out, fmt.Sprintf("... and %d more", m.dropped))
	}
	return out
}

func (m *monitor) close() {
	close(m.stopc)
	<-m.done
}

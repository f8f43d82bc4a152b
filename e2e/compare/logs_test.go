package compare

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The log lines of a real leaving the table (groups: the real's last address byte, its port): ours, as the
// Perl ldirectord writes it, and keepalived's.
var (
	oursRemoved       = regexp.MustCompile(`\] Deleted real server: 10\.2\.0\.(\d+):(\d+) \(`)
	keepalivedRemoved = regexp.MustCompile(`Removing service \[10\.2\.0\.(\d+)\]:tcp:(\d+) from VS`)
	// realAdded is a line of either daemon adding a real to the table.
	realAdded = regexp.MustCompile(`\] Added real server: |: Adding service \[`)
)

// logRemovals counts the lines of log that remove a healthy real other than the victim.
func logRemovals(log string, re *regexp.Regexp) int {
	n := 0
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		if healthyRemoval(m) {
			n++
		}
	}
	return n
}

// healthyRemoval says whether the log line l (matched by re) removes a healthy real other than the victim.
func healthyRemoval(m []string) bool {
	ip, _ := strconv.Atoi(m[1])
	port, _ := strconv.Atoi(m[2])
	r := real{vip: port - basePort, ip: ip}
	return !r.hangs() && r != victim
}

// removalContext is what the log says around the removals of healthy reals (re: the daemon's removal
// line): the before lines ahead of the first one, then every line from it that is not an addition, at
// most limit lines in all ("" when there is none).
func removalContext(log string, re *regexp.Regexp, before, limit int) string {
	lines := strings.Split(log, "\n")
	first := -1
	for i, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil && healthyRemoval(m) {
			first = i
			break
		}
	}
	if first < 0 {
		return ""
	}
	var out []string
	for i := max(first-before, 0); i < len(lines) && len(out) < limit; i++ {
		if i > first && realAdded.MatchString(lines[i]) {
			continue
		}
		out = append(out, lines[i])
	}
	return strings.Join(out, "\n")
}

// logStamp is the "[date|config|pid] " prefix of a log line; logNumber any number or address in it.
var (
	logStamp  = regexp.MustCompile(`^\[[^]]*\] `)
	logNumber = regexp.MustCompile(`[0-9][0-9.:]*`)
)

// digest is the n most frequent kinds of lines of log (the line without its stamp, numbers and addresses
// as N) with their counts: why a daemon did what it did, when its tail is not enough.
func digest(log string, n int) string {
	counts := map[string]int{}
	for _, l := range strings.Split(log, "\n") {
		if l = logNumber.ReplaceAllString(logStamp.ReplaceAllString(l, ""), "N"); l != "" {
			counts[l]++
		}
	}
	kinds := slices.SortedFunc(maps.Keys(counts), func(a, b string) int {
		return cmp.Or(counts[b]-counts[a], strings.Compare(a, b))
	})
	var b strings.Builder
	for _, k := range kinds[:min(n, len(kinds))] {
		fmt.Fprintf(&b, "%7d %s\n", counts[k], k)
	}
	return b.String()
}

// TestLogRemovals counts the removal lines of both daemons' logs as they write them: healthy reals only,
// not the hanging ones nor the victim (whose removal is the detection).
func TestLogRemovals(t *testing.T) {
	const oursLog = `[Tue Dec  1 06:10:41 2026|compare.cf|772] Deleted real server: 10.2.0.5:8003 (10.9.9.4:80)
[Tue Dec  1 06:10:41 2026|compare.cf|772] Deleted real server: 10.2.0.4:8003 (10.9.9.4:80)
[Tue Dec  1 06:10:41 2026|compare.cf|772] Deleted real server: 10.2.0.1:8000 (10.9.9.1:80)
[Tue Dec  1 06:10:41 2026|compare.cf|772] Deleted real server: 10.2.0.1:8001 (10.9.9.2:80)
[Tue Dec  1 06:10:41 2026|compare.cf|772] Added real server: 10.2.0.5:8003 (10.9.9.4:80) (Weight set to 1)
`
	if n := logRemovals(oursLog, oursRemoved); n != 2 {
		t.Errorf("ldirectord log: %d healthy removals, want 2 (10.2.0.5:8003, 10.2.0.1:8001)", n)
	}
	// From the line before the first healthy removal, without the additions, at most 4 lines.
	log := "[Tue Dec  1 06:10:40 2026|compare.cf|772] checks are running 2 s behind checkinterval\n" + oursLog
	lines := strings.Split(log, "\n")
	if got, want := removalContext(log, oursRemoved, 1, 4), strings.Join(lines[:4], "\n"); got != want {
		t.Errorf("removalContext:\n%s\nwant:\n%s", got, want)
	}
	if got, want := removalContext(log, oursRemoved, 5, 10), strings.Join(append(lines[:5:5], lines[6:]...), "\n"); got != want {
		t.Errorf("removalContext, all of it:\n%s\nwant:\n%s", got, want)
	}
	if got := removalContext(lines[0], oursRemoved, 5, 10); got != "" {
		t.Errorf("removalContext without a removal: %q", got)
	}
	const kaLog = `Tue Dec  1 06:08:01 2026: HTTP_CHECK on service [10.2.0.6]:tcp:8002 failed.
Tue Dec  1 06:08:01 2026: Removing service [10.2.0.6]:tcp:8002 from VS [10.9.9.3]:tcp:80
Tue Dec  1 06:08:01 2026: Removing service [10.2.0.1]:tcp:8000 from VS [10.9.9.1]:tcp:80
Tue Dec  1 06:08:02 2026: Adding service [10.2.0.6]:tcp:8002 to VS [10.9.9.3]:tcp:80
Tue Dec  1 06:08:17 2026: Shutting down service [10.2.0.7]:tcp:8009 from VS [10.9.9.10]:tcp:80
`
	if n := logRemovals(kaLog, keepalivedRemoved); n != 1 {
		t.Errorf("keepalived log: %d healthy removals, want 1 (10.2.0.6:8002)", n)
	}
}

// TestDigest groups log lines by their text with numbers and addresses replaced, most frequent first.
func TestDigest(t *testing.T) {
	const log = `[Tue Dec  1 06:10:41 2026|compare.cf|772] Deleted real server: 10.2.0.5:8003 (10.9.9.4:80)
[Tue Dec  1 06:10:41 2026|compare.cf|772] Deleted real server: 10.2.0.4:8003 (10.9.9.4:80)
[Tue Dec  1 06:10:42 2026|compare.cf|772] Added real server: 10.2.0.5:8003 (10.9.9.4:80) (Weight set to 1)
`
	want := "      2 Deleted real server: N (N)\n      1 Added real server: N (N) (Weight set to N)\n"
	if got := digest(log, 5); got != want {
		t.Errorf("digest:\n%s\nwant:\n%s", got, want)
	}
	if got := digest(log, 1); got != "      2 Deleted real server: N (N)\n" {
		t.Errorf("digest of 1: %q", got)
	}
}

// logClock is the time of day in a log line (ours and keepalived's both print it).
var logClock = regexp.MustCompile(`\d\d:\d\d:\d\d`)

// perSecond counts the lines of log that match re, by the second their stamp names: "01:41:03 212,
// 01:41:04 97, ..." (how fast a daemon filled the table).
func perSecond(log string, re *regexp.Regexp) string {
	var b strings.Builder
	last, n := "", 0
	flush := func() {
		if n > 0 {
			fmt.Fprintf(&b, "%s %d, ", last, n)
		}
	}
	for _, l := range strings.Split(log, "\n") {
		if !re.MatchString(l) {
			continue
		}
		if s := logClock.FindString(l); s != last {
			flush()
			last, n = s, 0
		}
		n++
	}
	flush()
	return strings.TrimSuffix(b.String(), ", ")
}

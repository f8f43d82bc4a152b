package compare

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dest is one destination of the kernel table: its virtual and its own address.
type dest struct{ virtual, addr netip.AddrPort }

// readIPVS reads /proc/net/ip_vs (the table ipvsadm -Ln prints, in hex; one read, no process to start,
// so it can be polled often in the guest) and returns the destinations with a weight above 0.
func readIPVS() (map[dest]bool, error) {
	b, err := os.ReadFile("/proc/net/ip_vs")
	if err != nil {
		return nil, err
	}
	return parseIPVS(string(b))
}

// parseIPVS reads the text of /proc/net/ip_vs: "TCP  0A090901:0050 wrr" starts a service, "  -> 0A020001:1F40
// Masq    1      0          0" is one of its destinations. Only IPv4 TCP services are expected.
func parseIPVS(text string) (map[dest]bool, error) {
	out := map[dest]bool{}
	var svc netip.AddrPort
	sc := bufio.NewScanner(strings.NewReader(text))
	for i := 0; sc.Scan(); i++ {
		f := strings.Fields(sc.Text())
		switch {
		case i < 3 || len(f) == 0:
		case f[0] == "TCP" && len(f) >= 2:
			a, err := hexAddrPort(f[1])
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			svc = a
		case f[0] == "->" && len(f) >= 4:
			a, err := hexAddrPort(f[1])
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			w, err := strconv.Atoi(f[3])
			if err != nil {
				return nil, fmt.Errorf("line %d: weight %q", i+1, f[3])
			}
			if w > 0 {
				out[dest{svc, a}] = true
			}
		default:
			return nil, fmt.Errorf("line %d: unexpected %q", i+1, sc.Text())
		}
	}
	return out, sc.Err()
}

// hexAddrPort reads "0A090901:0050".
func hexAddrPort(s string) (netip.AddrPort, error) {
	ip, port, ok := strings.Cut(s, ":")
	a, err1 := strconv.ParseUint(ip, 16, 32)
	p, err2 := strconv.ParseUint(port, 16, 16)
	if !ok || len(ip) != 8 || err1 != nil || err2 != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q", s)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), uint16(p)), nil
}

// procStat is what a process tree has used: CPU in clock ticks (utime+stime, USER_HZ = 100), resident
// memory (VmRSS) and proportional set size (Pss: shared pages split among their sharers, so the parent and
// child of keepalived do not count their shared libraries twice) in kB, summed over the process and its
// live descendants.
type procStat struct {
	ticks int64
	rssKB int64
	pssKB int64
	pids  int
	list  []int // the processes, the given one first
}

// treeStat sums the CPU time and VmRSS of pid and its descendants (keepalived runs a parent and a checker
// child).
func treeStat(pid int) (procStat, error) {
	children := map[int][]int{}
	entries, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		f := statFields(string(b))
		if len(f) < 2 {
			continue
		}
		me, _ := strconv.Atoi(filepath.Base(filepath.Dir(e)))
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], me)
	}
	var st procStat
	todo := []int{pid}
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			if p == pid {
				return st, fmt.Errorf("process %d: %v", pid, err)
			}
			continue
		}
		f := statFields(string(b))
		if len(f) < 13 {
			return st, fmt.Errorf("process %d: short stat %q", p, b)
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		sys, _ := strconv.ParseInt(f[12], 10, 64)
		st.ticks += ut + sys
		st.rssKB += statusKB(fmt.Sprintf("/proc/%d/status", p), "VmRSS:")
		st.pssKB += statusKB(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Pss:")
		st.pids++
		st.list = append(st.list, p)
		todo = append(todo, children[p]...)
	}
	return st, nil
}

// statFields are the fields of /proc/PID/stat after the command name: [0] is the state, [1] the parent,
// [11] utime, [12] stime (fields 3, 4, 14 and 15 of proc(5)).
func statFields(s string) []string {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// statusKB reads the "Key:   N kB" line of a /proc file (status, smaps_rollup); 0 when there is none.
func statusKB(path, key string) int64 {
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb
			}
		}
	}
	return 0
}

// cpuTimes is the whole machine's CPU time from /proc/stat's "cpu" line, in clock ticks: busy (everything
// but idle and iowait), steal (taken by the hypervisor for other machines: on a virtual machine it is
// time neither daemon could run) and total.
type cpuTimes struct{ busy, steal, total int64 }

// sub is the CPU time from c0 to c.
func (c cpuTimes) sub(c0 cpuTimes) cpuTimes {
	return cpuTimes{c.busy - c0.busy, c.steal - c0.steal, c.total - c0.total}
}

func cpuTicks() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseCPULine(string(b))
}

// parseCPULine reads the first line of a /proc/stat: "cpu user nice system idle iowait irq softirq steal
// ...".
func parseCPULine(stat string) (cpuTimes, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: %q", line)
	}
	var c cpuTimes
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: %q", line)
		}
		c.total += n
		if i != 3 && i != 4 { // idle, iowait
			c.busy += n
		}
		if i == 7 {
			c.steal = n
		}
	}
	return c, nil
}

// TestParseIPVS reads a /proc/net/ip_vs as the kernel writes it: quiesced destinations (weight 0) are not
// in the table for this comparison, and a line the parser does not know is an error, not a silent zero.
func TestParseIPVS(t *testing.T) {
	const text = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A090901:0050 wrr 
  -> 0A020002:1F40      Masq    1      0          0         
  -> 0A020001:1F40      Masq    0      0          3         
TCP  0A09090A:0050 wrr 
  -> 0A020064:1F49      Masq    3      0          0         
`
	got, err := parseIPVS(text)
	if err != nil {
		t.Fatal(err)
	}
	want := map[dest]bool{
		{netip.MustParseAddrPort("10.9.9.1:80"), netip.MustParseAddrPort("10.2.0.2:8000")}:    true,
		{netip.MustParseAddrPort("10.9.9.10:80"), netip.MustParseAddrPort("10.2.0.100:8009")}: true,
	}
	if len(got) != len(want) {
		t.Fatalf("parseIPVS: %v, want %v", got, want)
	}
	for d := range want {
		if !got[d] {
			t.Errorf("parseIPVS: %v missing from %v", d, got)
		}
	}
	if _, err := parseIPVS(text + "UDP  0A090901:0035 rr \n"); err == nil || err.Error() != `line 9: unexpected "UDP  0A090901:0035 rr "` {
		t.Errorf("an unknown line: %v", err)
	}
}

// TestTreeStat sums this process (no children): its RSS and PSS are above zero, PSS at most RSS; and the
// machine has been both busy and idle.
func TestTreeStat(t *testing.T) {
	st, err := treeStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.pids < 1 || st.rssKB <= 0 || st.pssKB <= 0 || st.pssKB > st.rssKB {
		t.Errorf("treeStat(self) = %+v; want at least this process with its RSS", st)
	}
	if _, err := treeStat(1 << 30); err == nil {
		t.Error("treeStat of a process that does not exist: no error")
	}
	c, err := cpuTicks()
	if err != nil || c.busy <= 0 || c.total <= c.busy {
		t.Errorf("cpuTicks() = %+v, %v; want 0 < busy < total", c, err)
	}
	c, err = parseCPULine("cpu  84626 0 116953 2720927 1453 0 1368 26427 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if want := (cpuTimes{busy: 84626 + 116953 + 1368 + 26427, steal: 26427, total: 84626 + 116953 + 2720927 + 1453 + 1368 + 26427}); err != nil || c != want {
		t.Errorf("parseCPULine = %+v, %v; want %+v", c, err, want)
	}
	if _, err := parseCPULine("cpu0 1 2 3 4 5 6\n"); err == nil || err.Error() != `/proc/stat: "cpu0 1 2 3 4 5 6"` {
		t.Errorf("parseCPULine of a line that is not the machine's: %v", err)
	}
}

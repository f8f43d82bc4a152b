// Package bench measures the ldirectord binary from the outside, as a user runs it (--dry-run -d, pinned
// to one CPU), against an HTTP backend process on the other CPU that counts every check it answers: CPU
// per check next to a bare Go client in the same run, and RSS at 1,000, 10,000 and 30,000 reals
// (docs/benchmarks.md, "Check cost"). LDIRECTORD=/path/to/ldirectord measures another build than this
// tree's, so that two branches are measured by the same harness.
package bench

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// backendEnv, when set to "B1,B2,FROM,TO", makes this test binary a backend process: it listens on the
// reals FROM..TO-1 of block 127.B1.B2 (see realAddrs), answers every HTTP request with 200 "ok", and
// counts the answers. One process holds at most perProcess reals: the listeners and their connections
// must fit in the fd limit (the hard limit cannot be raised in a container without CAP_SYS_RESOURCE).
const backendEnv = "LDGO_BENCH_BACKEND"

const perProcess = 8000

// perIP reals share one loopback address, on ports basePort..basePort+perIP-1 (below the ephemeral range,
// so the checks' own connections never take them).
const (
	perIP    = 1000
	basePort = 10000
)

var okResponse = []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

// realAddrs are the n real addresses of a backend on block 127.b1.b2.0/24: addresses .1, .2, ... with
// perIP ports each.
func realAddrs(b1, b2 byte, n int) []netip.AddrPort {
	out := make([]netip.AddrPort, n)
	for i := range n {
		out[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, b1, b2, byte(1 + i/perIP)}), uint16(basePort+i%perIP))
	}
	return out
}

// serveBackends is a backend process. It binds its addresses, prints "ready" (or an error, and exits 1),
// then, for each line read on stdin, the number of requests answered so far. It exits when stdin closes.
func serveBackends(spec string) {
	var b1, b2, from, to int
	if _, err := fmt.Sscanf(spec, "%d,%d,%d,%d", &b1, &b2, &from, &to); err != nil || from < 0 || to <= from {
		fmt.Fprintf(os.Stderr, "backend: %s=%q: want B1,B2,FROM,TO\n", backendEnv, spec)
		os.Exit(1)
	}
	lns, err := listenAll(realAddrs(byte(b1), byte(b2), to)[from:])
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	var answered atomic.Int64
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					time.Sleep(5 * time.Millisecond) // EMFILE and the like: try again
					continue
				}
				go serveOK(c, &answered)
			}
		}()
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Println(answered.Load())
	}
}

func listenAll(addrs []netip.AddrPort) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen("tcp4", a.String())
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// serveOK reads one request's header and answers 200 "ok"; the answer is counted once written.
func serveOK(c net.Conn, answered *atomic.Int64) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReaderSize(c, 1024)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) <= 2 && strings.TrimSpace(string(line)) == "" {
			break
		}
	}
	if _, err := c.Write(okResponse); err == nil {
		answered.Add(1)
	}
}

// parseCount reads one count line of the backend.
func parseCount(s string) (int64, error) { return strconv.ParseInt(strings.TrimSpace(s), 10, 64) }

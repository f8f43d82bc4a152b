// Package compare runs one scenario, 1,000 HTTP reals over 10 virtuals with a quarter of them hanging, in a
// real Linux kernel (user-mode Linux) against this ldirectord and against Debian's keepalived configured from
// the same ldirectord.cf, and prints for both the time to converge, the time to detect a new failure, the
// steady CPU and the RSS (make compare).
package compare

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The scenario's shape: nVirtuals virtuals 10.9.9.1-10:80, each with one real on every one of nIPs real
// server addresses 10.2.0.1-100, at port basePort+virtual index. Every hangEvery-th address hangs
// (accepts the connection, never answers), so a quarter of the reals never pass a check. The victim is a
// healthy real that starts hanging on SIGUSR1 to the backend process (SIGUSR2 heals it).
const (
	nVirtuals = 10
	nIPs      = 100
	basePort  = 8000
	hangEvery = 4
)

var victim = real{vip: 0, ip: 1}

// real is one real server of the scenario: virtual index vip (0-9) and address index ip (1-100).
type real struct{ vip, ip int }

func (r real) virtual() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 9, byte(r.vip + 1)}), 80)
}

func (r real) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, 0, byte(r.ip)}), uint16(basePort+r.vip))
}

// hangs says whether the real never answers (from the start).
func (r real) hangs() bool { return r.ip%hangEvery == 0 }

// reals is every real of the scenario, virtual by virtual.
func reals() []real {
	var out []real
	for v := range nVirtuals {
		for ip := 1; ip <= nIPs; ip++ {
			out = append(out, real{v, ip})
		}
	}
	return out
}

// backendEnv is set when this test binary runs as the backend process (in netns "rs").
const backendEnv = "COMPARE_BACKEND"

func TestMain(m *testing.M) {
	if os.Getenv(backendEnv) != "" {
		serveBackends()
		return
	}
	os.Exit(m.Run())
}

var okResponse = []byte("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")

// serveBackends listens on every real's address. A hanging real's listener never accepts: the kernel
// completes the handshake and queues the connection, the check's request is never answered. A healthy
// real answers each request with 200 "ok" and closes; the victim holds the connection open instead while
// SIGUSR1 is in force. It prints "ready" when every listener is up, then, for each line read on stdin, the
// number of requests answered so far; it serves until killed.
func serveBackends() {
	var victimHangs atomic.Bool
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for s := range sig {
			victimHangs.Store(s == syscall.SIGUSR1)
		}
	}()
	var answered atomic.Int64
	var held []net.Listener // the hanging listeners stay referenced, so nothing closes them
	for _, r := range reals() {
		ln, err := net.Listen("tcp4", r.addr().String())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if r.hangs() {
			held = append(held, ln)
			continue
		}
		isVictim := r == victim
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				go serveOne(c, isVictim && victimHangs.Load(), &answered)
			}
		}()
	}
	fmt.Println("ready", len(held))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Println(answered.Load())
	}
	select {}
}

// serveOne reads one request and answers it (counted in answered), or, when hang is set, keeps the
// connection until the client gives up (at most 30 s).
func serveOne(c net.Conn, hang bool, answered *atomic.Int64) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimRight(line, "\r\n") == "" {
			break
		}
	}
	if hang {
		io.Copy(io.Discard, br)
		return
	}
	if _, err := c.Write(okResponse); err == nil {
		answered.Add(1)
	}
}

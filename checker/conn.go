package checker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Bounds on what a check reads from a backend, so a huge or endless answer costs a bounded amount of memory
// and CPU.
const (
	maxHeaderBytes = 64 << 10 // HTTP status line and headers
	maxBodyBytes   = 1 << 20  // HTTP body, simpletcp/ftp data: what receive is matched against
	maxLineBytes   = 8 << 10  // one line of a text protocol (smtp, pop, imap, ftp, sip)
)

// checkError is a check failure: a log-ready message that keeps the underlying error for errors.Is/As.
type checkError struct {
	msg string
	err error
}

func (e *checkError) Error() string { return e.msg }
func (e *checkError) Unwrap() error { return e.err }

// failf returns a checkError whose message is the formatted prefix, ": ", and a short description of err.
func failf(err error, format string, args ...any) error {
	return &checkError{msg: fmt.Sprintf(format, args...) + ": " + describe(err), err: err}
}

// errorf returns a checkError with no underlying error.
func errorf(format string, args ...any) error {
	return &checkError{msg: fmt.Sprintf(format, args...)}
}

// describe turns a network error into the few words a log line needs ("connection refused", "timed out"),
// dropping the "dial tcp 1.2.3.4:80: connect:" noise the caller already says better.
func describe(err error) string {
	var ce *checkError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ce):
		return ce.msg
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled), errors.Is(err, errCanceled):
		return "canceled"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by peer"
	}
	var rec tls.RecordHeaderError
	if errors.As(err, &rec) {
		return "peer does not speak TLS"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// errCanceled is what a connection reports after ctx was cancelled (rather than reaching its deadline).
var errCanceled = errors.New("canceled")

// dialer opens the checks' connections. No TCP keep-alive: a check's connection lives for one request, and
// enabling keep-alive costs four setsockopt calls per check.
var dialer = net.Dialer{KeepAlive: -1}

// DialFunc opens a check's connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

type dialKey struct{}

// WithDial returns a context whose checks open their connections with d instead of a net.Dialer: how tests
// make the director itself fail (EMFILE, ENOBUFS, EADDRNOTAVAIL) and how a caller could pin a source
// address. d's errors are returned wrapped as the dialer's would be, so errors.Is sees them.
func WithDial(ctx context.Context, d DialFunc) context.Context {
	return context.WithValue(ctx, dialKey{}, d)
}

// conn is a connection bounded by a check's context: every read and write fails once ctx's deadline passes
// or ctx is cancelled.
//
// A TCP read that reaches the deadline takes, without waiting, what the backend had already sent: when the
// director is starved of CPU, the deadline timer can fire before the goroutine reading the socket is run
// (or before the poller reports the answer that arrived in time), and that timeout would be the director's,
// not the backend's. Only a socket with nothing in it times out; the reads after such a late one never
// wait either.
type conn struct {
	net.Conn
	stop   func() bool
	ctx    context.Context
	late   bool            // the deadline passed: reads only take what is already there
	lateEr error           // the timeout that made the conn late, returned when nothing is there
	raw    syscall.RawConn // nil unless TCP
}

// dial connects to ap over network ("tcp" or "udp"), bounded by ctx. The caller must Close the conn.
func dial(ctx context.Context, network string, ap netip.AddrPort) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c net.Conn
	var err error
	if d, ok := ctx.Value(dialKey{}).(DialFunc); ok {
		c, err = d(ctx, network, ap.String())
	} else {
		c, err = dialer.DialContext(ctx, network, ap.String())
	}
	if err != nil {
		return nil, err
	}
	return bound(ctx, c), nil
}

// bound arms c so that its I/O ends at ctx's deadline, or at once when ctx is cancelled. No goroutine runs
// unless ctx is cancelled before Close.
func bound(ctx context.Context, c net.Conn) *conn {
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return &conn{Conn: c, stop: stop, ctx: ctx}
}

// Read reads from the connection; a read that times out at the check's deadline returns what had arrived
// by then (see conn).
func (c *conn) Read(p []byte) (int, error) {
	if c.late {
		return c.readArrived(p)
	}
	n, err := c.Conn.Read(p)
	if n == 0 && err != nil && len(p) > 0 && errors.Is(err, os.ErrDeadlineExceeded) && c.deadlinePassed() {
		// The deadline passed (it was not a cancel): clear it so that one more read can be made, which
		// never waits. TCP only.
		tc, ok := c.Conn.(*net.TCPConn)
		if !ok {
			return n, err
		}
		raw, rerr := tc.SyscallConn()
		if rerr != nil || c.Conn.SetReadDeadline(time.Time{}) != nil {
			return n, err
		}
		c.raw, c.late, c.lateEr = raw, true, err
		return c.readArrived(p)
	}
	return n, err
}

// deadlinePassed says whether the check's deadline is over and the check was not cancelled (a cancel also
// ends I/O through a deadline in the past).
func (c *conn) deadlinePassed() bool {
	d, ok := c.ctx.Deadline()
	return ok && !errors.Is(c.ctx.Err(), context.Canceled) && !time.Now().Before(d)
}

// readArrived makes one non-blocking read: what is in the socket now, or the timeout when it is empty.
func (c *conn) readArrived(p []byte) (int, error) {
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true // never wait for readiness
	})
	switch {
	case err != nil:
		return 0, c.lateEr
	case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
		return 0, c.lateEr
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Close releases the context hook and closes the connection.
func (c *conn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// hostPort formats ap as host:port, IPv6 in brackets, zone dropped from brackets as URLs need.
func hostPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a, port).String()
}

// hostLiteral is the address as it appears in a URL host or Host header: IPv6 in brackets.
func hostLiteral(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		return "[" + a.String() + "]"
	}
	return a.Unmap().String()
}

// addrPort is the target's address and port, with an error when the port is unknown.
func addrPort(t *Target) (netip.AddrPort, error) {
	if !t.Addr.IsValid() {
		return netip.AddrPort{}, errorf("no address to check")
	}
	if t.Port == 0 {
		return netip.AddrPort{}, errorf("%s: no port to check (set checkport or the real's port)", t.Addr)
	}
	return netip.AddrPortFrom(t.Addr.Unmap(), t.Port), nil
}

// bufPool recycles the read buffers of text-protocol and HTTP checks.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

func itoa(n int) string { return strconv.Itoa(n) }

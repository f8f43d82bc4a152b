package checker

import (
	"bytes"
	"container/heap"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Loop runs the commonest checks, a TCP connect and a plain HTTP request, for any number of reals in one
// goroutine: non-blocking sockets, one epoll set, and the checks' deadlines in a heap the loop owns, with
// one clock reading per turn of the loop. It does what keepalived's event loop does, for the same reason:
// a goroutine, a poller registration and a timer or two per check cost little on a real machine but a
// great deal where every system call and thread switch is expensive (user-mode Linux: 3 ms of CPU per
// check in goroutines, against 0.5 ms in keepalived), and they are what a director with thousands of reals
// spends most of its CPU on.
//
// A check in the loop has the same result, to the word, as the same check run by its Checker: the loop
// connects and sends the same request, and judges the bytes it received with the same code (judge), every
// time more arrive, until the answer is complete or the connection ends. A redirect, which needs the
// checker's full client (https, other ports), is followed by the Checker in a goroutine of its own.
type Loop struct {
	ep, ev int // the epoll set and the eventfd that wakes the loop

	mu       sync.Mutex
	inbox    []loopOp
	signaled bool // an eventfd write is pending (mu)
	closed   bool // (mu)
	exited   chan struct{}

	// Owned by the loop's goroutine.
	byFD      []*Run
	byDue     runHeap
	following map[*Run]struct{} // past their deadline, waiting for the goroutine that follows a redirect
	bufs      [][]byte          // free read buffers
	scratch   []byte
}

// Run is one check in a Loop.
type Run struct {
	t         Target
	h         *httpChecker // nil: a TCP connect
	method    string
	re        *regexp.Regexp
	req       *httpRequest
	deadline  time.Time
	done      func(err error, end time.Time)
	fd        int
	state     runState
	out       []byte // the request
	written   int
	in        []byte
	idx       int  // in byDue, -1 when not in it
	finished  bool // done was called
	following bool // a goroutine follows a redirect
}

type runState uint8

const (
	connecting runState = iota
	writing
	reading
)

type loopOp struct {
	r      *Run
	cancel bool
	err    error // the result of a redirect followed in a goroutine
}

// NewLoop starts a check loop. Close stops it.
func NewLoop() (*Loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	ev, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, ev, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ev)}); err != nil {
		unix.Close(ep)
		unix.Close(ev)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l := &Loop{ep: ep, ev: ev, exited: make(chan struct{}), following: make(map[*Run]struct{})}
	go l.run()
	return l, nil
}

// InLoop says whether checks of c may run in a Loop (Start decides for each target).
func InLoop(c Checker) bool {
	switch h := c.(type) {
	case connectChecker:
		return true
	case *httpChecker:
		return h.scheme == "http"
	}
	return false
}

// Start starts check c of t in the loop, to end at deadline. done is called once, from the loop's
// goroutine, with the check's result and the time it ended; it must not block. Start returns false when c
// or t is not for the loop (TLS, UDP, a link-local address with a zone, settings the checker refuses) or
// the loop is closed: then run c.Check as usual.
func (l *Loop) Start(c Checker, t *Target, deadline time.Time, done func(err error, end time.Time)) (*Run, bool) {
	r := &Run{t: *t, deadline: deadline, done: done, fd: -1, idx: -1}
	switch h := c.(type) {
	case connectChecker:
		if t.UDP {
			return nil, false
		}
		ap, err := addrPort(t)
		if err != nil || ap.Addr().Zone() != "" {
			return nil, false
		}
	case *httpChecker:
		method, re, req, err := h.prepare(t)
		if err != nil || req.scheme != "http" || req.connect.Addr().Zone() != "" {
			return nil, false
		}
		r.h, r.method, r.re, r.req = h, method, re, req
		r.out = req.appendRequest(make([]byte, 0, 96+len(req.target)+len(req.host)), method)
	default:
		return nil, false
	}
	if !l.post(loopOp{r: r}) {
		return nil, false
	}
	return r, true
}

// Cancel ends r at once (its done is told "canceled") unless it ended already.
func (l *Loop) Cancel(r *Run) { l.post(loopOp{r: r, cancel: true}) }

// Close ends every check in the loop (canceled) and stops it.
func (l *Loop) Close() {
	if l.post(loopOp{}) {
		<-l.exited
	}
}

// post hands op to the loop's goroutine, waking it unless a wake-up is pending already. It reports false
// when the loop is closed.
func (l *Loop) post(op loopOp) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	if op.r == nil {
		l.closed = true
	}
	l.inbox = append(l.inbox, op)
	wake := !l.signaled
	l.signaled = true
	l.mu.Unlock()
	if wake {
		var one = [8]byte{1}
		unix.Write(l.ev, one[:])
	}
	return true
}

func (l *Loop) run() {
	// The loop's thread sleeps in epoll_wait; locking it saves the runtime moving the goroutine between
	// threads when it wakes.
	runtime.LockOSThread()
	defer close(l.exited)
	events := make([]unix.EpollEvent, 256)
	var inbox []loopOp
	for {
		timeout := -1
		if len(l.byDue) > 0 {
			// Milliseconds, rounded up: waking before a deadline would only loop.
			timeout = max(int((time.Until(l.byDue[0].deadline)+time.Millisecond-1)/time.Millisecond), 0)
		}
		n, err := unix.EpollWait(l.ep, events, timeout)
		if err != nil && err != unix.EINTR {
			n = 0
			time.Sleep(time.Millisecond) // cannot happen with valid descriptors; do not spin if it does
		}
		now := time.Now()
		woken := false
		for _, ev := range events[:max(n, 0)] {
			fd := int(ev.Fd)
			if fd == l.ev {
				woken = true
				continue
			}
			if fd < len(l.byFD) && l.byFD[fd] != nil {
				l.step(l.byFD[fd], ev.Events, now)
			}
		}
		if woken {
			var b [8]byte
			unix.Read(l.ev, b[:])
			l.mu.Lock()
			inbox, l.inbox = l.inbox, inbox[:0]
			l.signaled = false
			l.mu.Unlock()
			for i, op := range inbox {
				inbox[i] = loopOp{}
				switch {
				case op.r == nil:
					l.shutdown(now)
					return
				case op.cancel:
					l.finish(op.r, failf(context.Canceled, "%s", op.r.label()), now)
				case op.r.following:
					op.r.following = false
					l.finish(op.r, op.err, now)
				default:
					l.begin(op.r, now)
				}
			}
		}
		for len(l.byDue) > 0 && !now.Before(l.byDue[0].deadline) {
			l.expire(l.byDue[0], now)
		}
	}
}

// shutdown ends every check in the loop and releases the loop's descriptors.
func (l *Loop) shutdown(now time.Time) {
	for len(l.byDue) > 0 {
		r := l.byDue[0]
		l.finish(r, failf(context.Canceled, "%s", r.label()), now)
	}
	for r := range l.following {
		l.finish(r, failf(context.Canceled, "%s", r.label()), now)
	}
	unix.Close(l.ep)
	unix.Close(l.ev)
}

// addr is where r connects.
func (r *Run) addr() netip.AddrPort {
	if r.h != nil {
		return r.req.connect
	}
	ap, _ := addrPort(&r.t)
	return ap
}

// label is the prefix of the run's error messages, as its Checker words them.
func (r *Run) label() string {
	if r.h == nil {
		return "connect " + r.addr().String()
	}
	return r.req.label
}

// begin opens r's connection.
func (l *Loop) begin(r *Run, now time.Time) {
	if r.idx < 0 {
		heap.Push(&l.byDue, r)
	}
	if !now.Before(r.deadline) {
		l.finish(r, failf(os.ErrDeadlineExceeded, "%s", r.label()), now)
		return
	}
	ap := r.addr()
	var sa unix.Sockaddr
	family := unix.AF_INET
	if a := ap.Addr(); a.Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.finish(r, failf(dialError(ap.String(), "socket", err), "%s", r.label()), now)
		return
	}
	r.fd = fd
	for fd >= len(l.byFD) {
		l.byFD = append(l.byFD, nil)
	}
	l.byFD[fd] = r
	r.state = connecting
	switch err := unix.Connect(fd, sa); err {
	case nil, unix.EINPROGRESS:
	default:
		l.finish(r, failf(dialError(ap.String(), "connect", err), "%s", r.label()), now)
		return
	}
	// Edge-triggered: each readiness is reported once, and the loop reads and writes until EAGAIN.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.finish(r, failf(dialError(ap.String(), "epoll_ctl", err), "%s", r.label()), now)
	}
}

// dialError is the error a net.Dialer returns for a failed system call.
func dialError(addr, call string, errno error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: stringAddr(addr), Err: os.NewSyscallError(call, errno)}
}

type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }

// step moves r on after epoll reported events on its socket.
func (l *Loop) step(r *Run, events uint32, now time.Time) {
	if r.state == connecting {
		if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		// Writable without an error or a hang-up: connected. Only a failed connect needs SO_ERROR for its
		// cause (one system call less per check where each is expensive).
		if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			if errno, err := unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
				if err == nil {
					err = unix.Errno(errno)
				}
				l.finish(r, failf(dialError(r.addr().String(), "connect", err), "%s", r.label()), now)
				return
			}
		}
		if r.h == nil {
			l.finish(r, nil, now)
			return
		}
		r.state = writing
	}
	if r.state == writing {
		for r.written < len(r.out) {
			n, err := unix.Write(r.fd, r.out[r.written:])
			if err == unix.EAGAIN {
				return
			}
			if err != nil {
				l.finish(r, failf(ioError("write", err), "%s: sending request", r.label()), now)
				return
			}
			r.written += n
		}
		r.state = reading
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// A reset is a hang-up with an error: its read must report it.
		l.read(r, nil, events&(unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) == unix.EPOLLRDHUP, now)
	}
}

// ioError is the error a net.Conn returns for a failed read or write.
func ioError(op string, errno error) error {
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
}

// maxAnswer is what a check reads of an answer at most: judge looks no further.
const maxAnswer = maxHeaderBytes + maxBodyBytes

// read reads what r's socket holds and judges the answer so far. end, when not nil, is the deadline's
// error: the answer ends with what was there. closed says the peer had closed its side, cleanly, when the
// loop was told of the data: a read that did not fill its buffer then took the last bytes, and the read of the end
// of file is saved (one system call less per check where each is expensive).
func (l *Loop) read(r *Run, end error, closed bool, now time.Time) {
	if r.in == nil {
		if n := len(l.bufs); n > 0 {
			r.in, l.bufs = l.bufs[n-1], l.bufs[:n-1]
		} else {
			r.in = make([]byte, 0, 4096)
		}
	}
	var tail error
	grew := false
	for tail == nil && len(r.in) < maxAnswer {
		if len(r.in) == cap(r.in) {
			r.in = append(r.in, 0)[:len(r.in)]
		}
		want := min(cap(r.in), maxAnswer) - len(r.in)
		n, err := unix.Read(r.fd, r.in[len(r.in):len(r.in)+want])
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			tail = end
			if tail == nil {
				tail = errIncomplete
			}
		case err != nil:
			tail = ioError("read", err)
		case n == 0:
			tail = io.EOF
		default:
			r.in = r.in[:len(r.in)+n]
			grew = true
			if closed && n < want {
				tail = io.EOF
			}
		}
	}
	if tail == nil {
		tail = io.EOF // as much as judge reads: the rest does not matter
	}
	if !grew && tail == errIncomplete {
		return
	}
	if tail == errIncomplete && len(r.in) <= maxHeaderBytes && !bytes.Contains(r.in, []byte("\n\r\n")) && !bytes.Contains(r.in, []byte("\n\n")) {
		return // the headers go on: judging them again each time more arrive only parses them again
	}
	rd := replay{b: r.in, tail: tail}
	bp := &l.scratch
	loc, err := judge(&rd, r.method, r.req, r.re, r.t.Receive, bp)
	if err == errIncomplete {
		return
	}
	if loc == "" {
		l.finish(r, err, now)
		return
	}
	// A redirect: the checker's own client follows it, in a goroutine, within the same deadline.
	l.release(r)
	r.following = true
	go func() {
		ctx, cancel := context.WithDeadline(context.Background(), r.deadline)
		err := r.h.follows(ctx, &r.t, r.method, r.req, r.re, loc, nil, 0)
		cancel()
		l.post(loopOp{r: r, err: err})
	}()
}

// replay reads b, then returns tail.
type replay struct {
	b    []byte
	tail error
}

func (r *replay) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, r.tail
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// expire ends r at its deadline: an answer that had arrived is judged as it is, like a late read of a
// Checker's connection (see conn).
func (l *Loop) expire(r *Run, now time.Time) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	switch {
	case r.following:
		// The goroutine has the same deadline and reports.
		heap.Remove(&l.byDue, r.idx)
		l.following[r] = struct{}{}
		return
	case r.state == reading:
		l.read(r, timeout, false, now)
		if r.finished || r.following {
			return
		}
		l.finish(r, failf(timeout, "%s: reading response", r.label()), now)
	case r.state == writing:
		l.finish(r, failf(timeout, "%s: sending request", r.label()), now)
	default:
		l.finish(r, failf(os.ErrDeadlineExceeded, "%s", r.label()), now)
	}
}

// release closes r's connection and gives its buffer back.
func (l *Loop) release(r *Run) {
	if r.fd >= 0 {
		l.byFD[r.fd] = nil
		unix.Close(r.fd) // closing takes it out of the epoll set
		r.fd = -1
	}
	if r.in != nil {
		if cap(r.in) <= 64<<10 && len(l.bufs) < 256 {
			l.bufs = append(l.bufs, r.in[:0])
		}
		r.in = nil
	}
	r.state, r.written = connecting, 0
}

// finish ends r with err, once.
func (l *Loop) finish(r *Run, err error, now time.Time) {
	if r.finished {
		return
	}
	r.finished = true
	l.release(r)
	delete(l.following, r)
	if r.idx >= 0 {
		heap.Remove(&l.byDue, r.idx)
	}
	r.done(err, now)
}

// runHeap orders runs by deadline.
type runHeap []*Run

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h runHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *runHeap) Push(x any) {
	r := x.(*Run)
	r.idx = len(*h)
	*h = append(*h, r)
}
func (h *runHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	r.idx = -1
	*h = old[:len(old)-1]
	return r
}

package checker

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestConnLateRead: a read that reaches the check's deadline takes what the backend had already sent (the
// director, not the backend, was late), times out at once when nothing was sent, and never reads after a
// cancel.
func TestConnLateRead(t *testing.T) {
	noLeak(t)
	l := listen(t, "tcp4")
	const answer = "HTTP/1.1 200 OK\r\n\r\nok"
	serve(t, l, func(c net.Conn) {
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			return
		}
		if b[0] == 's' { // "w": say nothing
			c.Write([]byte(answer))
		}
		c.Read(b[:]) // until the client closes
	})
	ap := netip.MustParseAddrPort(l.Addr().String())

	open := func(ctx context.Context, send string) *conn {
		t.Helper()
		c, err := dial(ctx, "tcp", ap)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(send)); err != nil {
			t.Fatal(err)
		}
		return c
	}

	// The answer arrives in time, but this side only reads after its deadline passed.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c := open(ctx, "s")
	time.Sleep(500 * time.Millisecond)
	b, err := io.ReadAll(readerOnly{c})
	c.Close()
	if !errors.Is(err, os.ErrDeadlineExceeded) || string(b) != answer {
		t.Errorf("late read of an answer sent in time: %q, %v; want %q and the timeout (nothing more is waited for)", b, err, answer)
	}

	// Nothing was sent: the timeout, at once.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	c = open(ctx2, "w")
	start := time.Now()
	n, err := c.Read(make([]byte, 64))
	c.Close()
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) || describe(err) != "timed out" {
		t.Errorf("read from a silent backend: %d bytes, %v; want the timeout", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("read from a silent backend took %v", d)
	}

	// Cancelled: the answer that is there is not read.
	ctx3, cancel3 := context.WithCancel(context.Background())
	c = open(ctx3, "s")
	time.Sleep(200 * time.Millisecond)
	cancel3()
	time.Sleep(100 * time.Millisecond)
	n, err = c.Read(make([]byte, 64))
	c.Close()
	if n != 0 || err == nil {
		t.Errorf("read after a cancel: %d bytes, %v; want an error and nothing read", n, err)
	}
}

// readerOnly hides conn's other methods from io.ReadAll.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

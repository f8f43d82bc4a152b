package checker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// SimpleTCP is the negotiate check of service=simpletcp: connect (TCP, or UDP on a UDP virtual), send
// request without its first character (the '/' the config adds) and with each literal `\n` turned into a
// line feed, close the sending side, then read lines until one matches receive (healthy) or the server
// closes the connection (not healthy). A line is matched with its line feed, as Perl's <$sock> reads it.
// At most 1 MiB is read. Over UDP the request is one datagram and each datagram received is split into
// lines; only ctx's deadline ends the wait.
//
// An empty receive is healthy as soon as the request is sent (ldirectord re-uses whatever regular
// expression last matched, so its result is arbitrary).
var SimpleTCP Checker = Func(simpleTCP)

func simpleTCP(ctx context.Context, t *Target) error {
	ap, err := addrPort(t)
	if err != nil {
		return err
	}
	re, err := receiveOrNil(t.Receive)
	if err != nil {
		return err
	}
	network := "tcp"
	if t.UDP {
		network = "udp"
	}
	label := "simpletcp " + network + " " + ap.String()
	c, err := dial(ctx, network, ap)
	if err != nil {
		return failf(err, "%s", label)
	}
	defer c.Close()
	req := strings.ReplaceAll(strings.TrimPrefix(t.Request, t.Request[:min(1, len(t.Request))]), `\n`, "\n")
	if req != "" || t.UDP {
		if _, err := io.WriteString(c, req); err != nil {
			return failf(err, "%s: sending request", label)
		}
	}
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err != nil {
			return failf(err, "%s: sending request", label)
		}
	}
	if re == nil {
		return nil
	}
	if t.UDP {
		return simpleUDPRead(c, re, label)
	}
	lr := &io.LimitedReader{R: c, N: maxBodyBytes}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(lr)
	defer func() { br.Reset(nil); readerPool.Put(br) }()
	lines := 0
	for {
		// A line longer than the buffer is matched in pieces; receive patterns are short.
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			lines++
			if re.Match(line) {
				return nil
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case err == io.EOF && lr.N == 0:
			return errorf("%s: no line of the first %d KiB matches %s", label, maxBodyBytes>>10, strconv.Quote(t.Receive))
		case err == io.EOF:
			return errorf("%s: connection closed after %s, none matches %s", label, plural(lines, "line"), strconv.Quote(t.Receive))
		default:
			return failf(err, "%s: %s read, none matches %s", label, plural(lines, "line"), strconv.Quote(t.Receive))
		}
	}
}

func simpleUDPRead(c *conn, re interface{ Match([]byte) bool }, label string) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := (*bp)[:cap(*bp)]
	for {
		n, err := c.Read(b)
		for _, line := range splitLinesKeep(b[:n]) {
			if re.Match(line) {
				return nil
			}
		}
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return errorf("%s: port unreachable", label)
			}
			return failf(err, "%s: no matching answer", label)
		}
	}
}

// splitLinesKeep splits b after each line feed, keeping the line feeds.
func splitLinesKeep(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := strings.IndexByte(string(b), '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

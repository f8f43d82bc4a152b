package checker

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
)

// session is a line-oriented exchange with a text-protocol server (smtp, pop, imap, ftp), bounded by the
// check's context and by maxTextBytes in total.
type session struct {
	c     *conn
	rw    net.Conn // c, or TLS over c
	lr    io.LimitedReader
	br    *bufio.Reader
	label string // "smtp 10.0.0.2:25"
}

const maxTextBytes = 64 << 10

// openSession connects to the target (over TLS when tlsOn, without verification) for protocol name.
func openSession(ctx context.Context, t *Target, name string, tlsOn bool) (*session, error) {
	ap, err := addrPort(t)
	if err != nil {
		return nil, err
	}
	label := name + " " + ap.String()
	c, err := dial(ctx, "tcp", ap)
	if err != nil {
		return nil, failf(err, "%s", label)
	}
	s := &session{c: c, rw: c, label: label}
	if tlsOn {
		tc := tls.Client(c, tlsConfig(""))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, failf(err, "%s: tls handshake", label)
		}
		s.rw = tc
	}
	s.lr = io.LimitedReader{R: s.rw, N: maxTextBytes}
	s.br = readerPool.Get().(*bufio.Reader)
	s.br.Reset(&s.lr)
	return s, nil
}

func (s *session) Close() {
	s.br.Reset(nil)
	readerPool.Put(s.br)
	s.c.Close()
}

// readLine reads one line without its CR LF. what names the expected line for errors ("banner").
func (s *session) readLine(what string) (string, error) {
	line, err := s.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return "", errorf("%s: %s: line longer than %d bytes", s.label, what, s.br.Size())
		}
		if s.lr.N == 0 {
			return "", errorf("%s: %s: more than %d KiB without an answer", s.label, what, maxTextBytes>>10)
		}
		return "", failf(err, "%s: reading %s", s.label, what)
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// send writes one command line (CR LF added). shown is how the command appears in errors (passwords hidden).
func (s *session) send(cmd string) error {
	if _, err := io.WriteString(s.rw, cmd+"\r\n"); err != nil {
		return failf(err, "%s: sending %s", s.label, firstWord(cmd))
	}
	return nil
}

// reply reads a numeric reply (smtp, ftp), joining continuation lines "250-..." and returns its code and
// last line.
func (s *session) reply(what string) (int, string, error) {
	for {
		line, err := s.readLine(what)
		if err != nil {
			return 0, "", err
		}
		if len(line) < 3 {
			return 0, "", errorf("%s: %s: bad reply %s", s.label, what, quoteLine(line))
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 100 || code > 599 {
			return 0, "", errorf("%s: %s: bad reply %s", s.label, what, quoteLine(line))
		}
		if len(line) > 3 && line[3] == '-' {
			continue
		}
		return code, line, nil
	}
}

// expect sends cmd (unless empty) and requires a reply code of class want (2 for 2xx, 3 for 3xx...).
func (s *session) expect(cmd string, want ...int) (string, error) {
	what := "banner"
	if cmd != "" {
		if err := s.send(cmd); err != nil {
			return "", err
		}
		what = "reply to " + firstWord(cmd)
	}
	code, line, err := s.reply(what)
	if err != nil {
		return "", err
	}
	for _, w := range want {
		if code/100 == w || code == w {
			return line, nil
		}
	}
	return line, errorf("%s: %s: %s", s.label, what, quoteLine(line))
}

func firstWord(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}

// quoteLine shows a server's line in an error: as is when printable, quoted otherwise, at most 100 bytes.
func quoteLine(s string) string {
	return strconvQuoteIfNeeded(truncate(s, 100))
}

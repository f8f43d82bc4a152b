package checker

import (
	"context"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// FTP is the negotiate check of service=ftp: connect, read the 220 greeting, log in with login and passwd
// (anonymous when login is empty), and, when request names a file (anything but "/"), `TYPE I` and a
// passive-mode download of it (EPSV for IPv6, PASV for IPv4; the data connection always goes to the real's
// address, whatever address PASV names). Healthy when every step is accepted and, if receive is set, the
// first 1 MiB of the file matches it. ldirectord uses active mode (PORT), which needs the server to
// connect back to the director, ignores every error and is healthy with an empty receive even when nothing
// listens.
var FTP Checker = Func(ftp)

func ftp(ctx context.Context, t *Target) error {
	re, err := receiveOrNil(t.Receive)
	if err != nil {
		return err
	}
	s, err := openSession(ctx, t, "ftp", false)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.expect("", 2); err != nil {
		return err
	}
	login, passwd := t.Login, t.Passwd
	if login == "" {
		login, passwd = "anonymous", "ldirectord@"
	}
	line, err := s.expect("USER "+login, 2, 3)
	if err != nil {
		return err
	}
	if strings.HasPrefix(line, "3") {
		if _, err := s.expect("PASS "+passwd, 2); err != nil {
			return err
		}
	}
	path := t.Request
	if path == "" || path == "/" {
		if re != nil {
			return errorf("%s: receive is set but request names no file", s.label)
		}
		s.send("QUIT")
		return nil
	}
	if _, err := s.expect("TYPE I", 2); err != nil {
		return err
	}
	port, err := s.passive(t.Addr.Unmap().Is6())
	if err != nil {
		return err
	}
	data, err := dial(ctx, "tcp", netip.AddrPortFrom(t.Addr.Unmap(), port))
	if err != nil {
		return failf(err, "%s: data connection", s.label)
	}
	defer data.Close()
	if _, err := s.expect("RETR "+path, 1); err != nil {
		return err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	lr := &io.LimitedReader{R: data, N: maxBodyBytes}
	body, err := readBody(lr, bp)
	if err != nil {
		return failf(err, "%s: RETR %s", s.label, path)
	}
	data.Close()
	if lr.N > 0 {
		if _, err := s.expect("", 2); err != nil {
			return err
		}
	}
	if re != nil && !re.Match(body) {
		return errorf("%s: RETR %s: contents do not match %s", s.label, path, strconv.Quote(t.Receive))
	}
	s.send("QUIT")
	return nil
}

// passive enters passive mode and returns the data port.
func (s *session) passive(v6 bool) (uint16, error) {
	if v6 {
		line, err := s.expect("EPSV", 2)
		if err != nil {
			return 0, err
		}
		// 229 Entering Extended Passive Mode (|||6446|)
		i := strings.Index(line, "(|||")
		j := strings.LastIndex(line, "|)")
		if i < 0 || j < i+4 {
			return 0, errorf("%s: cannot parse %s", s.label, quoteLine(line))
		}
		p, err := strconv.ParseUint(line[i+4:j], 10, 16)
		if err != nil || p == 0 {
			return 0, errorf("%s: cannot parse %s", s.label, quoteLine(line))
		}
		return uint16(p), nil
	}
	line, err := s.expect("PASV", 2)
	if err != nil {
		return 0, err
	}
	// 227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)
	i := strings.IndexAny(line[3:], "0123456789")
	if i < 0 {
		return 0, errorf("%s: cannot parse %s", s.label, quoteLine(line))
	}
	f := strings.FieldsFunc(line[3+i:], func(r rune) bool { return r == ',' || r == ')' || r == ' ' })
	if len(f) < 6 {
		return 0, errorf("%s: cannot parse %s", s.label, quoteLine(line))
	}
	p1, e1 := strconv.ParseUint(f[4], 10, 8)
	p2, e2 := strconv.ParseUint(f[5], 10, 8)
	if e1 != nil || e2 != nil || p1<<8|p2 == 0 {
		return 0, errorf("%s: cannot parse %s", s.label, quoteLine(line))
	}
	return uint16(p1<<8 | p2), nil
}

package logging

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Facilities are the syslog facility names ldirectord's `logfile="<facility>"` accepts, with their codes.
var Facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// severityInfo is the only priority ldirectord logs at.
const severityInfo = 6

// Syslog sends each line to the local syslog socket as ldirectord does (openlog("ldirectord", "pid",
// <facility>), priority info): `<PRI>Mmm dd hh:mm:ss ldirectord[<pid>]: <message>`. It reconnects when
// the syslog daemon restarts.
type Syslog struct {
	facility int
	path     string
	fallback io.Writer

	mu     sync.Mutex
	conn   net.Conn
	stream bool // conn is a SOCK_STREAM socket, which needs a delimiter after each message
}

// NewSyslog checks the facility name and connects to the socket at path ("" = /dev/log). An unknown
// facility is an error; an unreachable socket is not (ldirectord's openlog does not fail either): the
// connection is retried for every line, and lines that cannot be sent go to fallback.
func NewSyslog(facility, path string, fallback io.Writer) (*Syslog, error) {
	code, ok := Facilities[strings.ToLower(facility)]
	if !ok {
		return nil, fmt.Errorf("unable to open logfile: %s: unknown syslog facility", facility)
	}
	if path == "" {
		path = DefaultSyslogSocket
	}
	s := &Syslog{facility: code, path: path, fallback: fallback}
	s.mu.Lock()
	s.conn, s.stream, _ = dialSyslog(path)
	s.mu.Unlock()
	return s, nil
}

func dialSyslog(path string) (c net.Conn, stream bool, err error) {
	if c, err = net.Dial("unixgram", path); err == nil {
		return c, false, nil
	}
	c, err = net.Dial("unix", path)
	return c, true, err
}

// Write sends one message (p without its trailing newline). It never fails: when the socket cannot be
// reached the message goes to the fallback writer.
func (s *Syslog) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	pkt := fmt.Sprintf("<%d>%s ldirectord[%d]: %s", s.facility<<3|severityInfo,
		time.Now().Format(time.Stamp), os.Getpid(), msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	for try := 0; try < 2; try++ {
		if s.conn == nil {
			c, stream, err := dialSyslog(s.path)
			if err != nil {
				break
			}
			s.conn, s.stream = c, stream
		}
		out := pkt
		if s.stream {
			out += "\n"
		}
		if _, err := s.conn.Write([]byte(out)); err == nil {
			return len(p), nil
		}
		s.conn.Close()
		s.conn = nil
	}
	if s.fallback != nil {
		s.fallback.Write([]byte(msg + "\n"))
	}
	return len(p), nil
}

// Close closes the connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		err := s.conn.Close()
		s.conn = nil
		return err
	}
	return nil
}

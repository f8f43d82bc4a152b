package alert

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/logging"
	"github.com/sirupsen/logrus"
)

// session is one SMTP dialogue as the server saw it.
type session struct {
	Helo  string
	From  string
	Rcpts []string
	Data  string
}

// smtpServer is a minimal SMTP server on loopback that records every message. rejectRcpt makes RCPT
// fail for that address; hold makes the server accept connections but never greet (a hung relay).
type smtpServer struct {
	ln         net.Listener
	rejectRcpt string
	hold       chan struct{}

	mu       sync.Mutex
	sessions []session
	got      chan struct{}
}

func newSMTPServer(t *testing.T, opts ...func(*smtpServer)) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, got: make(chan struct{}, 100)}
	for _, o := range opts {
		o(s)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	if s.hold != nil {
		<-s.hold
		return
	}
	r := bufio.NewReader(c)
	reply := func(l string) { fmt.Fprintf(c, "%s\r\n", l) }
	reply("220 test.example ESMTP")
	var cur session
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch {
		case verb == "EHLO":
			cur.Helo = strings.TrimPrefix(line, "EHLO ")
			reply("250-test.example")
			reply("250 8BITMIME")
		case strings.HasPrefix(line, "MAIL FROM:"):
			cur.From, _, _ = strings.Cut(strings.TrimPrefix(line, "MAIL FROM:"), " ") // drop BODY=8BITMIME
			reply("250 ok")
		case strings.HasPrefix(line, "RCPT TO:"):
			rcpt := strings.TrimPrefix(line, "RCPT TO:")
			if s.rejectRcpt != "" && rcpt == "<"+s.rejectRcpt+">" {
				reply("550 5.1.1 no such user")
				continue
			}
			cur.Rcpts = append(cur.Rcpts, rcpt)
			reply("250 ok")
		case verb == "DATA":
			reply("354 go ahead")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(l)
			}
			cur.Data = data.String()
			s.mu.Lock()
			s.sessions = append(s.sessions, cur)
			s.mu.Unlock()
			s.got <- struct{}{}
			cur = session{}
			reply("250 queued")
		case verb == "QUIT":
			reply("221 bye")
			return
		case verb == "RSET":
			cur = session{}
			reply("250 ok")
		default:
			reply("502 unknown")
		}
	}
}

func (s *smtpServer) wait(t *testing.T, n int) []session {
	t.Helper()
	for range n {
		select {
		case <-s.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("SMTP server got %d of %d messages", len(s.all()), n)
		}
	}
	return s.all()
}

func (s *smtpServer) all() []session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]session(nil), s.sessions...)
}

// logBuf collects log lines (bare messages) safely across goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger() (*logrus.Logger, *logBuf) {
	b := &logBuf{}
	l := logrus.New()
	l.SetOutput(b)
	l.SetFormatter(logging.MessageFormatter{})
	return l, b
}

func virtual() *config.Virtual {
	return &config.Virtual{
		Addr: netip.MustParseAddr("10.9.9.9"), Port: 80, Protocol: config.TCP,
		EmailAlert: "ops@example.com", EmailAlertStatus: config.StatusAll, SMTP: "127.0.0.1",
	}
}

var t0 = time.Date(2026, time.November, 22, 0, 3, 33, 0, time.UTC)

func newMailer(t *testing.T, s *smtpServer, o Options) (*Mailer, *logBuf, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	l, b := testLogger()
	o.Log = l
	if o.Hostname == "" {
		o.Hostname = "lb1.example.com"
	}
	if s != nil {
		o.SMTPPort = s.port()
	}
	if o.Now == nil {
		o.Now = func() time.Time { return t0 }
	}
	m := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, b, cancel, done
}

func username(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

func TestSMTPMessage(t *testing.T) {
	s := newSMTPServer(t)
	m, logs, _, _ := newMailer(t, s, Options{From: "ldirectord@example.com"})
	v := virtual()
	v.EmailAlert = "ops@example.com, Night Shift <night@example.com>,pager@example.com"
	v.ServiceName = "web"
	v.Comment = "front page"
	m.Alert(v, config.StatusRunning, "Deleted real server: 127.0.0.2:80 (10.9.9.9:80)")
	got := s.wait(t, 1)[0]

	me := username(t)
	if got.Helo != "lb1.example.com" {
		t.Errorf("EHLO %q", got.Helo)
	}
	if got.From != "<"+me+"@lb1.example.com>" {
		t.Errorf("MAIL FROM:%s, want <%s@lb1.example.com>", got.From, me)
	}
	// One RCPT per address (ldirectord sends the whole list as one, W19).
	if want := []string{"<ops@example.com>", "<night@example.com>", "<pager@example.com>"}; fmt.Sprint(got.Rcpts) != fmt.Sprint(want) {
		t.Errorf("RCPT TO %v, want %v", got.Rcpts, want)
	}
	want := "From: ldirectord@example.com\r\n" +
		"To: ops@example.com, Night Shift <night@example.com>,pager@example.com\r\n" +
		"Subject: [web] Deleted real server: 127.0.0.2:80 (10.9.9.9:80)\r\n" +
		"Date: Sun, 22 Nov 2026 00:03:33 +0000\r\n" +
		"\r\n" +
		"ldirectord host: lb1.example.com\r\n" +
		"Log-Message: [web] Deleted real server: 127.0.0.2:80 (10.9.9.9:80)\r\n" +
		"Daemon-Status: running\r\n" +
		"\r\n" +
		"Service name: web\r\n" +
		"Comment: front page\r\n" +
		"\r\n"
	if got.Data != want {
		t.Errorf("message:\n%s\nwant:\n%s", got.Data, want)
	}
	if got, want := logs.String(), "emailalert: Deleted real server: 127.0.0.2:80 (10.9.9.9:80)\n"; got != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

func TestSMTPPlainBody(t *testing.T) {
	s := newSMTPServer(t)
	m, _, _, _ := newMailer(t, s, Options{})
	m.Alert(virtual(), config.StatusStarting, "Added real server: 127.0.0.2:80 (10.9.9.9:80) (Weight set to 1)")
	got := s.wait(t, 1)[0]
	me := username(t)
	want := "From: " + me + "@lb1.example.com\r\n" +
		"To: ops@example.com\r\n" +
		"Subject: Added real server: 127.0.0.2:80 (10.9.9.9:80) (Weight set to 1)\r\n" +
		"Date: Sun, 22 Nov 2026 00:03:33 +0000\r\n" +
		"\r\n" +
		"ldirectord host: lb1.example.com\r\n" +
		"Log-Message: Added real server: 127.0.0.2:80 (10.9.9.9:80) (Weight set to 1)\r\n" +
		"Daemon-Status: starting\r\n"
	if got.Data != want {
		t.Errorf("message:\n%q\nwant:\n%q", got.Data, want)
	}
}

func TestStatusFilter(t *testing.T) {
	s := newSMTPServer(t)
	m, logs, cancel, done := newMailer(t, s, Options{})
	v := virtual()
	v.EmailAlertStatus = config.StatusStarting | config.StatusStopping
	m.Alert(v, config.StatusRunning, "Deleted real server: 127.0.0.2:80 (10.9.9.9:80)")                   // filtered
	m.Alert(v, config.StatusReloading, "Added real server: 127.0.0.3:80 (10.9.9.9:80) (Weight set to 1)") // filtered
	m.Alert(v, config.StatusStopping, "Purged real server (stop): 127.0.0.2:80 (10.9.9.9:80)")
	none := virtual()
	none.EmailAlertStatus = config.StatusNone
	m.Alert(none, config.StatusStarting, "Added real server: 127.0.0.4:80 (10.9.9.9:80) (Weight set to 1)")
	off := virtual()
	off.EmailAlert = ""
	m.Alert(off, config.StatusStarting, "Added real server: 127.0.0.5:80 (10.9.9.9:80) (Weight set to 1)")
	cancel()
	<-done // Run drains the queue before returning
	got := s.all()
	if len(got) != 1 || !strings.Contains(got[0].Data, "Subject: Purged real server (stop): 127.0.0.2:80 (10.9.9.9:80)\r\n") ||
		!strings.Contains(got[0].Data, "Daemon-Status: stopping\r\n") {
		t.Errorf("sent %+v, want only the stopping alert", got)
	}
	if got, want := logs.String(), "emailalert: Purged real server (stop): 127.0.0.2:80 (10.9.9.9:80)\n"; got != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

func TestReminders(t *testing.T) {
	s := newSMTPServer(t)
	now := t0
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m, logs, _, _ := newMailer(t, s, Options{Now: clock})
	v := virtual()
	v.EmailAlertFreq = 60 * time.Second
	other := virtual()
	other.Port = 443
	other.EmailAlertFreq = 0 // no reminders

	m.Alert(v, config.StatusRunning, "Deleted real server: 127.0.0.2:80 (10.9.9.9:80)")
	m.Alert(v, config.StatusRunning, "Readd Quiescent real server: 127.0.0.3:80 (10.9.9.9:80) (Weight set to 0)")
	m.Alert(v, config.StatusRunning, "Deleted fallback server: 127.0.0.1:80 (10.9.9.9:80)")
	m.Alert(other, config.StatusRunning, "Deleted real server: 127.0.0.2:443 (10.9.9.9:443)")
	s.wait(t, 4)

	m.Tick(t0.Add(59 * time.Second)) // not due yet
	m.Tick(t0.Add(60 * time.Second)) // both reals due, the fallback and the freq=0 one never
	got := s.wait(t, 2)[4:]
	subjects := []string{}
	for _, g := range got {
		for _, l := range strings.Split(g.Data, "\r\n") {
			if strings.HasPrefix(l, "Subject: ") {
				subjects = append(subjects, l)
			}
		}
	}
	wantSubj := map[string]bool{
		"Subject: Inaccessible real server: 127.0.0.2:80 (10.9.9.9:80)": true,
		"Subject: Inaccessible real server: 127.0.0.3:80 (10.9.9.9:80)": true,
	}
	if len(subjects) != 2 || !wantSubj[subjects[0]] || !wantSubj[subjects[1]] || subjects[0] == subjects[1] {
		t.Errorf("reminders %q", subjects)
	}

	// The reminder restarts the period; a real that comes back is forgotten.
	m.Alert(v, config.StatusRunning, "Added real server: 127.0.0.2:80 (10.9.9.9:80) (Weight set to 1)")
	s.wait(t, 1)
	m.Tick(t0.Add(119 * time.Second))
	m.Tick(t0.Add(120 * time.Second))
	last := s.wait(t, 1)
	if n := len(last); n != 8 || !strings.Contains(last[7].Data, "Subject: Inaccessible real server: 127.0.0.3:80 (10.9.9.9:80)\r\n") {
		t.Errorf("after the restore: %d messages, last %q", n, last[n-1].Data)
	}
	// The mail subject for a re-added quiescent real is "Quiescent ...", as in ldirectord.
	if !strings.Contains(logs.String(), "emailalert: Quiescent real server: 127.0.0.3:80 (10.9.9.9:80) (Weight set to 0)\n") {
		t.Errorf("log lacks the Quiescent alert:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "\nemailalert: Inaccessible real server: 127.0.0.2:80 (10.9.9.9:80)\n") {
		t.Errorf("log lacks the reminder:\n%s", logs)
	}
}

// TestReminderStateWhileFiltered: the reminder state is kept even when the status filter suppresses the
// mail, as in ldirectord.
func TestReminderStateWhileFiltered(t *testing.T) {
	s := newSMTPServer(t)
	m, _, _, _ := newMailer(t, s, Options{})
	v := virtual()
	v.EmailAlertFreq = 10 * time.Second
	v.EmailAlertStatus = config.StatusRunning
	m.Alert(v, config.StatusStarting, "Deleted real server: 127.0.0.2:80 (10.9.9.9:80)")
	m.Tick(t0.Add(10 * time.Second))
	got := s.wait(t, 1)
	if len(got) != 1 || !strings.Contains(got[0].Data, "Subject: Inaccessible real server: 127.0.0.2:80 (10.9.9.9:80)\r\n") {
		t.Errorf("got %+v", got)
	}
}

func TestSMTPFailures(t *testing.T) {
	s := newSMTPServer(t, func(s *smtpServer) { s.rejectRcpt = "nobody@example.com" })
	m, logs, cancel, done := newMailer(t, s, Options{Timeout: 2 * time.Second})
	v := virtual()
	v.EmailAlert = "nobody@example.com"
	m.Alert(v, config.StatusRunning, "Deleted real server: 127.0.0.2:80 (10.9.9.9:80)")

	cancel()
	<-done
	want := "emailalert: Deleted real server: 127.0.0.2:80 (10.9.9.9:80)\n" +
		"failed to send SMTP email message error=\"RCPT TO:<nobody@example.com>: 550 5.1.1 no such user\"\n"
	if logs.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", logs, want)
	}

	// A relay that is not listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	m2, logs2, cancel2, done2 := newMailer(t, nil, Options{SMTPPort: closedPort})
	m2.Alert(virtual(), config.StatusRunning, "Deleted real server: 127.0.0.2:80 (10.9.9.9:80)")
	cancel2()
	<-done2
	if !strings.HasPrefix(logs2.String(), "emailalert: Deleted real server: 127.0.0.2:80 (10.9.9.9:80)\n"+
		"failed to send SMTP email message error=\"dial tcp 127.0.0.1:") || !strings.Contains(logs2.String(), "connection refused") {
		t.Errorf("log:\n%s", logs2)
	}
}

// TestSlowRelayDoesNotBlock: a relay that accepts and never answers neither blocks Alert nor delays the
// stop beyond the timeout, and the failure is logged.
func TestSlowRelayDoesNotBlock(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	s := newSMTPServer(t, func(s *smtpServer) { s.hold = hold })
	m, logs, cancel, done := newMailer(t, s, Options{Timeout: 500 * time.Millisecond})
	v := virtual()
	returned := make(chan struct{})
	go func() {
		for i := range 300 { // more than the queue holds
			m.Alert(v, config.StatusRunning, fmt.Sprintf("Deleted real server: 127.0.0.%d:80 (10.9.9.9:80)", i))
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Alert blocked on a hung relay")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its drain timeout")
	}
	out := logs.String()
	if n := strings.Count(out, "failed to send SMTP email message error=\"256 messages already waiting\"\n"); n != 300-256-1 && n != 300-256 {
		t.Errorf("%d alerts dropped as queue-full, want 43 or 44 (300 minus the queue minus the one in flight)", n)
	}
	if !strings.Contains(out, "failed to send SMTP email message error=\"read tcp") &&
		!strings.Contains(out, "i/o timeout") {
		t.Errorf("no timeout logged:\n%s", out[:min(len(out), 2000)])
	}
	if n := strings.Count(out, "failed to send SMTP email message"); n != 300 {
		t.Errorf("%d failures logged, want every one of the 300 alerts", n)
	}
}

// TestSendmail covers the path without smtp=: the message is piped to `sendmail -t`.
func TestSendmail(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "sendmail")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" > "+out+".args\ncat > "+out+"\n"), 0o755)
	m, logs, cancel, done := newMailer(t, nil, Options{Sendmail: script})
	v := virtual()
	v.SMTP = ""
	m.Alert(v, config.StatusRunning, "Deleted real server: 127.0.0.2:80 (10.9.9.9:80)")
	cancel()
	<-done
	args, _ := os.ReadFile(out + ".args")
	body, _ := os.ReadFile(out)
	if string(args) != "-t\n" {
		t.Errorf("sendmail args %q", args)
	}
	want := "To: ops@example.com\r\n" +
		"Subject: Deleted real server: 127.0.0.2:80 (10.9.9.9:80)\r\n" +
		"Date: Sun, 22 Nov 2026 00:03:33 +0000\r\n" +
		"\n" +
		"ldirectord host: lb1.example.com\n" +
		"Log-Message: Deleted real server: 127.0.0.2:80 (10.9.9.9:80)\n" +
		"Daemon-Status: running\n"
	if string(body) != want {
		t.Errorf("sendmail got:\n%q\nwant:\n%q", body, want)
	}
	if logs.String() != "emailalert: Deleted real server: 127.0.0.2:80 (10.9.9.9:80)\n" {
		t.Errorf("log %q", logs)
	}

	m2, logs2, cancel2, done2 := newMailer(t, nil, Options{Sendmail: filepath.Join(dir, "missing")})
	m2.Alert(v, config.StatusRunning, "Deleted real server: 127.0.0.2:80 (10.9.9.9:80)")
	cancel2()
	<-done2
	if !strings.Contains(logs2.String(), "\nfailed to send email message error=") {
		t.Errorf("log %q", logs2)
	}
}

func TestRecipients(t *testing.T) {
	for in, want := range map[string]string{
		"a@x":                         "[a@x]",
		"a@x, b@y,c@z":                "[a@x b@y c@z]",
		"Ops <ops@x>, b@y":            "[ops@x b@y]",
		"not an address, also@x.com ": "[not an address also@x.com]",
	} {
		if got := fmt.Sprint(Recipients(in)); got != want {
			t.Errorf("Recipients(%q) = %s, want %s", in, got, want)
		}
	}
}

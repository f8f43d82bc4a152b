package logging

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// sunNov22 is the brief's example time; Nov 1 of the same year checks the space-padded day.
var (
	sunNov22 = time.Date(2026, time.November, 22, 0, 3, 33, 0, time.Local)
	sunNov1  = time.Date(2026, time.November, 1, 9, 5, 7, 0, time.Local)
)

func TestPerlTime(t *testing.T) {
	for _, c := range []struct {
		in   time.Time
		want string
	}{
		{sunNov22, "Sun Nov 22 00:03:33 2026"},
		{sunNov1, "Sun Nov  1 09:05:07 2026"},
		{time.Date(2027, time.February, 3, 23, 59, 59, 0, time.UTC), "Wed Feb  3 23:59:59 2027"},
	} {
		if got := PerlTime(c.in); got != c.want {
			t.Errorf("PerlTime(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ldirectord.log")
	var stderr bytes.Buffer
	l, err := New(Options{LogFile: path, CfgName: "t2.cf", Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	l.WithTime(sunNov22).Info("Added virtual server: 10.9.9.9:80")
	l.WithTime(sunNov1).Info("Invoking ldirectord invoked as: /usr/sbin/ldirectord t2.cf start ")
	l.WithTime(sunNov1).Info("message with its own newline\n")
	l.WithTime(sunNov1).Debug("not shown without -d")
	l.WithTime(sunNov1).Warn("warnings have no prefix")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid := os.Getpid()
	want := fmt.Sprintf("[Sun Nov 22 00:03:33 2026|t2.cf|%d] Added virtual server: 10.9.9.9:80\n"+
		"[Sun Nov  1 09:05:07 2026|t2.cf|%d] Invoking ldirectord invoked as: /usr/sbin/ldirectord t2.cf start \n"+
		"[Sun Nov  1 09:05:07 2026|t2.cf|%d] message with its own newline\n"+
		"[Sun Nov  1 09:05:07 2026|t2.cf|%d] warnings have no prefix\n", pid, pid, pid, pid)
	if string(got) != want {
		t.Errorf("log file:\n%s\nwant:\n%s", got, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %q", stderr.String())
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("log file mode %v is group or world writable", fi.Mode())
	}
}

func TestFileModeDefaultPathAndFields(t *testing.T) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&FileFormatter{CfgName: "ldirectord"})
	l.WithTime(sunNov22).WithError(errors.New("connection refused")).WithField("a", 1).Info("x")
	want := fmt.Sprintf("[Sun Nov 22 00:03:33 2026|ldirectord|%d] x a=1 error=\"connection refused\"\n", os.Getpid())
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func TestFileUnwritableGoesToStderr(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "ldirectord.log")
	var stderr bytes.Buffer
	_, err := New(Options{LogFile: path, CfgName: "x", Stderr: &stderr})
	if err == nil || !strings.HasPrefix(err.Error(), "unable to open logfile: "+path+": ") {
		t.Fatalf("New with a missing directory: err = %v, want unable to open logfile: %s: ...", err, path)
	}

	// A file that disappears later (its directory removed): see TestFileDirRemoved.
}

// TestFileDirRemoved: the log directory removed while running. Log calls do not wait (not even
// CreateDelay, made an hour here), the problem is reported once (stderr and syslog) however many lines
// and retries follow, the lines are kept in order and written once the directory is back, with a report
// that it is, and later lines go straight to the file again.
func TestFileDirRemoved(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	path := filepath.Join(sub, "ldirectord.log")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	var syslogged []string
	var mu sync.Mutex
	toSyslog := func(msg string) { mu.Lock(); syslogged = append(syslogged, msg); mu.Unlock() }
	l, err := New(Options{LogFile: path, CfgName: "x", Stderr: &stderr,
		File: &File{CreateDelay: time.Hour, RetryMax: 20 * time.Millisecond, Report: toSyslog}})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("before")
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	// The directory is gone, not just the file: no wait for logrotate (CreateDelay, an hour here).
	done := make(chan struct{})
	go func() {
		for i := range 20 {
			l.Infof("line %d", i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("log calls blocked with the log directory removed")
	}
	report := "ldirectord: cannot write log file " + path + ": no such file or directory; lines are kept (at most 10000) and written when it can be written again\n"
	deadline := time.Now().Add(15 * time.Second)
	for stderr.String() != report {
		if time.Now().After(deadline) {
			t.Fatalf("stderr %q, want the report %q", stderr.String(), report)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // several more retries
	l.Info("line 20")
	if got := stderr.String(); got != report {
		t.Errorf("stderr %q: the problem must be reported once", got)
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if !Flush(l, 15*time.Second) {
		t.Fatal("the queued lines were not written once the directory was back")
	}
	l.Info("after")
	data, _ := os.ReadFile(path)
	var got []string
	for _, ln := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		got = append(got, ln[strings.Index(ln, "] ")+2:])
	}
	var want []string
	for i := range 21 {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	want = append(want, "after")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("log file after the directory came back:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	back := "ldirectord: log file " + path + " can be written again"
	if got := stderr.String(); got != report+back+"\n" {
		t.Errorf("stderr %q, want the report and %q", got, back)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(syslogged) != fmt.Sprint([]string{strings.TrimSuffix(report, "\n"), back}) {
		t.Errorf("syslog got %q", syslogged)
	}
}

// syncBuffer is a bytes.Buffer safe for the background writer and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSupervisedMode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	// LogFile is ignored in supervised mode, as in ldirectord.
	l, err := New(Options{Supervised: true, LogFile: "/nonexistent/dir/x.log", Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	l.WithTime(sunNov1).Info("Starting Linux Director v1.186-ha with pid: 42")
	l.WithTime(sunNov1).Debug("hidden")
	if got, want := stdout.String(), "[Sun Nov  1 09:05:07 2026] Starting Linux Director v1.186-ha with pid: 42\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q", stderr.String())
	}
}

func TestDebugMode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	l, err := New(Options{Debug: true, Supervised: true, LogFile: "local0", Stdout: &stdout, Stderr: &stderr,
		SyslogSocket: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("Added virtual server: 10.9.9.9:80")
	l.Debug("Checking negotiate: real server=x")
	l.Trace("very verbose")
	want := "Added virtual server: 10.9.9.9:80\nDEBUG2: Checking negotiate: real server=x\n"
	if stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q", stdout.String())
	}
}

// TestReconfigure switches a logger in use from a file to another file, as a reload that changes
// logfile= does.
func TestReconfigure(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	l, err := New(Options{LogFile: a, CfgName: "c"})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("one")
	if err := Configure(l, Options{LogFile: b, CfgName: "c"}); err != nil {
		t.Fatal(err)
	}
	l.Info("two")
	for path, want := range map[string]string{a: "] one\n", b: "] two\n"} {
		got, _ := os.ReadFile(path)
		if !strings.HasSuffix(string(got), want) || strings.Count(string(got), "\n") != 1 {
			t.Errorf("%s = %q, want one line ending %q", path, got, want)
		}
	}
}

var syslogLine = regexp.MustCompile(`^<(\d+)>([A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d) ldirectord\[(\d+)\]: (.*)$`)

func listenSyslog(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readDatagram(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading syslog datagram: %v", err)
	}
	return string(buf[:n])
}

func TestSyslogMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	srv := listenSyslog(t, path)
	var stderr bytes.Buffer
	l, err := New(Options{LogFile: "local0", SyslogSocket: path, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer Close(l)
	before := time.Now()
	l.Info("Added virtual server: 10.9.9.9:80")
	got := readDatagram(t, srv)
	m := syslogLine.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("datagram %q does not look like <PRI>Mmm dd hh:mm:ss ldirectord[pid]: msg", got)
	}
	if m[1] != "134" { // local0 (16) * 8 + info (6)
		t.Errorf("priority %s, want 134 (local0.info)", m[1])
	}
	if m[3] != fmt.Sprint(os.Getpid()) {
		t.Errorf("pid %s, want %d", m[3], os.Getpid())
	}
	if m[4] != "Added virtual server: 10.9.9.9:80" {
		t.Errorf("message %q", m[4])
	}
	if ts, want := m[2], before.Format(time.Stamp); ts != want && ts != time.Now().Format(time.Stamp) {
		t.Errorf("timestamp %q, want %q", ts, want)
	}

	// Errors are logged at info too: ldirectord has a single priority.
	l.Error("failed to send SMTP email message")
	if m := syslogLine.FindStringSubmatch(readDatagram(t, srv)); m == nil || m[1] != "134" {
		t.Errorf("error line: %q", m)
	}

	// The syslog daemon restarts: the socket is recreated at the same path. The next line reconnects.
	srv.Close()
	os.Remove(path)
	l.Info("lost while syslog is down")
	if got, want := stderr.String(), "lost while syslog is down\n"; got != want {
		t.Errorf("stderr while syslog is down = %q, want %q", got, want)
	}
	srv2 := listenSyslog(t, path)
	l.Info("Reloading Linux Director Daemon config on signal")
	if m := syslogLine.FindStringSubmatch(readDatagram(t, srv2)); m == nil || m[4] != "Reloading Linux Director Daemon config on signal" {
		t.Errorf("after syslog restart: %q", m)
	}
}

func TestSyslogFacilities(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	srv := listenSyslog(t, path)
	for name, pri := range map[string]string{"daemon": "30", "LOCAL7": "190", "user": "14", "authpriv": "86"} {
		s, err := NewSyslog(name, path, nil)
		if err != nil {
			t.Fatalf("NewSyslog(%q): %v", name, err)
		}
		s.Write([]byte("x\n"))
		s.Close()
		if m := syslogLine.FindStringSubmatch(readDatagram(t, srv)); m == nil || m[1] != pri || m[4] != "x" {
			t.Errorf("facility %s: got %q, want priority %s", name, m, pri)
		}
	}
	if _, err := New(Options{LogFile: "local9", SyslogSocket: path}); err == nil ||
		err.Error() != "unable to open logfile: local9: unknown syslog facility" {
		t.Errorf("unknown facility: err = %v", err)
	}
}

// TestSyslogStream covers a syslog daemon that only offers a stream socket: each message ends with a
// newline so that messages do not run together.
func TestSyslogStream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := NewSyslog("local1", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Write([]byte("one\n"))
	s.Write([]byte("two\n"))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 1024)
	for strings.Count(string(got), "\n") < 2 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "]: one") || !strings.HasSuffix(lines[1], "]: two") ||
		!strings.HasPrefix(lines[0], "<142>") {
		t.Errorf("stream messages %q", lines)
	}
}

func BenchmarkFileLine(b *testing.B) {
	path := filepath.Join(b.TempDir(), "ldirectord.log")
	l, err := New(Options{LogFile: path, CfgName: "ldirectord.cf"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		l.Info("Added real server: 127.0.0.2:8080 (10.9.9.9:80) (Weight set to 1)")
	}
}

// TestHoldWritesTogether: lines logged under Hold reach the file only at the last release, whole and in
// order, after the lines before them; a held burst larger than maxHeld is written as it goes; a logger
// that does not write to a file holds nothing.
func TestHoldWritesTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ldirectord.log")
	l, err := New(Options{LogFile: path, CfgName: "t.cf"})
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	pid := os.Getpid()
	line := func(msg string) string {
		return fmt.Sprintf("[Sun Nov 22 00:03:33 2026|t.cf|%d] %s\n", pid, msg)
	}
	l.WithTime(sunNov22).Info("before")
	release := Hold(l)
	inner := Hold(l)
	l.WithTime(sunNov22).Info("Added real server: 10.2.0.1:8000 (10.9.9.1:80) (Weight set to 1)")
	inner()
	l.WithTime(sunNov22).Info("Resetting soft failure count: 10.2.0.1:8000 (tcp:10.9.9.1:80)")
	if got, want := read(), line("before"); got != want {
		t.Fatalf("log file while held:\n%s\nwant:\n%s", got, want)
	}
	release()
	want := line("before") + line("Added real server: 10.2.0.1:8000 (10.9.9.1:80) (Weight set to 1)") +
		line("Resetting soft failure count: 10.2.0.1:8000 (tcp:10.9.9.1:80)")
	if got := read(); got != want {
		t.Fatalf("log file after release:\n%s\nwant:\n%s", got, want)
	}
	l.WithTime(sunNov22).Info("after")
	if got := read(); got != want+line("after") {
		t.Fatalf("a line after the release was not written at once:\n%s", got)
	}

	// A burst past maxHeld is written as it goes, never more than maxHeld behind.
	os.Truncate(path, 0)
	release = Hold(l)
	msg := strings.Repeat("x", 1000)
	n := 0
	for ; n*len(line(msg)) < maxHeld+5000; n++ {
		l.WithTime(sunNov22).Info(msg)
	}
	if got := len(read()); got == 0 || got > n*len(line(msg)) {
		t.Errorf("a burst of %d bytes held: %d bytes written before the release", n*len(line(msg)), got)
	}
	release()
	if got, want := read(), strings.Repeat(line(msg), n); got != want {
		t.Errorf("after the release: %d bytes, want %d (the %d lines in order)", len(got), len(want), n)
	}

	var out bytes.Buffer
	d, err := New(Options{Debug: true, Stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	release = Hold(d)
	d.Info("to stderr")
	if !strings.Contains(out.String(), "to stderr") {
		t.Errorf("Hold of a logger writing to stderr held its line: %q", out.String())
	}
	release()
}

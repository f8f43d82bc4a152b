package logging

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// seqLines parses the "line N" messages of a log file and checks each line's format.
func seqLines(t *testing.T, data []byte) []int {
	t.Helper()
	if bytes.IndexByte(data, 0) >= 0 {
		t.Errorf("log file has NUL bytes (a hole left by a write at a stale offset)")
	}
	var seq []int
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "" {
			continue
		}
		i := strings.Index(l, "] line ")
		if !strings.HasPrefix(l, "[") || i < 0 || !strings.Contains(l[:i], "|rot.cf|") {
			t.Fatalf("malformed log line %q", l)
		}
		n, err := strconv.Atoi(l[i+len("] line "):])
		if err != nil {
			t.Fatalf("malformed log line %q", l)
		}
		seq = append(seq, n)
	}
	return seq
}

// checkAll checks that the files, read in order, hold lines 0..n-1 exactly once each, in order.
func checkAll(t *testing.T, n int, files ...string) {
	t.Helper()
	var all []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, seqLines(t, data)...)
	}
	if len(all) != n {
		t.Errorf("%d lines in %v, want %d", len(all), files, n)
	}
	for i, v := range all {
		if v != i {
			t.Fatalf("line %d is %d: lines lost, repeated or reordered across %v", i, v, files)
		}
	}
}

// TestRotateCreate rotates the way logrotate's "create" does (rename, then create an empty file) five
// times while a writer logs without pause. Every line ends up in exactly one of the files.
func TestRotateCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ldirectord.log")
	l, err := New(Options{LogFile: path, CfgName: "rot.cf"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	var wg sync.WaitGroup
	progress := make(chan int, n)
	// The writer races with each rotation for 50 lines, then waits for it, so that every file gets
	// lines: Write never waits (a line that finds no file is queued, see File), so a free-running writer
	// could log everything before the last rotations.
	rotated := make(chan struct{})
	wg.Go(func() {
		for i := range n {
			if i > 50 && (i-50)%(n/6) == 0 && (i-50)/(n/6) <= 5 {
				<-rotated
			}
			l.Infof("line %d", i)
			progress <- i
		}
		close(progress)
	})
	var files []string
	rotations := 0
	for i := range progress {
		if rotations < 5 && i == (rotations+1)*n/6 {
			Flush(l, 15*time.Second) // the lines of the last rotation's window go to the file it made
			rotations++
			old := fmt.Sprintf("%s.%d", path, rotations)
			if err := os.Rename(path, old); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err == nil {
				f.Close()
			} else if !os.IsExist(err) { // the writer may have created it first: also fine
				t.Fatal(err)
			}
			files = append(files, old)
			rotated <- struct{}{}
		}
	}
	wg.Wait()
	Flush(l, 15*time.Second) // lines queued while the file was missing (see File)
	if rotations != 5 {
		t.Fatalf("%d rotations", rotations)
	}
	files = append(files, path)
	// Each file got lines: a writer that kept the old file open would write everything into the first
	// rotated file and leave the live log empty.
	for _, f := range files {
		if data, _ := os.ReadFile(f); len(seqLines(t, data)) == 0 {
			t.Errorf("%s is empty: lines after the rotation did not go to the new file", f)
		}
	}
	checkAll(t, n, files...)
}

// TestRotateCopyTruncate rotates the way logrotate's "copytruncate" does. Lines written after the truncate
// start at offset 0 of the truncated file (O_APPEND), not at the old offset behind a hole of NUL bytes.
func TestRotateCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ldirectord.log")
	l, err := New(Options{LogFile: path, CfgName: "rot.cf"})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	next := 0
	for r := 1; r <= 3; r++ {
		for range 100 {
			l.Infof("line %d", next)
			next++
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		old := fmt.Sprintf("%s.%d", path, r)
		if err := os.WriteFile(old, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		files = append(files, old)
	}
	l.Infof("line %d", next)
	next++
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("[")) {
		t.Errorf("after truncate the file starts %q, want the next line at offset 0", data[:min(len(data), 20)])
	}
	checkAll(t, next, append(files, path)...)
}

// TestLogrotate runs the real logrotate with examples/logrotate.conf (path changed to a temporary file),
// forcing rotation while a writer logs, then once more in copytruncate mode. logrotate must be installed
// (Debian package logrotate); the test fails, not skips, without it.
func TestLogrotate(t *testing.T) {
	bin, err := exec.LookPath("logrotate")
	if err != nil {
		for _, p := range []string{"/usr/sbin/logrotate", "/sbin/logrotate"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Fatalf("logrotate not installed (apt-get install logrotate): %v", err)
	}
	example, err := os.ReadFile("../../examples/logrotate.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(example, []byte("/var/log/ldirectord.log {")) {
		t.Fatalf("examples/logrotate.conf does not rotate /var/log/ldirectord.log")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ldirectord.log")
	rotate := func(conf []byte) {
		t.Helper()
		cf := filepath.Join(dir, "logrotate.conf")
		if err := os.WriteFile(cf, conf, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-f", "-s", filepath.Join(dir, "state"), cf).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Fatalf("logrotate: %v\n%s", err, out)
		}
	}
	conf := bytes.ReplaceAll(example, []byte("/var/log/ldirectord.log"), []byte(path))

	l, err := New(Options{LogFile: path, CfgName: "rot.cf"})
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	logN := func(k int) {
		for range k {
			l.Infof("line %d", next)
			next++
		}
	}
	// Two forced "create" rotations while the writer keeps logging: the first leaves ldirectord.log.1,
	// the second compresses it into .2.gz (delaycompress).
	for range 2 {
		logN(50)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 200; i++ {
				l.Infof("line %d", next)
				next++
				time.Sleep(100 * time.Microsecond)
			}
		}()
		rotate(conf)
		<-done
	}
	logN(50)
	Flush(l, 15*time.Second) // lines queued while a file was missing (see File)
	checkAll(t, next, path+".2.gz", path+".1", path)

	// copytruncate: lines before the run are in the copy, lines after it at the start of the live file.
	os.Remove(path + ".2.gz")
	os.Remove(path + ".1")
	os.WriteFile(path, nil, 0o644)
	next = 0
	logN(100)
	rotate(bytes.Replace(conf, []byte("\tcreate\n"), []byte("\tcopytruncate\n"), 1))
	logN(100)
	Flush(l, 15*time.Second)
	checkAll(t, next, path+".1", path)
}

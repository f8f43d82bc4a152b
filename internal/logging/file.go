package logging

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// File is a log file that is opened, appended to and closed for every line, as ldirectord does. Because
// nothing is held open, it survives every kind of rotation with no signal: after a `create` rotation
// (rename, new file) the next line opens the new file, and after a `copytruncate` rotation O_APPEND puts
// the next line at the new end of the file, so there is no hole of NUL bytes. logrus serialises calls to
// Write, and each line is one write(2) on an O_APPEND descriptor, so lines from several processes (the
// CLI and the daemon) never interleave.
//
// Write never waits. When the file cannot be opened, the line and every line after it are queued (at
// most MaxQueued, the oldest dropped beyond that) and a background goroutine writes them in order once it
// can: when the file is missing from its directory, it first waits CreateDelay for someone else to create
// it (logrotate's `create`
// renames the file and creates the new one a moment later, and a writer that created it first would make
// logrotate move that file aside as `<name>-<date>.backup`), then creates it itself, retrying with a
// growing delay (at most RetryMax) while it cannot. That the file cannot be written is reported once, to
// Fallback and to syslog, and again when it can be written again.
type File struct {
	Path string
	// Fallback receives the reports that the file cannot be written, and can again. Nil drops them.
	Fallback io.Writer
	// CreateDelay is how long the background writer waits for a missing log file to reappear before
	// creating it. Zero means DefaultCreateDelay.
	CreateDelay time.Duration
	// RetryMax bounds the delay between two attempts of the background writer. Zero means
	// DefaultRetryMax.
	RetryMax time.Duration
	// Report also sends those reports elsewhere. Nil means syslog (facility daemon), so that a daemon whose
	// stderr is /dev/null still tells someone.
	Report func(msg string)

	mu       sync.Mutex
	queue    [][]byte      // lines not yet written, in order; non-empty only while retrying
	dropped  int           // lines dropped from the queue since the last report
	retrying chan struct{} // non-nil while the background writer runs; closed when it ends
	reported bool          // the failure was reported and its end not yet
	// holds counts the Holds not yet released; while there is one, lines gather in held and are written
	// together when the last is released (or held outgrows maxHeld).
	holds int
	held  []byte
}

// maxHeld is how many bytes of held lines are written at once at most: a hold of a long burst still
// writes as it goes, and loses at most that much in a crash.
const maxHeld = 64 << 10

// Defaults of File's timing fields.
const (
	DefaultCreateDelay = 50 * time.Millisecond
	DefaultRetryMax    = 5 * time.Second
)

// MaxQueued is the most lines kept for a log file that cannot be written.
const MaxQueued = 10000

// reportToSyslog sends a report about the log file to syslog (facility daemon).
func reportToSyslog(msg string) {
	if s, err := NewSyslog("daemon", "", io.Discard); err == nil {
		s.Write([]byte(msg))
		s.Close()
	}
}

const fileFlags = os.O_WRONLY | os.O_APPEND | os.O_CREATE | syscall.O_CLOEXEC

// Check opens the file for append and closes it, as ldirectord does when it reads `logfile=`. The error
// is `unable to open logfile: <path>` wrapped around the cause.
func (f *File) Check() error {
	fd, err := os.OpenFile(f.Path, fileFlags, 0o644)
	if err != nil {
		return fmt.Errorf("unable to open logfile: %s: %w", f.Path, err)
	}
	return fd.Close()
}

// Write appends p to the file with a single write(2), or queues it for the background writer when the
// file cannot be opened now or earlier lines still wait. It never fails and never waits.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holds > 0 && f.retrying == nil {
		f.held = append(f.held, p...)
		if len(f.held) >= maxHeld {
			f.writeHeld()
		}
		return len(p), nil
	}
	f.write(p)
	return len(p), nil
}

// Hold gathers the lines written from now until the matching Release, and writes them with one write(2)
// then: a burst of lines (750 reals added at start, each with its line) costs one open, write and close
// instead of one each, which is most of their cost where system calls are expensive (user-mode Linux).
// Each line is still whole and in order, and lines of other processes never interleave within one.
func (f *File) Hold() {
	f.mu.Lock()
	f.holds++
	f.mu.Unlock()
}

// Release ends a Hold; the last one writes what was held.
func (f *File) Release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holds--; f.holds == 0 {
		f.writeHeld()
	}
}

// writeHeld writes the held lines (f.mu held).
func (f *File) writeHeld() {
	if len(f.held) == 0 {
		return
	}
	f.write(f.held)
	if cap(f.held) > maxHeld*2 {
		f.held = nil
	} else {
		f.held = f.held[:0]
	}
}

// write appends p, whole lines, to the file, or queues it for the background writer (f.mu held).
func (f *File) write(p []byte) {
	if f.retrying == nil {
		err := appendLine(f.Path, p)
		if err == nil {
			return
		}
		// Only a file missing from its directory may be in logrotate's hands for a moment.
		rotating := false
		if errors.Is(err, fs.ErrNotExist) {
			fi, derr := os.Stat(filepath.Dir(f.Path))
			rotating = derr == nil && fi.IsDir()
		}
		f.retrying = make(chan struct{})
		go f.retry(rotating)
	}
	f.enqueue(bytes.Clone(p))
}

// appendLine appends p to the existing file at path: open, one write(2), close, with the system calls
// themselves. os.OpenFile also sets the descriptor non-blocking and tries to add it to the runtime's
// poller (two fcntl and an epoll_ctl that fails for a regular file): twice the system calls of a line,
// which cost 0.3 ms a line where system calls are expensive (user-mode Linux; 1,500 lines when 750
// reals come up).
func appendLine(path string, p []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	for len(p) > 0 && err == nil {
		var n int
		if n, err = unix.Write(fd, p); err == unix.EINTR {
			err = nil
		} else if err == nil && n == 0 {
			err = io.ErrShortWrite
		}
		p = p[max(n, 0):]
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil && cerr != unix.EINTR {
		err = cerr
	}
	if err != nil {
		return &fs.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// enqueue adds lines to the queue, dropping the oldest beyond MaxQueued. f.mu is held.
func (f *File) enqueue(lines ...[]byte) {
	f.queue = append(f.queue, lines...)
	if n := len(f.queue) - MaxQueued; n > 0 {
		f.queue = append(f.queue[:0], f.queue[n:]...)
		f.dropped += n
	}
}

// retry is the background writer: it writes the queued lines once it can, then ends, so that Write
// takes the direct way again.
func (f *File) retry(rotating bool) {
	delay := time.Duration(0)
	if rotating {
		delay = cmp.Or(f.CreateDelay, DefaultCreateDelay)
	}
	retryMax := cmp.Or(f.RetryMax, DefaultRetryMax)
	for {
		time.Sleep(delay)
		f.mu.Lock()
		lines := f.queue
		f.queue = nil
		f.mu.Unlock()

		err := f.append(lines)

		f.mu.Lock()
		if err != nil {
			f.queue = append(lines, f.queue...)
			f.enqueue()
			report := !f.reported
			f.reported = true
			f.mu.Unlock()
			if report {
				f.report(fmt.Sprintf("ldirectord: cannot write log file %s: %v; lines are kept (at most %d) and"+
					" written when it can be written again", f.Path, unwrapPath(err), MaxQueued))
			}
			delay = min(max(2*delay, 100*time.Millisecond), retryMax)
			continue
		}
		if len(f.queue) > 0 {
			f.mu.Unlock()
			delay = 0
			continue
		}
		reported, dropped := f.reported, f.dropped
		f.reported, f.dropped = false, 0
		done := f.retrying
		f.retrying = nil
		f.mu.Unlock()
		if reported {
			msg := "ldirectord: log file " + f.Path + " can be written again"
			if dropped > 0 {
				msg += fmt.Sprintf("; %d lines were dropped", dropped)
			}
			f.report(msg)
		}
		close(done) // after the report: Flush returns once everything is said
		return
	}
}

// append writes lines to the file, creating it if needed, with one write(2).
func (f *File) append(lines [][]byte) error {
	fd, err := os.OpenFile(f.Path, fileFlags, 0o644)
	if err != nil {
		return err
	}
	_, err = fd.Write(bytes.Join(lines, nil))
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *File) report(msg string) {
	if f.Fallback != nil {
		f.Fallback.Write([]byte(msg + "\n"))
	}
	if f.Report != nil {
		f.Report(msg)
		return
	}
	reportToSyslog(msg)
}

// unwrapPath is the error without the path a *PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Flush waits until every queued line is written, at most timeout; it reports whether they were.
func (f *File) Flush(timeout time.Duration) bool {
	f.mu.Lock()
	done := f.retrying
	f.mu.Unlock()
	if done == nil {
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

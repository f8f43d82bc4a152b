package logging

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// File is a log file that is opened, appended to and closed for every line, as ldirectord does. Because
// nothing is held open, it survives every kind of rotation with no signal: after a `create` rotation
// (rename, new file) the next line opens the new file, and after a `copytruncate` rotation O_APPEND puts
// the next line at the new end of the file, so there is no hole of NUL bytes. logrus serialises calls to
// Write, and each line is one write(2) on an O_APPEND descriptor, so lines from several processes (the
// CLI and the daemon) never interleave.
//
// When the file is missing, Write waits CreateDelay for someone else to create it before creating it
// itself: logrotate's `create` renames the file and creates the new one a moment later, and a writer
// that created it first would make logrotate move that file aside as `<name>-<date>.backup`.
type File struct {
	Path string
	// Fallback receives the line when the file cannot be opened or written (ldirectord prints the bare
	// message on stderr then). Nil drops it.
	Fallback io.Writer
}

// CreateDelay is how long Write waits for a missing log file to reappear before creating it.
var CreateDelay = 50 * time.Millisecond

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

// Write appends p to the file with a single write(2). It never fails: a line that cannot be written goes
// to Fallback.
func (f *File) Write(p []byte) (int, error) {
	fd, err := os.OpenFile(f.Path, fileFlags&^os.O_CREATE, 0)
	if errors.Is(err, fs.ErrNotExist) {
		time.Sleep(CreateDelay)
		fd, err = os.OpenFile(f.Path, fileFlags, 0o644)
	}
	if err == nil {
		_, err = fd.Write(p)
		if cerr := fd.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil && f.Fallback != nil {
		f.Fallback.Write(stripPrefix(p))
	}
	return len(p), nil
}

// stripPrefix drops the `[time|cfg|pid] ` prefix, so the fallback shows the bare message as ld_log does.
func stripPrefix(p []byte) []byte {
	if len(p) > 0 && p[0] == '[' {
		for i := 1; i < len(p)-1; i++ {
			if p[i] == ']' && p[i+1] == ' ' {
				return p[i+2:]
			}
		}
	}
	return p
}

// Package logging writes ldirectord's log lines in the formats of the Perl ldirectord: a log file opened for
// every line, syslog, stderr with -d, and stdout in supervised mode.
package logging

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// TimeLayout is Perl's `scalar localtime` (`%a %b %e %H:%M:%S %Y`, day padded with a space).
const TimeLayout = "Mon Jan _2 15:04:05 2006"

// PerlTime formats t as Perl's `scalar localtime` does, in t's location.
func PerlTime(t time.Time) string { return t.Format(TimeLayout) }

// DefaultLogFile is the logfile when the config names none.
const DefaultLogFile = "/var/log/ldirectord.log"

// DefaultSyslogSocket is where syslog messages go (Perl's setlogsock("unix")).
const DefaultSyslogSocket = "/dev/log"

// FileFormatter formats entries for a log file: `[<localtime>|<CFGNAME>|<pid>] <message>`.
type FileFormatter struct {
	// CfgName is the config file's basename (`ldirectord` when no config was named).
	CfgName string
}

// Format implements logrus.Formatter.
func (f *FileFormatter) Format(e *logrus.Entry) ([]byte, error) {
	return line(fmt.Sprintf("[%s|%s|%d] ", PerlTime(e.Time), f.CfgName, os.Getpid()), e), nil
}

// SupervisedFormatter formats entries for supervised mode (stdout): `[<localtime>] <message>`.
type SupervisedFormatter struct{}

// Format implements logrus.Formatter.
func (SupervisedFormatter) Format(e *logrus.Entry) ([]byte, error) {
	return line("["+PerlTime(e.Time)+"] ", e), nil
}

// DebugFormatter formats entries for -d (stderr): the bare message, and debug entries as `DEBUG2: <message>`
// (trace entries as `DEBUG3: <message>`), as ldirectord's debug output looks.
type DebugFormatter struct{}

// Format implements logrus.Formatter.
func (DebugFormatter) Format(e *logrus.Entry) ([]byte, error) {
	prefix := ""
	switch e.Level {
	case logrus.DebugLevel:
		prefix = "DEBUG2: "
	case logrus.TraceLevel:
		prefix = "DEBUG3: "
	}
	return line(prefix, e), nil
}

// MessageFormatter formats the bare message (and fields), for syslog, whose writer adds the header.
type MessageFormatter struct{}

// Format implements logrus.Formatter.
func (MessageFormatter) Format(e *logrus.Entry) ([]byte, error) { return line("", e), nil }

// line is prefix + message + fields + "\n". The message is chomped once, as ld_log does, so a message
// with its own trailing newline does not produce an empty line. Fields are not part of ldirectord's
// format; they are appended as ` key=value` (sorted) so that nothing a caller logs is lost. Code that
// logs ldirectord's phrases must put everything into the message.
func line(prefix string, e *logrus.Entry) []byte {
	var b strings.Builder
	b.Grow(len(prefix) + len(e.Message) + 1)
	b.WriteString(prefix)
	b.WriteString(strings.TrimSuffix(e.Message, "\n"))
	if len(e.Data) > 0 {
		keys := make([]string, 0, len(e.Data))
		for k := range e.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := e.Data[k]
			if err, ok := v.(error); ok {
				v = err.Error()
			}
			s := fmt.Sprint(v)
			if strings.ContainsAny(s, " \t\n\"=") {
				s = fmt.Sprintf("%q", s)
			}
			b.WriteString(" " + k + "=" + s)
		}
	}
	b.WriteByte('\n')
	return []byte(b.String())
}

// Options say where log lines go. The precedence is ldirectord's: Debug, then Supervised, then LogFile.
type Options struct {
	Debug      bool   // -d: stderr, debug lines included
	Supervised bool   // supervised=yes: stdout
	LogFile    string // "/path" for a file, else a syslog facility; "" means DefaultLogFile
	CfgName    string // for the file format

	Stdout io.Writer // default os.Stdout
	Stderr io.Writer // default os.Stderr; also where file and syslog lines go when those fail
	// SyslogSocket is the syslog socket path (default /dev/log). A seam for tests.
	SyslogSocket string
	// File, when set, is the template of a log file's settings (File's CreateDelay, RetryMax, Report); its
	// Path and Fallback are set from LogFile and Stderr. A seam for tests.
	File *File
}

// Configure points l at the destination o describes, replacing its formatter, output and level. It is
// safe to call on a logger in use (a reload that changes logfile=): logrus locks around both.
// The previous output is closed when it is one Configure made (a syslog connection).
func Configure(l *logrus.Logger, o Options) error {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	var (
		out io.Writer
		f   logrus.Formatter
	)
	level := logrus.InfoLevel
	switch {
	case o.Debug:
		out, f, level = o.Stderr, DebugFormatter{}, logrus.DebugLevel
	case o.Supervised:
		out, f = o.Stdout, SupervisedFormatter{}
	default:
		name := o.LogFile
		if name == "" {
			name = DefaultLogFile
		}
		if strings.HasPrefix(name, "/") {
			fw := &File{Path: name, Fallback: o.Stderr}
			if o.File != nil {
				fw.CreateDelay, fw.RetryMax, fw.Report = o.File.CreateDelay, o.File.RetryMax, o.File.Report
			}
			if err := fw.Check(); err != nil {
				return err
			}
			out, f = fw, &FileFormatter{CfgName: o.CfgName}
		} else {
			sw, err := NewSyslog(name, o.SyslogSocket, o.Stderr)
			if err != nil {
				return err
			}
			out, f = sw, MessageFormatter{}
		}
	}
	old := l.Out
	l.SetFormatter(f)
	l.SetOutput(out)
	l.SetLevel(level)
	fw, _ := out.(*File)
	setFile(l, fw)
	if s, ok := old.(*Syslog); ok && old != out {
		s.Close()
	}
	return nil
}

// New returns a logger configured by o.
func New(o Options) (*logrus.Logger, error) {
	l := logrus.New()
	if err := Configure(l, o); err != nil {
		return nil, err
	}
	return l, nil
}

// Close releases what Configure opened for l (a syslog connection) and sends further lines to stderr.
func Close(l *logrus.Logger) {
	old := l.Out
	l.SetOutput(os.Stderr)
	setFile(l, nil)
	if s, ok := old.(*Syslog); ok {
		s.Close()
	}
}

// Hold gathers the lines l writes to its log file until the returned release is called, and writes them
// together then (see File.Hold). Other outputs are left alone.
func Hold(l *logrus.Logger) (release func()) {
	files.Lock()
	f := files.of[l]
	files.Unlock()
	if f == nil {
		return func() {}
	}
	f.Hold()
	return f.Release
}

// files is the log file each logger Configure pointed at one writes to, for Hold: reading l.Out races
// with a reload's Configure.
var files struct {
	sync.Mutex
	of map[*logrus.Logger]*File
}

// setFile records that l writes to f (nil: not to a File).
func setFile(l *logrus.Logger, f *File) {
	files.Lock()
	defer files.Unlock()
	if f == nil {
		delete(files.of, l)
		return
	}
	if files.of == nil {
		files.of = map[*logrus.Logger]*File{}
	}
	files.of[l] = f
}

// Flush waits until the lines l's log file has queued (see File) are written, at most timeout; it reports
// whether they were. Other outputs write at once.
func Flush(l *logrus.Logger, timeout time.Duration) bool {
	if f, ok := l.Out.(*File); ok {
		return f.Flush(timeout)
	}
	return true
}

package supervisor

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	syscmd "github.com/ldirectord-go/ldirectord/internal/command"
)

// watcher notices changes to the config file (reference §5.7): fsnotify on the file's directory (and on
// the directory of its symlink target, so a symlink swap is seen), debounced, with a content hash deciding
// whether anything changed, and a periodic hash check in case an event is missed.
type watcher struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// watchConfig starts or stops the watcher as the running config asks (owner goroutine): it runs when
// autoreload=yes or a callback is set. The watcher only reads the file and sends the owner a message.
func (s *Supervisor) watchConfig(ctx context.Context) {
	cfg := s.cfg
	need := cfg.File != "" && (cfg.AutoReload || cfg.Callback != "")
	if need == (s.watcher != nil) {
		return
	}
	if !need {
		s.stopWatch()
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	s.watcher = w
	interval := cfg.CheckInterval
	go func() {
		defer close(w.done)
		s.watch(wctx, cfg.File, interval)
	}()
}

// stopWatch stops the watcher and waits for it: it never waits for the owner (its sends give up when
// it is stopped) and never blocks in a file (hashFile).
func (s *Supervisor) stopWatch() {
	if w := s.watcher; w != nil {
		w.cancel()
		<-w.done
		s.watcher = nil
	}
}

// MaxConfigSize bounds the config file the watcher reads: a larger one is not checked.
const MaxConfigSize = 64 << 20

// hashFile hashes the regular file at path, of at most MaxConfigSize bytes. Anything else (a FIFO, whose
// open would block, a device such as /dev/zero, which never ends, a directory) is an error, and so is a
// larger file: the watcher only ever reads what the config loader could sensibly parse.
func hashFile(path string) ([32]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return [32]byte{}, err
	}
	if !fi.Mode().IsRegular() {
		return [32]byte{}, fmt.Errorf("%s: not a regular file", path)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return [32]byte{}, err
	}
	if n > MaxConfigSize {
		return [32]byte{}, fmt.Errorf("%s: larger than %d bytes", path, MaxConfigSize)
	}
	return [32]byte(h.Sum(nil)), nil
}

// watch runs until ctx ends. The first hash is only recorded, as ldirectord does.
func (s *Supervisor) watch(ctx context.Context, path string, poll time.Duration) {
	last, lastErr := hashFile(path)
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Errorf("Can not watch configuration file '%s': %v; checking it every %s", path, err, poll)
	}
	var events chan fsnotify.Event
	var errs chan error
	watched := map[string]bool{}
	addWatches := func() {
		if fw == nil {
			return
		}
		dirs := []string{filepath.Dir(path)}
		if real, err := filepath.EvalSymlinks(path); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		for _, d := range dirs {
			if !watched[d] && fw.Add(d) == nil {
				watched[d] = true
			}
		}
	}
	if fw != nil {
		defer fw.Close()
		events, errs = fw.Events, fw.Errors
		addWatches()
	}
	if s.watchStarted != nil {
		s.watchStarted()
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	warned := false
	check := func() {
		addWatches()
		h, err := hashFile(path)
		if err != nil {
			if !warned {
				s.log.Warnf("can not open file %s for checking", path)
				warned = true
			}
			lastErr = err
			return
		}
		warned = false
		if lastErr == nil && h == last {
			return
		}
		first := lastErr != nil && last == [32]byte{}
		last, lastErr = h, nil
		if first {
			return
		}
		select {
		case s.changed <- path:
		case <-ctx.Done():
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			debounce.Reset(s.opts.Debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			s.log.Debugf("watching configuration file '%s': %v", path, err)
		case <-debounce.C:
			check()
		case <-ticker.C:
			check()
		}
	}
}

// configChanged is ldirectord's check_cfgfile after a change (owner goroutine): log, reload if
// autoreload=yes, then run the callback (as Perl's system(STRING) would: see internal/command) whether or
// not autoreload is on: after the reload is done, as ldirectord.
func (s *Supervisor) configChanged(path string) {
	s.log.Infof("Configuration file '%s' has changed on disk", path)
	var callback command
	if s.cfg.Callback != "" {
		callback = command{argv: syscmd.Argv(s.cfg.Callback, path), executable: s.cfg.Callback}
	}
	if s.cfg.AutoReload {
		s.log.Info(" - reread new configuration")
		s.requestLoad(loadReq{callback: callback})
		return
	}
	s.log.Info(" - ignore new configuration")
	if callback.argv != nil {
		s.queue(callback)
	}
}

package supervisor

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ldirectord-go/ldirectord/internal/command"
)

// Debounce is how long the config watcher waits after the last change event before it reads the file, so
// an editor's write-rename-chmod burst makes one reload.
var Debounce = 250 * time.Millisecond

// watcher notices changes to the config file (reference §5.7): fsnotify on the file's directory (and on
// the directory of its symlink target, so a symlink swap is seen), debounced, with a content hash deciding
// whether anything changed, and a periodic hash check in case an event is missed.
type watcher struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// watchConfig starts or stops the watcher as the running config asks: it runs when autoreload=yes or a
// callback is set.
func (s *Supervisor) watchConfig(ctx context.Context) {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
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
	if interval <= 0 {
		interval = 10 * time.Second
	}
	go func() {
		defer close(w.done)
		s.watch(wctx, cfg.File, interval)
	}()
}

func (s *Supervisor) stopWatch() {
	if w := s.watcher; w != nil {
		w.cancel()
		<-w.done
		s.watcher = nil
	}
}

func hashFile(path string) ([32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
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
		s.configChanged(ctx, path)
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
			debounce.Reset(Debounce)
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

var callbackMu sync.Mutex

// configChanged is ldirectord's check_cfgfile after a change: log, reload if autoreload=yes, then run the
// callback (as Perl's system would: see internal/command) whether or not autoreload is on.
func (s *Supervisor) configChanged(ctx context.Context, path string) {
	s.mu.Lock()
	auto, callback := s.cfg.AutoReload, s.cfg.Callback
	s.mu.Unlock()
	s.log.Infof("Configuration file '%s' has changed on disk", path)
	if auto {
		s.log.Info(" - reread new configuration")
		s.Reload()
	} else {
		s.log.Info(" - ignore new configuration")
	}
	if callback == "" {
		return
	}
	if fi, err := os.Stat(callback); err != nil || fi.Mode()&0o111 == 0 || fi.IsDir() {
		return
	}
	callbackMu.Lock()
	defer callbackMu.Unlock()
	argv := command.Argv(callback, path)
	if err := s.opts.Run(ctx, argv); err != nil {
		s.log.Errorf("system(%s) failed: %v", command.Text(argv), err)
	}
}

package main

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ldirectord-go/ldirectord/internal/metrics"
)

// metricsServer serves the daemon's metrics at the address of the metrics= directive, and follows it
// across reloads: a new address is listened on before the old one is closed, no address stops serving.
// A port that cannot be had is an error in the log, never a reason to stop checking real servers.
type metricsServer struct {
	m   *metrics.Metrics
	log logrus.FieldLogger

	mu      sync.Mutex
	addr    string // what metrics= says now ("" off)
	srv     *http.Server
	asked   uint64 // requests made (follow)
	applied uint64 // the request whose address is in force
}

// set serves on addr ("" stops serving), at start and at stop.
func (ms *metricsServer) set(addr string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.asked++
	ms.apply(ms.asked, addr)
}

// follow serves on the address of a reloaded config without making the caller (the supervisor's owner
// goroutine) wait for a listen; of several reloads in quick succession the last one wins.
func (ms *metricsServer) follow(addr string) {
	ms.mu.Lock()
	ms.asked++
	n := ms.asked
	ms.mu.Unlock()
	go func() {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		ms.apply(n, addr)
	}()
}

// apply makes request n, for addr, the one in force unless a later one is already. ms.mu is held.
func (ms *metricsServer) apply(n uint64, addr string) {
	if n < ms.applied {
		return
	}
	ms.applied = n
	if addr == ms.addr {
		return
	}
	ms.addr = addr
	old := ms.srv
	ms.srv = nil
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			ms.log.Errorf("Could not serve metrics on %s: %v", addr, err)
		} else {
			mux := http.NewServeMux()
			mux.Handle("/metrics", ms.m.Handler())
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
				WriteTimeout: metrics.ScrapeTimeout + 30*time.Second, IdleTimeout: time.Minute}
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					ms.log.Errorf("Metrics server on %s: %v", addr, err)
				}
			}()
			ms.srv = srv
			ms.log.Infof("Serving metrics on http://%s/metrics", ln.Addr())
		}
	}
	if old != nil {
		old.Close()
	}
}

// close stops serving.
func (ms *metricsServer) close() {
	ms.set("")
}

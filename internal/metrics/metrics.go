// Package metrics exports the daemon's health checks, its kernel table operations and the kernel's own IPVS
// counters to Prometheus.
//
// Events (checks, transitions, kernel operations, reloads) are counted as they happen through the methods of
// Metrics, which the supervisor calls; the per-real state and the kernel's counters are read when Prometheus
// scrapes, from the supervisor's published snapshot and one read of the kernel table, so an idle scrape target
// costs nothing between scrapes.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ldirectord-go/ldirectord/ipvsctl"
	"github.com/ldirectord-go/ldirectord/supervisor"
)

// Failure reasons, the values of the reason label of ldirectord_check_failures_total.
const (
	ReasonRefused   = "refused"     // the real server refused the connection
	ReasonTimeout   = "timeout"     // no answer within the check's timeout
	ReasonLocal     = "local_error" // the director itself could not run the check (fds, memory, ports)
	ReasonNetwork   = "network"     // unreachable, reset and other network errors
	ReasonBadAnswer = "bad_answer"  // the server answered, but not what the check expects
)

// ScrapeTimeout bounds the kernel table read of one scrape.
const ScrapeTimeout = 5 * time.Second

// Source is what a scrape reads: the supervisor's state and the kernel table.
type Source struct {
	// State returns the supervisor's current state (supervisor.Supervisor.Snapshot); nil exports no per-real
	// state.
	State func() supervisor.Snapshot
	// Table reads the kernel table; nil exports no kernel weights or counters.
	Table func(ctx context.Context) (ipvsctl.Table, error)
	// Now is the clock for the seconds since a real's last check. Default time.Now.
	Now func() time.Time
}

// Metrics holds the daemon's metrics. Its event methods are safe for concurrent use; a nil *Metrics ignores
// them, so a daemon without metrics pays one nil check per event.
type Metrics struct {
	reg *prometheus.Registry

	checkDuration *prometheus.HistogramVec
	checkFailures *prometheus.CounterVec
	transitions   *transitions
	reloads       *prometheus.CounterVec
	reloadOK      prometheus.Gauge
	reloadTime    prometheus.Gauge
	kernelOps     *prometheus.CounterVec
}

// New returns the metrics of a daemon whose version is version, reading src at each scrape.
func New(version string, src Source) *Metrics {
	if src.Now == nil {
		src.Now = time.Now
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ldirectord_check_duration_seconds",
			Help:    "How long health checks took, by check (the service= of a negotiate check, else the checktype).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"check"}),
		checkFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ldirectord_check_failures_total",
			Help: "Failed health checks, by reason: refused, timeout, network, bad_answer, local_error (the director's own failure, not the real's).",
		}, []string{"reason"}),
		transitions: &transitions{counts: map[transKey]*[2]uint64{}, desc: prometheus.NewDesc(
			"ldirectord_real_transitions_total",
			"Health changes of a real server, by the health it changed to (up or down).",
			[]string{"virtual", "protocol", "real", "to"}, nil)},
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ldirectord_config_reloads_total",
			Help: "Configuration reloads, by result (success or failure: the old configuration stays in force).",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ldirectord_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded (or none was tried), 0 if it failed.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ldirectord_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in force was loaded, as a Unix time.",
		}),
		kernelOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ldirectord_kernel_operations_total",
			Help: "Changes made to the kernel IPVS table, by operation and result (success or failure).",
		}, []string{"operation", "result"}),
	}
	m.reloadOK.Set(1)
	m.reloadTime.Set(float64(src.Now().UnixNano()) / 1e9)
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "ldirectord_build_info",
		Help:        "The running ldirectord's version, always 1.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.reg.MustRegister(m.checkDuration, m.checkFailures, m.transitions, m.reloads, m.reloadOK, m.reloadTime,
		m.kernelOps, build, &stateCollector{src: src},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Checked records one health check of the given check kind that took d and ended with err (nil: healthy).
func (m *Metrics) Checked(check string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.checkDuration.WithLabelValues(check).Observe(d.Seconds())
	if err != nil {
		m.checkFailures.WithLabelValues(Reason(err)).Inc()
	}
}

// Transition records that a real server's health changed to up or down.
func (m *Metrics) Transition(virtual, protocol, real string, up bool) {
	if m == nil {
		return
	}
	m.transitions.inc(transKey{virtual, protocol, real}, up)
}

// KernelOp records one operation on the kernel table and its outcome.
func (m *Metrics) KernelOp(kind ipvsctl.OpKind, err error) {
	if m == nil {
		return
	}
	m.kernelOps.WithLabelValues(opName(kind), result(err)).Inc()
}

// Reloaded records a configuration reload and its outcome (nil: the new configuration is in force).
func (m *Metrics) Reloaded(err error) {
	if m == nil {
		return
	}
	m.reloads.WithLabelValues(result(err)).Inc()
	if err != nil {
		m.reloadOK.Set(0)
		return
	}
	m.reloadOK.Set(1)
	m.reloadTime.SetToCurrentTime()
}

func result(err error) string {
	if err != nil {
		return "failure"
	}
	return "success"
}

func opName(k ipvsctl.OpKind) string {
	switch k {
	case ipvsctl.OpAddService:
		return "add_service"
	case ipvsctl.OpUpdateService:
		return "update_service"
	case ipvsctl.OpDeleteService:
		return "delete_service"
	case ipvsctl.OpAddDestination:
		return "add_destination"
	case ipvsctl.OpUpdateDestination:
		return "update_destination"
	case ipvsctl.OpDeleteDestination:
		return "delete_destination"
	}
	return "unknown"
}

// Reason classifies a check failure for ldirectord_check_failures_total.
func Reason(err error) string {
	if _, local := supervisor.LocalCause(err); local {
		return ReasonLocal
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return ReasonNetwork
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return ReasonTimeout
	}
	return ReasonBadAnswer
}

// transitions is ldirectord_real_transitions_total: a series per real server and direction. A CounterVec
// costs about 460 bytes a series (4.6 MB at 10,000 reals, every one of which comes up at start); two
// counters in a map cost a fifth of that.
type transitions struct {
	mu     sync.Mutex
	counts map[transKey]*[2]uint64 // [down, up]
	desc   *prometheus.Desc
}

type transKey struct{ virtual, protocol, real string }

func (t *transitions) inc(k transKey, up bool) {
	i := 0
	if up {
		i = 1
	}
	t.mu.Lock()
	c := t.counts[k]
	if c == nil {
		c = new([2]uint64)
		t.counts[k] = c
	}
	c[i]++
	t.mu.Unlock()
}

func (t *transitions) Describe(ch chan<- *prometheus.Desc) { ch <- t.desc }

func (t *transitions) Collect(ch chan<- prometheus.Metric) {
	// The owner goroutine counts transitions: it waits for the scrape only while the counts are copied,
	// not while the series are built and sent.
	type series struct {
		k transKey
		c [2]uint64
	}
	t.mu.Lock()
	all := make([]series, 0, len(t.counts))
	for k, c := range t.counts {
		all = append(all, series{k, *c})
	}
	t.mu.Unlock()
	for _, s := range all {
		for i, to := range [2]string{"down", "up"} {
			if s.c[i] > 0 {
				ch <- prometheus.MustNewConstMetric(t.desc, prometheus.CounterValue, float64(s.c[i]), s.k.virtual, s.k.protocol, s.k.real, to)
			}
		}
	}
}

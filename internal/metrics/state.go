package metrics

import (
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
	"github.com/ldirectord-go/ldirectord/supervisor"
)

var (
	virtualLabels = []string{"virtual", "protocol"}
	realLabels    = []string{"virtual", "protocol", "real"}

	descRealUp = prometheus.NewDesc("ldirectord_real_up",
		"1 if the real server's checks say it is up, 0 if down; absent until its first check decides.", realLabels, nil)
	descRealWeight = prometheus.NewDesc("ldirectord_real_weight",
		"The real server's current weight in the kernel table (0: quiesced); absent when it is not in the table.", realLabels, nil)
	descRealConfigWeight = prometheus.NewDesc("ldirectord_real_configured_weight",
		"The real server's weight in the configuration.", realLabels, nil)
	descRealInTable = prometheus.NewDesc("ldirectord_real_in_table",
		"1 if the real server is in the kernel table (at any weight), else 0.", realLabels, nil)
	descRealFailures = prometheus.NewDesc("ldirectord_real_consecutive_failures",
		"Consecutive failed checks of the real server (ldirectord's failcount).", realLabels, nil)
	descRealSinceCheck = prometheus.NewDesc("ldirectord_real_seconds_since_last_check",
		"Seconds since the real server's last check ended; absent before its first check.", realLabels, nil)
	descFallback = prometheus.NewDesc("ldirectord_virtual_fallback_active",
		"1 if the virtual service's fallback server is in the kernel table, else 0.", virtualLabels, nil)
	descRealsUp = prometheus.NewDesc("ldirectord_virtual_reals_up",
		"How many real servers of the virtual service are up.", virtualLabels, nil)
	descReals = prometheus.NewDesc("ldirectord_virtual_reals",
		"How many real servers the virtual service has in the configuration.", virtualLabels, nil)
	descLag = prometheus.NewDesc("ldirectord_check_lag_seconds",
		"How far the checks run behind their checkinterval, daemon-wide (0 when every check starts on time).", nil, nil)
	descRealNoVerdict = prometheus.NewDesc("ldirectord_real_stale",
		"1 while the real server has no fresh verdict because the director could not run its check (it keeps its last health), else 0.", realLabels, nil)
	descStarting = prometheus.NewDesc("ldirectord_starting",
		"1 while the daemon is starting (not every real has had its first check), else 0.", nil, nil)
	descScrapeError = prometheus.NewDesc("ldirectord_kernel_table_read_errors",
		"1 if this scrape could not read the kernel IPVS table (its counters and weights are then missing), else 0.", nil, nil)

	descVirtualConns    = prometheus.NewDesc("ldirectord_ipvs_virtual_connections_total", "Connections scheduled by the kernel for the virtual service.", virtualLabels, nil)
	descVirtualInPkts   = prometheus.NewDesc("ldirectord_ipvs_virtual_incoming_packets_total", "Packets the kernel received for the virtual service.", virtualLabels, nil)
	descVirtualOutPkts  = prometheus.NewDesc("ldirectord_ipvs_virtual_outgoing_packets_total", "Packets the kernel sent for the virtual service.", virtualLabels, nil)
	descVirtualInBytes  = prometheus.NewDesc("ldirectord_ipvs_virtual_incoming_bytes_total", "Bytes the kernel received for the virtual service.", virtualLabels, nil)
	descVirtualOutBytes = prometheus.NewDesc("ldirectord_ipvs_virtual_outgoing_bytes_total", "Bytes the kernel sent for the virtual service.", virtualLabels, nil)

	descRealConns    = prometheus.NewDesc("ldirectord_ipvs_real_connections_total", "Connections the kernel scheduled to the real server.", realLabels, nil)
	descRealActive   = prometheus.NewDesc("ldirectord_ipvs_real_active_connections", "The real server's active connections in the kernel.", realLabels, nil)
	descRealInactive = prometheus.NewDesc("ldirectord_ipvs_real_inactive_connections", "The real server's inactive connections in the kernel.", realLabels, nil)
	descRealInPkts   = prometheus.NewDesc("ldirectord_ipvs_real_incoming_packets_total", "Packets the kernel forwarded to the real server.", realLabels, nil)
	descRealOutPkts  = prometheus.NewDesc("ldirectord_ipvs_real_outgoing_packets_total", "Packets the kernel passed back from the real server.", realLabels, nil)
	descRealInBytes  = prometheus.NewDesc("ldirectord_ipvs_real_incoming_bytes_total", "Bytes the kernel forwarded to the real server.", realLabels, nil)
	descRealOutBytes = prometheus.NewDesc("ldirectord_ipvs_real_outgoing_bytes_total", "Bytes the kernel passed back from the real server.", realLabels, nil)
)

// stateCollector turns the supervisor's snapshot and one read of the kernel table into metrics, at scrape time.
type stateCollector struct{ src Source }

// Describe sends nothing: the collector is unchecked, since which series exist depends on the configuration.
func (c *stateCollector) Describe(chan<- *prometheus.Desc) {}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	var snap supervisor.Snapshot
	if c.src.State != nil {
		snap = c.src.State()
	}
	now := c.src.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descStarting, boolValue(snap.Phase == config.StatusStarting))
	gauge(descLag, snap.Lag.Seconds())

	var table ipvsctl.Table
	if c.src.Table != nil {
		ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
		t, err := c.src.Table(ctx)
		cancel()
		gauge(descScrapeError, boolValue(err != nil))
		table = t
	}
	seen := make(map[ipvsctl.ServiceID]bool, len(snap.Virtuals))
	for _, v := range snap.Virtuals {
		if seen[v.Service] {
			continue // the same kernel service twice in one config: the parser rejects it, but never panic on it
		}
		seen[v.Service] = true
		proto := protocolOf(v.ID)
		up := 0
		kv := table[v.Service]
		realSeen := make(map[string]bool, len(v.Reals))
		for _, r := range v.Reals {
			if realSeen[r.Real] {
				continue
			}
			realSeen[r.Real] = true
			l := []string{v.Virtual, proto, r.Real}
			switch r.Health {
			case supervisor.Up:
				up++
				gauge(descRealUp, 1, l...)
			case supervisor.Down:
				gauge(descRealUp, 0, l...)
			}
			gauge(descRealConfigWeight, float64(r.Weight), l...)
			gauge(descRealInTable, boolValue(r.InTable), l...)
			gauge(descRealFailures, float64(r.FailCount), l...)
			gauge(descRealNoVerdict, boolValue(r.NoVerdict != ""), l...)
			if !r.LastCheck.IsZero() {
				gauge(descRealSinceCheck, max(0, now.Sub(r.LastCheck).Seconds()), l...)
			}
			if kv == nil {
				continue
			}
			d, ok := kv.Destinations[r.Dest]
			if !ok {
				continue
			}
			gauge(descRealWeight, float64(d.Weight), l...)
			counter(descRealConns, d.Stats.Conns, l...)
			gauge(descRealActive, float64(d.Stats.ActiveConns), l...)
			gauge(descRealInactive, float64(d.Stats.InactiveConns), l...)
			counter(descRealInPkts, d.Stats.InPkts, l...)
			counter(descRealOutPkts, d.Stats.OutPkts, l...)
			counter(descRealInBytes, d.Stats.InBytes, l...)
			counter(descRealOutBytes, d.Stats.OutBytes, l...)
		}
		l := []string{v.Virtual, proto}
		gauge(descFallback, boolValue(v.FallbackActive), l...)
		gauge(descRealsUp, float64(up), l...)
		gauge(descReals, float64(len(v.Reals)), l...)
		if kv != nil {
			counter(descVirtualConns, kv.Stats.Conns, l...)
			counter(descVirtualInPkts, kv.Stats.InPkts, l...)
			counter(descVirtualOutPkts, kv.Stats.OutPkts, l...)
			counter(descVirtualInBytes, kv.Stats.InBytes, l...)
			counter(descVirtualOutBytes, kv.Stats.OutBytes, l...)
		}
	}
}

// protocolOf is the protocol part of a VirtualState.ID: tcp, udp, sctp, fwm or fwm6.
func protocolOf(id string) string {
	p, _, _ := strings.Cut(id, ":")
	return p
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/metrics/promtool"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
	"github.com/ldirectord-go/ldirectord/supervisor"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestReason(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("connect 10.0.0.2:80: %w", syscall.ECONNREFUSED), ReasonRefused},
		{fmt.Errorf("GET http://10.0.0.2/: %w", context.DeadlineExceeded), ReasonTimeout},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, ReasonTimeout},
		{fmt.Errorf("dial: %w", syscall.EMFILE), ReasonLocal},
		{fmt.Errorf("dial: %w", syscall.ENFILE), ReasonLocal},
		{fmt.Errorf("dial: %w", syscall.ENOBUFS), ReasonLocal},
		{fmt.Errorf("dial: %w", syscall.ENOMEM), ReasonLocal},
		{fmt.Errorf("dial: %w", syscall.EADDRNOTAVAIL), ReasonLocal},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), ReasonNetwork},
		{fmt.Errorf("dial: %w", syscall.EHOSTUNREACH), ReasonNetwork},
		{errors.New("GET http://10.0.0.2:80/index.html: 404 Not Found"), ReasonBadAnswer},
		{errors.New(`GET http://10.0.0.2:80/: receive "ok" not found in the answer`), ReasonBadAnswer},
	} {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func testSource(tableErr error) Source {
	web := ipvsctl.ServiceID{Family: ipvsctl.IPv4, Protocol: ipvsctl.TCP, Addr: netip.MustParseAddr("192.168.6.240"), Port: 80}
	dns := ipvsctl.ServiceID{Family: ipvsctl.IPv4, Protocol: ipvsctl.UDP, Addr: netip.MustParseAddr("192.168.6.240"), Port: 53}
	r1 := ipvsctl.DestinationID{Addr: netip.MustParseAddr("192.168.6.2"), Port: 80}
	r2 := ipvsctl.DestinationID{Addr: netip.MustParseAddr("192.168.6.3"), Port: 80}
	r3 := ipvsctl.DestinationID{Addr: netip.MustParseAddr("192.168.6.4"), Port: 80}
	fb := ipvsctl.DestinationID{Addr: netip.MustParseAddr("127.0.0.1"), Port: 53}
	d1 := ipvsctl.DestinationID{Addr: netip.MustParseAddr("192.168.6.5"), Port: 53}
	snap := supervisor.Snapshot{Phase: config.StatusRunning, Lag: 2500 * time.Millisecond, Virtuals: []supervisor.VirtualState{
		{Virtual: "192.168.6.240:80", ID: "tcp:192.168.6.240:80", Service: web, Reals: []supervisor.RealState{
			{Real: "192.168.6.2:80", Dest: r1, Weight: 2, Health: supervisor.Up, LastCheck: t0.Add(-1500 * time.Millisecond), Since: t0.Add(-time.Hour), InTable: true},
			{Real: "192.168.6.3:80", Dest: r2, Weight: 1, Health: supervisor.Down, FailCount: 3, LastCheck: t0.Add(-2 * time.Second), LastError: "GET http://192.168.6.3:80/: connection refused", InTable: true},
			{Real: "192.168.6.4:80", Dest: r3, Weight: 1, Health: supervisor.Unknown, NoVerdict: "too many open files", NoVerdictSince: t0},
		}},
		{Virtual: "192.168.6.240:53", ID: "udp:192.168.6.240:53", Service: dns, FallbackActive: true, Reals: []supervisor.RealState{
			{Real: "192.168.6.5:53", Dest: d1, Weight: 1, Health: supervisor.Down, FailCount: 1, LastCheck: t0.Add(-time.Second)},
		}},
	}}
	table := ipvsctl.Table{
		web: {Service: ipvsctl.Service{ServiceID: web, Scheduler: "wrr", Stats: ipvsctl.Stats{Conns: 1000, InPkts: 5000, OutPkts: 4000, InBytes: 300000, OutBytes: 9000000}},
			Destinations: map[ipvsctl.DestinationID]ipvsctl.Destination{
				r1: {DestinationID: r1, Weight: 2, Stats: ipvsctl.Stats{ActiveConns: 7, InactiveConns: 3, Conns: 990, InPkts: 4900, OutPkts: 3900, InBytes: 290000, OutBytes: 8900000}},
				r2: {DestinationID: r2, Weight: 0, Stats: ipvsctl.Stats{Conns: 10, InPkts: 100, OutPkts: 100, InBytes: 10000, OutBytes: 100000}},
			}},
		dns: {Service: ipvsctl.Service{ServiceID: dns, Scheduler: "wrr"},
			Destinations: map[ipvsctl.DestinationID]ipvsctl.Destination{fb: {DestinationID: fb, Weight: 1}}},
	}
	return Source{
		State: func() supervisor.Snapshot { return snap },
		Table: func(context.Context) (ipvsctl.Table, error) {
			if tableErr != nil {
				return nil, tableErr
			}
			return table, nil
		},
		Now: func() time.Time { return t0 },
	}
}

// scrape serves m over real HTTP on loopback and returns the ldirectord_ lines of the text exposition.
func scrape(t *testing.T, m *Metrics) (ldirectord, all string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v\n%s", resp.StatusCode, err, body)
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(string(body), "\n") {
		if strings.HasPrefix(l, "ldirectord_") && !strings.HasPrefix(l, "ldirectord_config_last_reload_success_timestamp_seconds") {
			b.WriteString(l)
		}
	}
	return b.String(), string(body)
}

func TestScrape(t *testing.T) {
	m := New("1.2.3", testSource(nil))
	m.Checked("http", 500*time.Millisecond, nil)
	m.Checked("http", 250*time.Millisecond, fmt.Errorf("GET: %w", syscall.ECONNREFUSED))
	m.Checked("ping", 2*time.Second, context.DeadlineExceeded)
	m.Checked("http", 125*time.Millisecond, fmt.Errorf("dial: %w", syscall.EMFILE))
	m.Transition("192.168.6.240:80", "tcp", "192.168.6.3:80", false)
	m.Transition("192.168.6.240:80", "tcp", "192.168.6.3:80", true)
	m.Transition("192.168.6.240:80", "tcp", "192.168.6.3:80", false)
	m.KernelOp(ipvsctl.OpAddService, nil)
	m.KernelOp(ipvsctl.OpAddDestination, nil)
	m.KernelOp(ipvsctl.OpAddDestination, errors.New("no such scheduler"))
	m.Reloaded(nil)
	m.Reloaded(errors.New("ldirectord.cf:3: unknown directive"))
	var nilMetrics *Metrics
	nilMetrics.Checked("http", time.Second, nil) // a daemon without metrics: no panic, nothing counted
	nilMetrics.Reloaded(nil)

	got, _ := scrape(t, m)
	want := `ldirectord_build_info{version="1.2.3"} 1
ldirectord_check_duration_seconds_bucket{check="http",le="0.001"} 0
ldirectord_check_duration_seconds_bucket{check="http",le="0.0025"} 0
ldirectord_check_duration_seconds_bucket{check="http",le="0.005"} 0
ldirectord_check_duration_seconds_bucket{check="http",le="0.01"} 0
ldirectord_check_duration_seconds_bucket{check="http",le="0.025"} 0
ldirectord_check_duration_seconds_bucket{check="http",le="0.05"} 0
ldirectord_check_duration_seconds_bucket{check="http",le="0.1"} 0
ldirectord_check_duration_seconds_bucket{check="http",le="0.25"} 2
ldirectord_check_duration_seconds_bucket{check="http",le="0.5"} 3
ldirectord_check_duration_seconds_bucket{check="http",le="1"} 3
ldirectord_check_duration_seconds_bucket{check="http",le="2.5"} 3
ldirectord_check_duration_seconds_bucket{check="http",le="5"} 3
ldirectord_check_duration_seconds_bucket{check="http",le="10"} 3
ldirectord_check_duration_seconds_bucket{check="http",le="+Inf"} 3
ldirectord_check_duration_seconds_sum{check="http"} 0.875
ldirectord_check_duration_seconds_count{check="http"} 3
ldirectord_check_duration_seconds_bucket{check="ping",le="0.001"} 0
ldirectord_check_duration_seconds_bucket{check="ping",le="0.0025"} 0
ldirectord_check_duration_seconds_bucket{check="ping",le="0.005"} 0
ldirectord_check_duration_seconds_bucket{check="ping",le="0.01"} 0
ldirectord_check_duration_seconds_bucket{check="ping",le="0.025"} 0
ldirectord_check_duration_seconds_bucket{check="ping",le="0.05"} 0
ldirectord_check_duration_seconds_bucket{check="ping",le="0.1"} 0
ldirectord_check_duration_seconds_bucket{check="ping",le="0.25"} 0
ldirectord_check_duration_seconds_bucket{check="ping",le="0.5"} 0
ldirectord_check_duration_seconds_bucket{check="ping",le="1"} 0
ldirectord_check_duration_seconds_bucket{check="ping",le="2.5"} 1
ldirectord_check_duration_seconds_bucket{check="ping",le="5"} 1
ldirectord_check_duration_seconds_bucket{check="ping",le="10"} 1
ldirectord_check_duration_seconds_bucket{check="ping",le="+Inf"} 1
ldirectord_check_duration_seconds_sum{check="ping"} 2
ldirectord_check_duration_seconds_count{check="ping"} 1
ldirectord_check_failures_total{reason="local_error"} 1
ldirectord_check_failures_total{reason="refused"} 1
ldirectord_check_failures_total{reason="timeout"} 1
ldirectord_check_lag_seconds 2.5
ldirectord_config_last_reload_successful 0
ldirectord_config_reloads_total{result="failure"} 1
ldirectord_config_reloads_total{result="success"} 1
ldirectord_ipvs_real_active_connections{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 7
ldirectord_ipvs_real_active_connections{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 0
ldirectord_ipvs_real_connections_total{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 990
ldirectord_ipvs_real_connections_total{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 10
ldirectord_ipvs_real_inactive_connections{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 3
ldirectord_ipvs_real_inactive_connections{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 0
ldirectord_ipvs_real_incoming_bytes_total{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 290000
ldirectord_ipvs_real_incoming_bytes_total{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 10000
ldirectord_ipvs_real_incoming_packets_total{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 4900
ldirectord_ipvs_real_incoming_packets_total{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 100
ldirectord_ipvs_real_outgoing_bytes_total{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 8.9e+06
ldirectord_ipvs_real_outgoing_bytes_total{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 100000
ldirectord_ipvs_real_outgoing_packets_total{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 3900
ldirectord_ipvs_real_outgoing_packets_total{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 100
ldirectord_ipvs_virtual_connections_total{protocol="tcp",virtual="192.168.6.240:80"} 1000
ldirectord_ipvs_virtual_connections_total{protocol="udp",virtual="192.168.6.240:53"} 0
ldirectord_ipvs_virtual_incoming_bytes_total{protocol="tcp",virtual="192.168.6.240:80"} 300000
ldirectord_ipvs_virtual_incoming_bytes_total{protocol="udp",virtual="192.168.6.240:53"} 0
ldirectord_ipvs_virtual_incoming_packets_total{protocol="tcp",virtual="192.168.6.240:80"} 5000
ldirectord_ipvs_virtual_incoming_packets_total{protocol="udp",virtual="192.168.6.240:53"} 0
ldirectord_ipvs_virtual_outgoing_bytes_total{protocol="tcp",virtual="192.168.6.240:80"} 9e+06
ldirectord_ipvs_virtual_outgoing_bytes_total{protocol="udp",virtual="192.168.6.240:53"} 0
ldirectord_ipvs_virtual_outgoing_packets_total{protocol="tcp",virtual="192.168.6.240:80"} 4000
ldirectord_ipvs_virtual_outgoing_packets_total{protocol="udp",virtual="192.168.6.240:53"} 0
ldirectord_kernel_operations_total{operation="add_destination",result="failure"} 1
ldirectord_kernel_operations_total{operation="add_destination",result="success"} 1
ldirectord_kernel_operations_total{operation="add_service",result="success"} 1
ldirectord_kernel_table_read_errors 0
ldirectord_real_configured_weight{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 2
ldirectord_real_configured_weight{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 1
ldirectord_real_configured_weight{protocol="tcp",real="192.168.6.4:80",virtual="192.168.6.240:80"} 1
ldirectord_real_configured_weight{protocol="udp",real="192.168.6.5:53",virtual="192.168.6.240:53"} 1
ldirectord_real_consecutive_failures{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 0
ldirectord_real_consecutive_failures{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 3
ldirectord_real_consecutive_failures{protocol="tcp",real="192.168.6.4:80",virtual="192.168.6.240:80"} 0
ldirectord_real_consecutive_failures{protocol="udp",real="192.168.6.5:53",virtual="192.168.6.240:53"} 1
ldirectord_real_in_table{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 1
ldirectord_real_in_table{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 1
ldirectord_real_in_table{protocol="tcp",real="192.168.6.4:80",virtual="192.168.6.240:80"} 0
ldirectord_real_in_table{protocol="udp",real="192.168.6.5:53",virtual="192.168.6.240:53"} 0
ldirectord_real_seconds_since_last_check{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 1.5
ldirectord_real_seconds_since_last_check{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 2
ldirectord_real_seconds_since_last_check{protocol="udp",real="192.168.6.5:53",virtual="192.168.6.240:53"} 1
ldirectord_real_stale{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 0
ldirectord_real_stale{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 0
ldirectord_real_stale{protocol="tcp",real="192.168.6.4:80",virtual="192.168.6.240:80"} 1
ldirectord_real_stale{protocol="udp",real="192.168.6.5:53",virtual="192.168.6.240:53"} 0
ldirectord_real_transitions_total{protocol="tcp",real="192.168.6.3:80",to="down",virtual="192.168.6.240:80"} 2
ldirectord_real_transitions_total{protocol="tcp",real="192.168.6.3:80",to="up",virtual="192.168.6.240:80"} 1
ldirectord_real_up{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 1
ldirectord_real_up{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 0
ldirectord_real_up{protocol="udp",real="192.168.6.5:53",virtual="192.168.6.240:53"} 0
ldirectord_real_weight{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 2
ldirectord_real_weight{protocol="tcp",real="192.168.6.3:80",virtual="192.168.6.240:80"} 0
ldirectord_starting 0
ldirectord_virtual_fallback_active{protocol="tcp",virtual="192.168.6.240:80"} 0
ldirectord_virtual_fallback_active{protocol="udp",virtual="192.168.6.240:53"} 1
ldirectord_virtual_reals{protocol="tcp",virtual="192.168.6.240:80"} 3
ldirectord_virtual_reals{protocol="udp",virtual="192.168.6.240:53"} 1
ldirectord_virtual_reals_up{protocol="tcp",virtual="192.168.6.240:80"} 1
ldirectord_virtual_reals_up{protocol="udp",virtual="192.168.6.240:53"} 0
`
	if got != want {
		t.Errorf("scrape:\n%s\nwant:\n%s", got, want)
	}
}

// TestScrapeKernelUnreadable: a scrape whose kernel read fails still exports the daemon's own state, and says
// the kernel part is missing.
func TestScrapeKernelUnreadable(t *testing.T) {
	got, _ := scrape(t, New("1.2.3", testSource(errors.New("netlink: timed out"))))
	for _, l := range []string{
		"ldirectord_kernel_table_read_errors 1\n",
		`ldirectord_real_up{protocol="tcp",real="192.168.6.2:80",virtual="192.168.6.240:80"} 1` + "\n",
	} {
		if !strings.Contains(got, l) {
			t.Errorf("scrape lacks %q:\n%s", l, got)
		}
	}
	if strings.Contains(got, "ldirectord_ipvs_") || strings.Contains(got, "ldirectord_real_weight") {
		t.Errorf("kernel counters exported without a kernel read:\n%s", got)
	}
}

// TestPromtool checks the whole exposition, Go and process collectors included, with Prometheus's own linter.
func TestPromtool(t *testing.T) {
	m := New("1.2.3", testSource(nil))
	m.Checked("http", time.Millisecond, nil)
	m.KernelOp(ipvsctl.OpDeleteDestination, nil)
	_, all := scrape(t, m)
	checkExposition(t, all)
}

// checkExposition fails t when promtool finds a problem in exposition.
func checkExposition(t *testing.T, exposition string) {
	t.Helper()
	if err := promtool.Check(exposition); err != nil {
		t.Fatal(err)
	}
}

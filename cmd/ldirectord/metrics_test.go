package main

import (
	"fmt"
	"github.com/ldirectord-go/ldirectord/internal/metrics/promtool"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scrapeMetrics GETs http://addr/metrics.
func scrapeMetrics(addr string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(body), err
}

// waitMetrics scrapes addr until every line of want is in the exposition, and returns it.
func waitMetrics(t *testing.T, addr string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, err := scrapeMetrics(addr)
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w+"\n") {
				missing = w
				break
			}
		}
		if err == nil && missing == "" {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics at %s never had %q (%v):\n%s", addr, missing, err, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetrics runs the daemon with metrics= and scrapes it as Prometheus would: each real's health and
// kernel weight, its transitions, check failures by reason, kernel operations, the kernel's counters, the
// reloads (a new address is served, the old one closed; a broken config is counted as a failed reload), and
// the whole exposition passes `promtool check metrics`.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	good := backend(t, "127.0.0.1:0")
	bad := freePort(t) // nothing listens: refused
	addr1 := freePort(t)
	conf := func(metrics string) string {
		return fmt.Sprintf("metrics=%s\ncheckinterval=1\nvirtual=10.9.9.9:80\n\treal=%s masq\n\treal=%s masq 2\n"+
			"\tchecktype=connect\n\tchecktimeout=2\n", metrics, good, bad)
	}
	cfg := e.write("m.cf", conf(addr1))
	c := e.cmd("-d", "--dry-run", cfg, "start")
	var stdout, stderr syncBuf
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	waitOut(t, &stderr, "Serving metrics on http://"+addr1+"/metrics")

	l := func(real string) string { return `protocol="tcp",real="` + real + `",virtual="10.9.9.9:80"` }
	body := waitMetrics(t, addr1,
		`ldirectord_real_up{`+l(good)+`} 1`,
		`ldirectord_real_up{`+l(bad)+`} 0`,
		`ldirectord_real_weight{`+l(good)+`} 1`,
		`ldirectord_real_in_table{`+l(bad)+`} 0`,
		`ldirectord_real_configured_weight{`+l(bad)+`} 2`,
		`ldirectord_real_transitions_total{protocol="tcp",real="`+good+`",to="up",virtual="10.9.9.9:80"} 1`,
		`ldirectord_real_transitions_total{protocol="tcp",real="`+bad+`",to="down",virtual="10.9.9.9:80"} 1`,
		`ldirectord_kernel_operations_total{operation="add_service",result="success"} 1`,
		`ldirectord_kernel_operations_total{operation="add_destination",result="success"} 1`,
		`ldirectord_ipvs_virtual_connections_total{protocol="tcp",virtual="10.9.9.9:80"} 0`,
		`ldirectord_ipvs_real_connections_total{`+l(good)+`} 0`,
		`ldirectord_virtual_reals_up{protocol="tcp",virtual="10.9.9.9:80"} 1`,
		`ldirectord_kernel_table_read_errors 0`,
		`ldirectord_starting 0`,
		`ldirectord_config_last_reload_successful 1`,
	)
	for _, re := range []string{
		`(?m)^ldirectord_check_failures_total\{reason="refused"\} [1-9][0-9]*$`,
		`(?m)^ldirectord_check_duration_seconds_count\{check="connect"\} [1-9][0-9]*$`,
		`(?m)^ldirectord_real_seconds_since_last_check\{` + regexp.QuoteMeta(l(good)) + `\} [0-9.e+-]+$`,
		`(?m)^ldirectord_build_info\{version="[^"]+"\} 1$`,
	} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("metrics do not match %s:\n%s", re, body)
		}
	}
	checkExposition(t, body)

	// A reload moves the metrics to another address: the new one serves, the old one is closed.
	addr2 := freePort(t)
	e.write("m.cf", conf(addr2))
	c.Process.Signal(syscall.SIGHUP)
	waitOut(t, &stderr, "Serving metrics on http://"+addr2+"/metrics")
	waitMetrics(t, addr2, `ldirectord_config_reloads_total{result="success"} 1`, `ldirectord_config_last_reload_successful 1`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := scrapeMetrics(addr1); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old metrics address %s still serves after the reload", addr1)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A broken config is a failed reload: counted, and the old config (and address) stay.
	e.write("m.cf", conf(addr2)+"\tbogus=1\n")
	c.Process.Signal(syscall.SIGHUP)
	waitMetrics(t, addr2, `ldirectord_config_reloads_total{result="failure"} 1`, `ldirectord_config_last_reload_successful 0`,
		`ldirectord_real_up{`+l(good)+`} 1`)

	c.Process.Signal(syscall.SIGTERM)
	if err := c.Wait(); err != nil {
		t.Errorf("exit: %v\nstderr:\n%s", err, stderr.String())
	}
	if _, err := scrapeMetrics(addr2); err == nil {
		t.Errorf("metrics still served at %s after the daemon exited", addr2)
	}
}

// TestMetricsPortTaken: a metrics address that cannot be had is an error in the log; the daemon runs and
// checks all the same.
func TestMetricsPortTaken(t *testing.T) {
	e := newEnv(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	good := backend(t, "127.0.0.1:0")
	cfg := e.write("p.cf", fmt.Sprintf("metrics=%s\ncheckinterval=1\nvirtual=10.9.9.9:80\n\treal=%s masq\n\tchecktype=connect\n",
		taken.Addr(), good))
	c := e.cmd("-d", "--dry-run", cfg, "start")
	var stderr syncBuf
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	waitOut(t, &stderr, fmt.Sprintf("Could not serve metrics on %s: listen tcp %s: bind: address already in use", taken.Addr(), taken.Addr()))
	waitOut(t, &stderr, "Added real server: "+good+" (10.9.9.9:80) (Weight set to 1)")
	c.Process.Signal(syscall.SIGTERM)
	if err := c.Wait(); err != nil {
		t.Errorf("exit: %v\nstderr:\n%s", err, stderr.String())
	}
}

// checkExposition fails t when promtool finds a problem in exposition.
func checkExposition(t *testing.T, exposition string) {
	t.Helper()
	if err := promtool.Check(exposition); err != nil {
		t.Fatal(err)
	}
}

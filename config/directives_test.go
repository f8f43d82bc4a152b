package config

import (
	"slices"
	"strings"
	"testing"
)

// TestDirectiveTable: the table holds exactly the directives of reference §3.2 (global) and §3.4 (per
// virtual), plus the extensions successcount at both levels and metrics globally, each at the levels the
// reference gives it.
func TestDirectiveTable(t *testing.T) {
	global := strings.Fields(`checktimeout negotiatetimeout connecttimeout timeout checkinterval checkcount
		failurecount successcount fallback fallback6 fallbackcommand autoreload callback logfile execute fork
		quiescent readdquiescent emailalert emailalertfreq emailalertstatus emailalertfrom smtp cleanstop
		maintenancedir metrics`) // supervised has its own reader (a bare `supervised` has no '=')
	virtual := strings.Fields(`real real6 fallback fallback6 fallbackcommand request receive checktype
		checkcommand checktimeout negotiatetimeout connecttimeout checkcount failurecount successcount
		checkinterval checkport login passwd database secret load scheduler persistent netmask schedflags
		protocol ops service httpmethod virtualhost quiescent emailalert emailalertfreq emailalertstatus smtp
		cleanstop monitorfile servicename comment`)
	var gotG, gotV []string
	for name, d := range directives {
		if d.global != nil {
			gotG = append(gotG, name)
		}
		if d.virtual != nil {
			gotV = append(gotV, name)
		}
	}
	for _, l := range [][]string{global, virtual, gotG, gotV} {
		slices.Sort(l)
	}
	if !slices.Equal(gotG, global) {
		t.Errorf("global directives:\n%v\nwant:\n%v", gotG, global)
	}
	if !slices.Equal(gotV, virtual) {
		t.Errorf("per-virtual directives:\n%v\nwant:\n%v", gotV, virtual)
	}
}

func TestDirectiveName(t *testing.T) {
	for line, want := range map[string]string{
		"checktimeout=5": "checktimeout", "checktimeout = 5": "checktimeout", "checktimeout\t=5": "checktimeout",
		"supervised": "supervised", "request=\"/a=b\"": "request", "=x": "", "real6=[::1]:80 gate": "real6",
	} {
		if got := directiveName(line); got != want {
			t.Errorf("directiveName(%q) = %q, want %q", line, got, want)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestStateDocJSON: appendStateDoc writes what json.MarshalIndent writes, byte for byte, and it decodes.
func TestStateDocJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 16, 3, 2, 123456789, time.FixedZone("CET", 3600))
	strs := []string{"", "10.2.0.1:8000", `quote " and \ backslash`, "<html> & co", "tab\tnew\nline\r\b\f\x00\x1f\x7f",
		"héllo wörld ✓", "bad utf-8 \xff\xfe end", "line\u2028sep\u2029para", "GET http://10.2.0.1:8000/: reading response: i/o timeout"}
	var reals []realState
	for i, s := range strs {
		reals = append(reals, realState{Real: s, Forward: "masq", Weight: i - 1, Health: "up", Since: at, Failures: i,
			FailureCount: 1, LastError: s, InTable: i%2 == 0, NoVerdict: s})
	}
	reals = append(reals,
		realState{},
		realState{Real: "[2001:db8::2]:80", Forward: "gate", Weight: 5, Health: "down", Since: at.UTC(), Failures: 3,
			FailureCount: 4, LastCheck: at, LastError: "connection refused", InTable: true,
			NoVerdict: "too many open files", NoVerdictSince: at.Add(time.Second)},
		realState{Health: "unknown", Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), LastCheck: at.Truncate(time.Second)},
	)
	persistent := uint32(300)
	virtuals := []virtualState{
		{Virtual: "10.9.9.9:80", ID: "tcp:10.9.9.9:80", Protocol: "tcp", Scheduler: "wrr", CheckType: "negotiate",
			Service: "http", CheckInterval: 1, Quiescent: true, Reals: reals},
		{Virtual: "7", ID: "fwm:7", Protocol: "fwm", Scheduler: "wlc", Persistent: &persistent, CheckType: "combined",
			CombinedN: 3, CheckInterval: 0.25, Fallback: "127.0.0.1:80", FallbackActive: true, Reals: []realState{}},
		{Virtual: strs[4], ID: strs[6], CheckInterval: 1e-7, Reals: reals[len(reals)-2:]},
		{CheckInterval: 1e21},
	}
	docs := []stateDoc{
		{Version: 1, PID: 4242, Config: "/etc/ha.d/web.cf", Started: at, ConfigLoaded: at.Add(time.Minute),
			Written: at.Add(time.Hour), Phase: "running", Lag: 2.5, Virtuals: virtuals},
		{Version: 1, Phase: "starting", Virtuals: []virtualState{}},
		{Config: strs[3], Lag: 123456789.1},
	}
	for _, d := range docs {
		got := appendStateDoc(nil, &d)
		want, err := json.MarshalIndent(&d, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("appendStateDoc:\n got %s\nwant %s", got, want)
		}
		var back stateDoc
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%s does not decode: %v", got, err)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestRealStateJSON: realState's own MarshalJSON writes exactly what encoding/json writes for the same
// fields by reflection, for every field set or empty and for strings that need escaping.
func TestRealStateJSON(t *testing.T) {
	type plain realState // the same fields, without the MarshalJSON method
	at := time.Date(2026, 12, 2, 16, 3, 2, 123456789, time.FixedZone("CET", 3600))
	strs := []string{"", "10.2.0.1:8000", `quote " and \ backslash`, "<html> & co", "tab\tnew\nline\r\b\f\x00\x1f\x7f",
		"héllo wörld ✓", "bad utf-8 \xff\xfe end", "line\u2028sep\u2029para", "GET http://10.2.0.1:8000/: reading response: i/o timeout"}
	var cases []realState
	for i, s := range strs {
		cases = append(cases, realState{Real: s, Forward: "masq", Weight: i - 1, Health: "up", Since: at, Failures: i,
			FailureCount: 1, LastError: s, InTable: i%2 == 0, NoVerdict: s})
	}
	cases = append(cases,
		realState{},
		realState{Real: "[2001:db8::2]:80", Forward: "gate", Weight: 5, Health: "down", Since: at.UTC(), Failures: 3,
			FailureCount: 4, LastCheck: at, LastError: "connection refused", InTable: true,
			NoVerdict: "too many open files", NoVerdictSince: at.Add(time.Second)},
		realState{Health: "unknown", Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), LastCheck: at.Truncate(time.Second)},
	)
	for _, r := range cases {
		got, err := r.MarshalJSON() // itself: encoding/json would escape its HTML characters again
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(plain(r))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("MarshalJSON:\n got %s\nwant %s", got, want)
		}
		var back realState
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%s does not decode: %v", got, err)
		}
	}
}

package main

import (
	"testing"
	"time"
)

func TestResyncInterval(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"", 0, ""},
		{"5", 5 * time.Second, ""},
		{"2.5", 2500 * time.Millisecond, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"2m", 2 * time.Minute, ""},
		{"0", 0, `LDIRECTORD_RESYNC_INTERVAL="0": shorter than 100ms`},
		{"-3", 0, `LDIRECTORD_RESYNC_INTERVAL="-3": shorter than 100ms`},
		{"10ms", 0, `LDIRECTORD_RESYNC_INTERVAL="10ms": shorter than 100ms`},
		{"soon", 0, `LDIRECTORD_RESYNC_INTERVAL="soon": not a number of seconds or a duration such as 10s`},
		{"1e300", 0, `LDIRECTORD_RESYNC_INTERVAL="1e300": not a number of seconds or a duration such as 10s`},
	} {
		got, err := resyncInterval(c.in)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if got != c.want || msg != c.err {
			t.Errorf("resyncInterval(%q) = %v, %q; want %v, %q", c.in, got, msg, c.want, c.err)
		}
	}
}

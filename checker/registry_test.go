package checker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRegistry(t *testing.T) {
	want := []string{"dns", "ftp", "http", "https", "http_proxy", "imap", "imaps", "ldap", "ldaps",
		"mysql", "nntp", "none", "oracle", "pop", "pops", "radius", "pgsql", "simpletcp", "sip", "smtp", "submission"}
	if got := Services(); !slices.Equal(got, want) {
		t.Errorf("Services() = %v\nwant %v", got, want)
	}
	if len(services) != len(want) {
		t.Errorf("%d registered services, %d listed", len(services), len(want))
	}
	for _, s := range want {
		if c, ok := Negotiate(s); !ok || c == nil {
			t.Errorf("Negotiate(%q) = %v, %v", s, c, ok)
		}
	}
	if _, ok := Negotiate("gopher"); ok {
		t.Error(`Negotiate("gopher") is ok`)
	}
	var notImplemented []string
	for _, s := range want {
		if !Implemented(s) {
			notImplemented = append(notImplemented, s)
		}
	}
	if w := []string{"oracle"}; !slices.Equal(notImplemented, w) {
		t.Errorf("not implemented: %v, want %v", notImplemented, w)
	}
	var checkTimeout []string
	for _, s := range want {
		if UsesCheckTimeout(s) {
			checkTimeout = append(checkTimeout, s)
		}
	}
	if w := []string{"ldap", "ldaps", "radius"}; !slices.Equal(checkTimeout, w) {
		t.Errorf("UsesCheckTimeout: %v, want %v", checkTimeout, w)
	}
	var receive []string
	for _, s := range want {
		if UsesReceive(s) {
			receive = append(receive, s)
		}
	}
	if w := []string{"dns", "ftp", "http", "https", "http_proxy", "ldap", "ldaps", "simpletcp"}; !slices.Equal(receive, w) {
		t.Errorf("UsesReceive: %v, want %v", receive, w)
	}
	for s, c := range map[string]Checker{"ldap": LDAP, "ldaps": LDAPS} {
		if got, _ := Negotiate(s); fmt.Sprint(got) != fmt.Sprint(c) {
			t.Errorf("Negotiate(%q) is not %s", s, strings.ToUpper(s))
		}
	}
}

func TestOnOffNone(t *testing.T) {
	ctx := context.Background()
	tg := &Target{}
	wantErr(t, On.Check(ctx, tg), "")
	wantErr(t, None.Check(ctx, tg), "")
	err := Off.Check(ctx, tg)
	wantErr(t, err, "checktype off")
	if !errors.Is(err, ErrOff) {
		t.Error("Off does not return ErrOff")
	}
	if c, _ := Negotiate("none"); c.Check(ctx, tg) != nil {
		t.Error("service none is not healthy")
	}
}

func TestMessage(t *testing.T) {
	if got := Message(nil); got != "-" {
		t.Errorf("Message(nil) = %q", got)
	}
	if got := Message(errors.New("connect 1.2.3.4:80: connection refused")); got != "connect 1.2.3.4:80: connection refused" {
		t.Errorf("Message = %q", got)
	}
}

func TestCombinedSequence(t *testing.T) {
	var log []string
	var connectOK, negotiateOK = true, true
	var lastDeadline time.Duration
	step := func(name string, ok *bool) Checker {
		return Func(func(ctx context.Context, t *Target) error {
			d, _ := ctx.Deadline()
			lastDeadline = time.Until(d).Round(time.Second)
			log = append(log, name)
			if !*ok {
				return errors.New(name + " failed")
			}
			return nil
		})
	}
	c := NewCombined(2, step("connect", &connectOK), 5*time.Second, step("negotiate", &negotiateOK), 30*time.Second)
	ctx := context.Background()
	round := func(want string, wantDeadline time.Duration) {
		t.Helper()
		log = nil
		c.Check(ctx, &Target{})
		if len(log) != 1 || log[0] != want {
			t.Errorf("ran %v, want [%s]", log, want)
		}
		if lastDeadline != wantDeadline {
			t.Errorf("%s ran with a %v deadline, want %v", want, lastDeadline, wantDeadline)
		}
	}
	round("negotiate", 30*time.Second) // first round negotiates
	round("connect", 5*time.Second)
	round("connect", 5*time.Second)
	round("negotiate", 30*time.Second) // after N connects
	round("connect", 5*time.Second)
	connectOK = false
	round("connect", 5*time.Second) // fails ...
	connectOK = true
	round("negotiate", 30*time.Second) // ... so the next round negotiates
	negotiateOK = false
	round("connect", 5*time.Second)
	round("connect", 5*time.Second)
	round("negotiate", 30*time.Second) // fails ...
	round("negotiate", 30*time.Second) // ... and is retried
	negotiateOK = true
	round("negotiate", 30*time.Second)
	round("connect", 5*time.Second)

	zero := NewCombined(0, step("connect", &connectOK), time.Second, step("negotiate", &negotiateOK), time.Second)
	for range 3 {
		log = nil
		zero.Check(ctx, &Target{})
		if len(log) != 1 || log[0] != "negotiate" {
			t.Errorf("checktype=0 ran %v, want negotiate every time", log)
		}
	}
}

package config

import (
	"strings"
	"testing"
)

// TestRedacted: the dump of Redacted shows that a password and a secret are set, never their values, and
// the config itself keeps them.
func TestRedacted(t *testing.T) {
	src := "virtual=10.0.0.1:3306\n\treal=10.0.0.2 gate\n\tlogin=\"mon\"\n\tpasswd=\"pa55-word\"\n\trequest=\"SELECT 1\"\n" +
		"virtual=10.0.0.1:1812\n\treal=10.0.0.2 gate\n\tsecret=\"radius-shared\"\n" +
		"virtual=10.0.0.1:80\n\treal=10.0.0.2 gate\n"
	c, err := Parse("t.cf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d := string(Dump(Redacted(c)))
	for _, secret := range []string{"pa55-word", "radius-shared"} {
		if strings.Contains(d, secret) {
			t.Errorf("the redacted dump shows %q:\n%s", secret, d)
		}
	}
	for _, want := range []string{"    login=\"mon\"\n    passwd=\"********\"\n", "    secret=\"********\"\n"} {
		if !strings.Contains(d, want) {
			t.Errorf("the redacted dump lacks %q:\n%s", want, d)
		}
	}
	if n := strings.Count(d, "********"); n != 2 {
		t.Errorf("%d values hidden, want 2 (an unset passwd is not shown as set):\n%s", n, d)
	}
	if c.Virtuals[0].Passwd != "pa55-word" || c.Virtuals[1].Secret != "radius-shared" {
		t.Errorf("Redacted changed the config: passwd %q, secret %q", c.Virtuals[0].Passwd, c.Virtuals[1].Secret)
	}
	if _, err := Parse("dump.cf", []byte(d)); err != nil {
		t.Errorf("the redacted dump does not parse: %v", err)
	}
}

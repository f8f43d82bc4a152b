package main

import (
	"strings"
	"testing"
)

// TestDumpConfigHidesPasswords: --dump-config never prints a passwd or a secret.
func TestDumpConfigHidesPasswords(t *testing.T) {
	e := newEnv(t)
	cf := e.write("sql.cf", "virtual=10.9.9.9:3306\n\treal=127.0.0.2:3306 masq\n\tlogin=\"mon\"\n\tpasswd=\"Sql-Pa55\"\n"+
		"\trequest=\"SELECT 1\"\nvirtual=10.9.9.9:1812\n\tprotocol=udp\n\treal=127.0.0.2:1812 masq\n\tsecret=\"Rad-Secret\"\n")
	out, errOut, code := e.run("--dump-config", cf)
	if code != 0 || errOut != "" {
		t.Fatalf("--dump-config: exit %d, stderr %q", code, errOut)
	}
	for _, s := range []string{"Sql-Pa55", "Rad-Secret"} {
		if strings.Contains(out, s) {
			t.Errorf("--dump-config shows %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "    passwd=\"********\"\n") || !strings.Contains(out, "    secret=\"********\"\n") {
		t.Errorf("--dump-config does not say that passwd and secret are set:\n%s", out)
	}
}

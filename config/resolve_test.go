package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseLeavesNamesForResolve(t *testing.T) {
	src := "fallback=localhost:http\n" +
		"virtual=www.example.com:http\n" +
		"    real=web1->web2:https masq 3\n" +
		"    real=10.0.0.5:80 gate\n" +
		"virtual=10.0.0.1:domain\n" +
		"    real=web4 gate\n" +
		"    fallback=localhost:domain\n"
	c, err := Parse("t.cf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	v := c.Virtuals[0]
	if v.Addr.IsValid() || v.Host != "www.example.com" || v.Port != 0 || v.Service != "" {
		t.Errorf("before Resolve: virtual %q %v:%d service %q", v.Host, v.Addr, v.Port, v.Service)
	}
	if len(v.Reals) != 2 || v.Reals[0].Host != "web1" || v.Reals[0].Addr.IsValid() ||
		v.Reals[1].AddrPort() != netip.MustParseAddrPort("10.0.0.5:80") {
		t.Errorf("before Resolve: reals %+v %+v", v.Reals[0], v.Reals[1])
	}
	if c.Virtuals[1].Protocol != UDP {
		t.Errorf("port domain: protocol %v, want udp", c.Virtuals[1].Protocol)
	}

	if err := c.Resolve(testResolver); err != nil {
		t.Fatal(err)
	}
	if got := v.String(); got != "192.0.2.80:80" || v.Service != "http" || v.ID() != "tcp:192.0.2.80:80" {
		t.Errorf("virtual %s service %s id %s", got, v.Service, v.ID())
	}
	var reals []string
	for _, r := range v.Reals {
		reals = append(reals, r.AddrPort().String()+" "+r.Forward.String())
	}
	if got, want := strings.Join(reals, ", "), "192.0.2.11:443 masq, 192.0.2.12:443 masq, 10.0.0.5:80 gate"; got != want {
		t.Errorf("reals %s, want %s", got, want)
	}
	if f := v.Fallback; f == nil || f.AddrPort().String() != "127.0.0.1:80" || f.Forward != ForwardGate {
		t.Errorf("global fallback %+v", f)
	}
	v2 := c.Virtuals[1]
	if v2.Service != "dns" || v2.String() != "10.0.0.1:53" || v2.Reals[0].AddrPort().String() != "192.0.2.14:0" {
		t.Errorf("second virtual %s service %s real %s", v2, v2.Service, v2.Reals[0].AddrPort())
	}
	if f := v2.Fallback; f == nil || f.AddrPort().String() != "127.0.0.1:53" {
		t.Errorf("per-virtual fallback %+v", f)
	}
	checkRoundTrip(t, c)
}

func TestResolveErrors(t *testing.T) {
	src := "fallback=nosuchhost:80\n" +
		"virtual=www.example.com:80\n" +
		"    real=nosuchhost:80 gate\n" +
		"    real=web4->web1 gate\n" +
		"    real=web2->nosuchhost gate\n" +
		"    real=web1:nosuchport gate\n" +
		"virtual=nosuchhost:80\n" +
		"virtual=192.0.2.80:http\n" +
		"virtual=10.0.0.9:53\n" +
		"    fallback=127.0.0.1:http\n"
	c, err := Parse("t.cf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	before := Dump(c)
	err = c.Resolve(testResolver)
	want := `t.cf:1: invalid IPv4 address or could not resolve for fallback server: nosuchhost
t.cf:3: invalid address (nosuchhost) for real server (could not resolve host)
t.cf:4: Invalid Range: 192.0.2.14-192.0.2.11: First value must be less than or equal to the second value
t.cf:5: invalid address (nosuchhost) for real server (could not resolve end host)
t.cf:6: invalid port (nosuchport) for real server (could not resolve port)
t.cf:7: invalid address for virtual service
t.cf:8: duplicate virtual server tcp:192.0.2.80:80 (first defined at line 2)
t.cf:10: invalid port for fallback server`
	if err == nil || err.Error() != want {
		t.Errorf("Resolve error:\n%v\nwant:\n%s", err, want)
	}
	if after := Dump(c); string(after) != string(before) {
		t.Errorf("a failed Resolve changed the config")
	}
}

func TestServiceTables(t *testing.T) {
	// reference §3.8
	table := map[uint16]string{21: "ftp", 25: "smtp", 53: "dns", 80: "http", 110: "pop", 119: "nntp",
		143: "imap", 389: "ldap", 443: "https", 587: "submission", 636: "ldaps", 993: "imaps", 995: "pops",
		1521: "oracle", 1812: "radius", 3128: "http_proxy", 3306: "mysql", 5060: "sip", 5432: "pgsql"}
	for port, svc := range table {
		if got := DefaultService(port); got != svc {
			t.Errorf("DefaultService(%d) = %s, want %s", port, got, svc)
		}
		if got := DefaultPort(svc); got != port {
			t.Errorf("DefaultPort(%s) = %d, want %d", svc, got, port)
		}
	}
	for _, p := range []uint16{0, 22, 8080, 65535} {
		if got := DefaultService(p); got != "none" {
			t.Errorf("DefaultService(%d) = %s, want none", p, got)
		}
	}
	if DefaultPort("none") != 0 || DefaultPort("simpletcp") != 0 {
		t.Errorf("DefaultPort of none/simpletcp is not 0")
	}
	want := "dns ftp http https http_proxy imap imaps ldap ldaps mysql nntp none oracle pop pops radius pgsql simpletcp sip smtp submission"
	if got := strings.Join(Services, " "); got != want {
		t.Errorf("Services = %s", got)
	}
}

func TestDefaultResolver(t *testing.T) {
	a, err := DefaultResolver.LookupAddr("localhost", false)
	if err != nil || a != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("localhost = %v, %v", a, err)
	}
	p, err := DefaultResolver.LookupPort("tcp", "http")
	if err != nil || p != 80 {
		t.Errorf("http/tcp = %d, %v", p, err)
	}
	p, err = DefaultResolver.LookupPort("", "domain")
	if err != nil || p != 53 {
		t.Errorf("domain = %d, %v", p, err)
	}
	if _, err := DefaultResolver.LookupPort("tcp", "nosuchservice"); err == nil {
		t.Errorf("nosuchservice resolved")
	}
}

func TestFindAndLoad(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if _, err := Find("ldgo-no-such.cf"); err == nil || err.Error() != "Config file ldgo-no-such.cf not found" {
		t.Errorf("Find: %v", err)
	}
	if _, err := Load("ldgo-no-such.cf"); err == nil || err.Error() != "Config file ldgo-no-such.cf not found" {
		t.Errorf("Load: %v", err)
	}
	if err := os.Mkdir("ldgo-dir.cf", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Find("ldgo-dir.cf"); err == nil {
		t.Errorf("Find accepted a directory")
	}
	mon := filepath.Join(dir, "monitor.log")
	src := "maintenancedir=" + filepath.Join(dir, "nomaint") + "\nlogfile=\"" + filepath.Join(dir, "ld.log") + "\"\n" +
		"virtual=localhost:http\n    real=127.0.0.2:80 gate\n    monitorfile=" + mon + "\n"
	if err := os.WriteFile("ldgo-test.cf", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := Find("ldgo-test.cf"); err != nil || p != "ldgo-test.cf" {
		t.Fatalf("Find = %q, %v", p, err)
	}
	c, err := Load("ldgo-test.cf")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Virtuals[0].String(); got != "127.0.0.1:80" {
		t.Errorf("virtual %s", got)
	}
	if len(c.Warnings) != 1 || c.Warnings[0].Error() != "ldgo-test.cf:1: maintenance directory does not exist" {
		t.Errorf("warnings %v", c.Warnings)
	}
	for _, f := range []string{mon, filepath.Join(dir, "ld.log")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("not created: %v", err)
		}
	}
	bad := strings.Replace(src, mon, filepath.Join(dir, "nodir", "m.log"), 1)
	if err := os.WriteFile("ldgo-test.cf", []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load("ldgo-test.cf")
	want := "ldgo-test.cf:5: unable to open monitorfile " + filepath.Join(dir, "nodir", "m.log") + ": No such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("Load: %v\nwant %s", err, want)
	}

	// A log file that cannot be opened is an error, unless the log goes elsewhere (ldirectord -d).
	noLog := strings.Replace(src, filepath.Join(dir, "ld.log"), filepath.Join(dir, "nodir", "ld.log"), 1)
	if err := os.WriteFile("ldgo-test.cf", []byte(noLog), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load("ldgo-test.cf")
	want = "ldgo-test.cf:2: unable to open logfile: " + filepath.Join(dir, "nodir", "ld.log") + ": No such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("Load: %v\nwant %s", err, want)
	}
	if _, err := LoadWith("ldgo-test.cf", LoadOptions{NoLogFile: true}); err != nil {
		t.Errorf("LoadWith NoLogFile: %v", err)
	}
}

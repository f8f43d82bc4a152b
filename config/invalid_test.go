package config

import (
	"strings"
	"testing"
)

// v is the usual first line of a test config.
const v = "virtual=10.0.0.1:80\n"

// invalidConfigs are configs that must be rejected, each with every error it must produce, in order.
// Every one of them is also rejected by ldirectord 4.12 (TestPerlDifferential checks that, and that
// 4.12's error is on one of these lines), except where perlAccepts says otherwise.
var invalidConfigs = []struct {
	name string
	src  string
	want []string
	// perlAccepts marks a config 4.12 accepted (documented in docs/compat.md).
	perlAccepts bool
	// perlLine is 4.12's error line where it differs from every line of want (documented).
	perlLine int
	// notPerl says why 4.12 is not run on this config.
	notPerl string
}{
	// Globals.
	{name: "unknown global", src: "foo=bar\n", want: []string{`t.cf:1: Unknown command "foo=bar"`}},
	{name: "metrics port zero", src: "metrics=0\n", want: []string{"t.cf:1: invalid metrics port: must be 1-65535"}},
	{name: "metrics port too big", src: "metrics=127.0.0.1:65536\n", want: []string{"t.cf:1: invalid metrics port: must be 1-65535"}},
	{name: "metrics no port", src: "metrics=127.0.0.1:\n", want: []string{"t.cf:1: invalid metrics port: must be 1-65535"}},
	{name: "metrics host name", src: "metrics=localhost:9523\n", want: []string{"t.cf:1: invalid metrics address: must be [ADDR:]PORT (ADDR an IPv4 address, [IPv6] or *)"}},
	{name: "metrics IPv6 without brackets", src: "metrics=::1:9523\n", want: []string{"t.cf:1: invalid metrics address: must be [ADDR:]PORT (ADDR an IPv4 address, [IPv6] or *)"}},
	{name: "metrics IPv4 in brackets", src: "metrics=[10.0.0.1]:9523\n", want: []string{"t.cf:1: invalid metrics address: must be [ADDR:]PORT (ADDR an IPv4 address, [IPv6] or *)"}},
	{name: "global checktimeout zero", src: "checktimeout=0\n", want: []string{"t.cf:1: invalid check timeout value"}},
	{name: "global checktimeout 00", src: "checktimeout=00\n", want: []string{"t.cf:1: invalid check timeout value"}},
	{name: "global checktimeout no digits", src: "checktimeout=abc\n", want: []string{"t.cf:1: invalid check timeout value"}},
	{name: "global negotiatetimeout", src: "negotiatetimeout=x\n", want: []string{"t.cf:1: invalid negotiate timeout value"}},
	{name: "global connecttimeout", src: "connecttimeout=5\n", want: []string{"t.cf:1: connecttimeout directive deprecated in favour of negotiatetimeout"}},
	{name: "global timeout", src: "timeout=5\n", want: []string{"t.cf:1: timeout directive deprecated in favour of checktimeout and negotiatetimeout"}},
	{name: "global checkinterval zero", src: "checkinterval=0\n", want: []string{"t.cf:1: invalid check interval value"}},
	{name: "global checkcount", src: "checkcount=none\n", want: []string{"t.cf:1: invalid check count value"}},
	{name: "global failurecount", src: "failurecount=0\n", want: []string{"t.cf:1: invalid failure count value"}},
	{name: "global autoreload", src: "autoreload=maybe\n", want: []string{"t.cf:1: autoreload must be 'yes' or 'no'"}},
	{name: "global autoreload case", src: "autoreload=Yes\n", want: []string{"t.cf:1: autoreload must be 'yes' or 'no'"}},
	{name: "global fork", src: "fork=1\n", want: []string{"t.cf:1: fork must be 'yes' or 'no'"}},
	{name: "global supervised", src: "supervised=true\n", want: []string{"t.cf:1: supervised must be 'yes' or 'no'"}},
	{name: "global supervised prefix", src: "supervisedx=yes\n", want: []string{"t.cf:1: supervised must be 'yes' or 'no'"}},
	{name: "global quiescent", src: "quiescent=on\n", want: []string{"t.cf:1: quiescent must be 'yes' or 'no'"}},
	{name: "global readdquiescent", src: "readdquiescent=\n", want: []string{"t.cf:1: readdquiescent must be 'yes' or 'no'"}},
	{name: "global cleanstop", src: "cleanstop=No\n", want: []string{"t.cf:1: cleanstop must be 'yes' or 'no'"}},
	{name: "global emailalert empty", src: "emailalert=\"\"\n", want: []string{"t.cf:1: no email address specified"}},
	{name: "global emailalertfreq", src: "emailalertfreq=often\n", want: []string{"t.cf:1: invalid email alert frequency"}},
	{name: "global emailalertstatus word", src: "emailalertstatus=all,sometimes\n", want: []string{`t.cf:1: invalid email alert status at: "sometimes"`}},
	{name: "global emailalertstatus none", src: "emailalertstatus=none, starting\n", want: []string{`t.cf:1: invalid email alert status: "starting" specified with "none"`}},
	{name: "global emailalertfrom", src: "emailalertfrom=\n", want: []string{"t.cf:1: no email from address specified"}},
	{name: "global smtp", src: "smtp=@mail\n", want: []string{"t.cf:1: invalid SMTP server address"}},
	{name: "global maintenancedir", src: "maintenancedir=\n", want: []string{"t.cf:1: maintenance directory not specified"}},
	{name: "global fallbackcommand", src: "fallbackcommand=\n", want: []string{"t.cf:1: invalid fallback command"}},
	{name: "global fallback method", src: "fallback=127.0.0.1:80 route\n", want: []string{"t.cf:1: forward method must be gate, masq or ipip"}},
	{name: "global fallback port", src: "fallback=127.0.0.1:70000\n", want: []string{"t.cf:1: invalid port for fallback server"}},
	{name: "global fallback6 with v4", src: "fallback6=127.0.0.1:80\n", want: []string{"t.cf:1: invalid IPv6 address or could not resolve for fallback server: 127.0.0.1"}},
	{name: "global fallback with v6", src: "fallback=[::1]:80\n", want: []string{"t.cf:1: invalid IPv4 address or could not resolve for fallback server: [::1]"}},
	{name: "logfile unquoted", src: "logfile=local0\n", want: []string{`t.cf:1: Unknown command "logfile=local0"`}},
	{name: "callback unquoted", src: "callback=/bin/true\n", want: []string{`t.cf:1: Unknown command "callback=/bin/true"`}},
	{name: "global with leading blank", src: " quiescent=no\n", want: []string{`t.cf:1: Unknown command " quiescent=no" (an indented line outside a virtual section: a blank line or a line indented by fewer than 4 spaces ends a virtual section)`}},
	{name: "per-virtual only directive at global level", src: "scheduler=rr\n", want: []string{`t.cf:1: Unknown command "scheduler=rr"`}},
	{name: "global successcount", src: "successcount=0\n", want: []string{"t.cf:1: invalid success count value"}, perlAccepts: false},

	// virtual= forms.
	{name: "virtual garbage", src: "virtual=*:80\n", want: []string{"t.cf:1: invalid address for virtual server"}},
	{name: "virtual v6 in virtual", src: "virtual=[::1]:80\n", want: []string{`t.cf:1: cannot specify an IPv6 address here. please use "virtual6" instead.`}},
	{name: "virtual6 bad v6", src: "virtual6=[1:2:3]:80\n", want: []string{"t.cf:1: invalid ipv6 address for virtual server"}},
	{name: "virtual port too big", src: "virtual=10.0.0.1:65536\n", want: []string{"t.cf:1: invalid address for virtual service"}},
	{name: "virtual octet too big", src: "virtual=10.0.0.256:80\n", want: []string{"t.cf:1: invalid address for virtual service"}},
	{name: "virtual unknown service name", src: "virtual=10.0.0.1:nosuchservice\n", want: []string{"t.cf:1: invalid address for virtual service"}},
	{name: "virtual6 with v4 address", src: "virtual6=10.0.0.1:80\n", want: []string{"t.cf:1: invalid address for virtual service"}},
	{name: "duplicate virtual", src: v + "    real=10.0.0.2:80 gate\n" + v, want: []string{"t.cf:3: duplicate virtual server tcp:10.0.0.1:80 (first defined at line 1)"}},
	{name: "duplicate fwmark", src: "virtual=7\nvirtual=7\n", want: []string{"t.cf:2: duplicate virtual server fwm:7 (first defined at line 1)"}},
	{name: "duplicate reported at its virtual line", src: v + "virtual=10.0.0.1:80\n    real=10.0.0.2 gate\n\nquiescent=no\n",
		want: []string{"t.cf:2: duplicate virtual server tcp:10.0.0.1:80 (first defined at line 1)"}, perlLine: 4},
	{name: "duplicate after resolution", src: "virtual=10.0.0.1:80\nvirtual=10.0.0.1:http\n", want: []string{"t.cf:2: duplicate virtual server tcp:10.0.0.1:80 (first defined at line 1)"}},

	// Lexing of virtual sections.
	{name: "blank line ends section", src: v + "    real=10.0.0.2:80 gate\n\n    real=10.0.0.3:80 gate\n", want: []string{`t.cf:4: Unknown command "    real=10.0.0.3:80 gate" (an indented line outside a virtual section: a blank line or a line indented by fewer than 4 spaces ends a virtual section)`}},
	{name: "three spaces end section", src: v + "   real=10.0.0.2:80 gate\n", want: []string{`t.cf:2: Unknown command "   real=10.0.0.2:80 gate" (an indented line outside a virtual section: a blank line or a line indented by fewer than 4 spaces ends a virtual section)`}},
	{name: "spaces-only line in section", src: v + "      \n", want: []string{`t.cf:2: Unknown command "      "`}},
	{name: "unknown per-virtual", src: v + "    frobnicate=yes\n", want: []string{`t.cf:2: Unknown command "    frobnicate=yes"`}},
	{name: "global-only directive in section", src: v + "    fork=yes\n", want: []string{`t.cf:2: Unknown command "    fork=yes"`}},
	{name: "timeout in section", src: v + "    timeout=5\n", want: []string{`t.cf:2: Unknown command "    timeout=5"`}},
	{name: "request unquoted", src: v + "    request=/index.html\n", want: []string{`t.cf:2: Unknown command "    request=/index.html"`}},
	{name: "request empty", src: v + "    request=\"\"\n", want: []string{"t.cf:2: no request string specified"}},
	{name: "receive empty", src: v + "    receive=\"\"\n", want: []string{"t.cf:2: invalid receive string"}},
	{name: "login empty", src: v + "    login=\"\"\n", want: []string{"t.cf:2: invalid login string"}},
	{name: "passwd unquoted", src: v + "    passwd=secret\n", want: []string{`t.cf:2: Unknown command "    passwd=secret"`}},
	{name: "database empty", src: v + "    database=\"\"\n", want: []string{"t.cf:2: invalid database"}},
	{name: "secret empty", src: v + "    secret=\"\"\n", want: []string{"t.cf:2: invalid secret"}},
	{name: "load", src: v + "    load=\"--\"\n", want: []string{"t.cf:2: invalid string for load testing"}},
	{name: "checktype unknown", src: v + "    checktype=negotiate_connect\n", want: []string{`t.cf:2: checktype must be "connect", "negotiate", "on", "off", "ping", "external", "external-perl" or a positive number`}},
	{name: "checkcommand empty", src: v + "    checkcommand=\n", want: []string{"t.cf:2: invalid check command"}},
	{name: "checktimeout", src: v + "    checktimeout=0\n", want: []string{"t.cf:2: invalid check timeout"}},
	{name: "negotiatetimeout", src: v + "    negotiatetimeout=never\n", want: []string{"t.cf:2: invalid negotiate timeout"}},
	{name: "connecttimeout in section", src: v + "    connecttimeout=3\n", want: []string{"t.cf:2: connecttimeout directive deprecated in favour of negotiatetimeout"}},
	{name: "checkcount", src: v + "    checkcount=0\n", want: []string{"t.cf:2: invalid check count"}},
	{name: "failurecount", src: v + "    failurecount=\n", want: []string{"t.cf:2: invalid failure count"}},
	{name: "checkinterval", src: v + "    checkinterval=0\n", want: []string{"t.cf:2: invalid checkinterval"}},
	{name: "checkport none", src: v + "    checkport=http\n", want: []string{"t.cf:2: invalid port"}},
	{name: "checkport range", src: v + "    checkport=65536\n", want: []string{"t.cf:2: checkport must be in range 1..65535"}},
	{name: "checkport zero", src: v + "    checkport=0\n", want: []string{"t.cf:2: checkport must be in range 1..65535"}},
	{name: "scheduler upper case", src: v + "    scheduler=WRR\n", want: []string{"t.cf:2: invalid scheduler, should be only lowercase letters (a-z)"}},
	{name: "persistent", src: v + "    persistent=forever\n", want: []string{"t.cf:2: invalid persistent timeout"}},
	{name: "schedflags", src: v + "    schedflags=\n", want: []string{"t.cf:2: invalid sched-flags"}},
	{name: "netmask v4", src: v + "    netmask=24\n", want: []string{"t.cf:2: invalid netmask: dotted quad notation is required"}},
	{name: "netmask v6", src: "virtual6=[2001:db8::1]:80\n    netmask=255.255.255.0\n", want: []string{"t.cf:2: invalid netmask: a prefix length between 1 and 128 is required"}},
	{name: "netmask v6 range", src: "virtual6=[2001:db8::1]:80\n    netmask=129\n", want: []string{"t.cf:2: invalid netmask: a prefix length between 1 and 128 is required"}},
	{name: "protocol fwm on address", src: v + "    protocol=fwm\n", want: []string{"t.cf:2: protocol must be tcp, udp or sctp if the virtual service is an address and port"}},
	{name: "protocol tcp on fwmark", src: "virtual=5\n    protocol=tcp\n", want: []string{"t.cf:2: protocol must be fwm if the virtual service is a fwmark (a number)"}},
	{name: "protocol empty", src: v + "    protocol=\n", want: []string{"t.cf:2: invalid protocol"}},
	{name: "ops", src: v + "    ops=1\n", want: []string{"t.cf:2: ops must be 'yes' or 'no'"}},
	{name: "service unknown", src: v + "    service=gopher\n", want: []string{"t.cf:2: service must be dns, ftp, http, https, http_proxy, imap, imaps, ldap, ldaps, mysql, nntp, none, oracle, pop, pops, radius, pgsql, simpletcp, sip, smtp or submission"}},
	{name: "service case", src: v + "    service=HTTP\n", want: []string{"t.cf:2: service must be dns, ftp, http, https, http_proxy, imap, imaps, ldap, ldaps, mysql, nntp, none, oracle, pop, pops, radius, pgsql, simpletcp, sip, smtp or submission"}},
	{name: "httpmethod", src: v + "    httpmethod=POST\n", want: []string{"t.cf:2: httpmethod must be GET or HEAD"}},
	{name: "quiescent in section", src: v + "    quiescent=true\n", want: []string{"t.cf:2: quiescent must be 'yes' or 'no'"}},
	{name: "cleanstop in section", src: v + "    cleanstop=\n", want: []string{"t.cf:2: cleanstop must be 'yes' or 'no'"}},
	{name: "emailalert in section", src: v + "    emailalert=\n", want: []string{"t.cf:2: no email address specified"}},
	{name: "emailalertfreq in section", src: v + "    emailalertfreq=x\n", want: []string{"t.cf:2: invalid email alert frequency"}},
	{name: "smtp in section", src: v + "    smtp=\n", want: []string{"t.cf:2: invalid SMTP server address"}},
	{name: "fallbackcommand in section", src: v + "    fallbackcommand=\n", want: []string{"t.cf:2: invalid fallback command"}},
	{name: "fallback6 in virtual", src: v + "    fallback6=[::1]:80\n", want: []string{`t.cf:2: cannot specify "fallback6" here.  please use "fallback" instead`}},
	{name: "fallback in virtual6", src: "virtual6=[2001:db8::1]:80\n    fallback=127.0.0.1:80\n", want: []string{`t.cf:2: cannot specify "fallback" here.  please use "fallback6" instead`}},
	{name: "fallback method in section", src: v + "    fallback=127.0.0.1 nat\n", want: []string{"t.cf:2: forward method must be gate, masq or ipip"}},
	{name: "fallback port name for udp", src: "virtual=10.0.0.1:53\n    fallback=127.0.0.1:http\n", want: []string{"t.cf:2: invalid port for fallback server"}},

	// real= lines.
	{name: "real6 in virtual", src: v + "    real6=[::1]:80 gate\n", want: []string{`t.cf:2: cannot specify "real6" here.  please use "real" instead`}},
	{name: "real in virtual6", src: "virtual6=[2001:db8::1]:80\n    real=10.0.0.2:80 gate\n", want: []string{`t.cf:2: cannot specify "real" here.  please use "real6" instead`}},
	{name: "real without method", src: v + "    real=10.0.0.2:80\n", want: []string{"t.cf:2: invalid address for real server (wrong format)"}},
	{name: "real bad method", src: v + "    real=10.0.0.2:80 dr\n", want: []string{"t.cf:2: forward method must be gate, masq or ipip"}},
	{name: "real quoted method", src: v + "    real=10.0.0.2:80 \"gate\"\n", want: []string{`t.cf:2: Invalid real server line, around "\""`}},
	{name: "real junk", src: v + "    real=10.0.0.2:80 gate 1 fast\n", want: []string{`t.cf:2: Invalid real server line, around " fast"`}},
	{name: "real one string", src: v + "    real=10.0.0.2:80 gate 2 \"/health\"\n", want: []string{`t.cf:2: Invalid real server line, around " \"/health\""`}},
	{name: "real bad port", src: v + "    real=10.0.0.2:99999 gate\n", want: []string{"t.cf:2: invalid port (99999) for real server (could not resolve port)"}},
	{name: "real unknown port name", src: v + "    real=10.0.0.2:nosuchport gate\n", want: []string{"t.cf:2: invalid port (nosuchport) for real server (could not resolve port)"}},
	{name: "real v6 in virtual", src: v + "    real=[::1]:80 gate\n", want: []string{"t.cf:2: invalid address ([::1]) for real server (could not resolve host)"}},
	{name: "real bad octet", src: v + "    real=10.0.0.300:80 gate\n", want: []string{"t.cf:2: invalid address (10.0.0.300) for real server (could not resolve host)"}},
	{name: "real range backwards", src: v + "    real=10.0.0.9->10.0.0.2:80 gate\n", want: []string{"t.cf:2: Invalid Range: 10.0.0.9-10.0.0.2: First value must be less than or equal to the second value"}},
	{name: "real range bad end", src: v + "    real=10.0.0.2->10.0.0.256:80 gate\n", want: []string{"t.cf:2: invalid address (10.0.0.256) for real server (could not resolve end host)"}},
	{name: "real6 range", src: "virtual6=[2001:db8::1]:80\n    real6=[2001:db8::2]->[2001:db8::5]:80 gate\n", want: []string{"t.cf:2: Address range for IPv6 is not supported yet"}},
	{name: "real too large range", src: v + "    real=10.0.0.0->10.1.0.0 gate\n", want: []string{"t.cf:2: Invalid Range: 10.0.0.0-10.1.0.0: more than 65536 addresses"},
		notPerl: "4.12 accepts it after minutes of work (adding a real is linear in the number of reals); we refuse ranges over 65536"},

	{name: "real strings separator", src: v + "    real=10.0.0.2 gate \"a\" , \"b\"\n", want: []string{`t.cf:2: Invalid real server line, around " \"a\" , \"b\""`}},
	{name: "real two weights", src: v + "    real=10.0.0.2 gate 1 2\n", want: []string{`t.cf:2: Invalid real server line, around " 2"`}},
	{name: "real two lower thresholds", src: v + "    real=10.0.0.2 gate l:1 l:2\n", want: []string{`t.cf:2: Invalid real server line, around " l:2"`}},
	{name: "real two upper thresholds", src: v + "    real=10.0.0.2 gate u:1 u:2\n", want: []string{`t.cf:2: Invalid real server line, around " u:2"`}},
	{name: "real comma after method", src: v + "    real=10.0.0.2 gate,1\n", want: []string{`t.cf:2: Invalid real server line, around ",1"`}},
	{name: "real junk after strings", src: v + "    real=10.0.0.2 gate 1 \"x\", \"y\" junk\n", want: []string{`t.cf:2: Invalid real server line, around " junk"`}},
	{name: "request without closing quote", src: v + "    request=\"\n", want: []string{`t.cf:2: Unknown command "    request=\""`}},
	{name: "emailalertstatus empty item", src: "emailalertstatus=,all\n", want: []string{`t.cf:1: invalid email alert status at: ""`}},
	{name: "monitorfile empty", src: v + "    monitorfile=\n", want: []string{"t.cf:2: unable to open monitorfile : No such file or directory"}},
	{name: "fwmark fallback port name", src: "virtual=5\n    fallback=127.0.0.1:http\n", want: []string{"t.cf:2: invalid port for fallback server"}},
	{name: "checktype with dash", src: v + "    checktype=external-perl-x\n", want: []string{`t.cf:2: checktype must be "connect", "negotiate", "on", "off", "ping", "external", "external-perl" or a positive number`}},
	{name: "virtual6 without port", src: "virtual6=[::1]\n", want: []string{"t.cf:1: invalid address for virtual server"}},
	{name: "virtual6 unbracketed", src: "virtual6=1:80\n", want: []string{"t.cf:1: invalid address for virtual service"}},

	{name: "too many reals", src: v + strings.Repeat("    real=10.0.0.0->10.0.255.255 gate\n", 17),
		want:    []string{"t.cf:18: too many real servers: more than 1048576 in one configuration"},
		notPerl: "4.12 would take hours to add a million real servers"},

	// Faults (issue 9): absurd input is refused without being echoed, values a check could never use are
	// refused where they are written.
	{name: "line too long", src: v + "    receive=\"" + strings.Repeat("x", MaxLine) + "\"\n    real=10.0.0.2 gate\n",
		want: []string{"t.cf:2: line too long (65550 bytes; at most 65536)"}, perlAccepts: true},
	{name: "unknown command quoted in part", src: strings.Repeat("y", 300) + "\n",
		want: []string{`t.cf:1: Unknown command "` + strings.Repeat("y", 200) + `..."`}},
	{name: "unknown per-virtual quoted in part", src: v + "    " + strings.Repeat("é", 150) + "\n",
		want: []string{`t.cf:2: Unknown command "    ` + strings.Repeat("é", 98) + `..."`}},
	{name: "global checktimeout over a day", src: "checktimeout=2147483647\ncheckcount=5\n",
		want: []string{"t.cf:1: invalid check timeout value: 2147483647 is more than 86400 seconds (one day)"}, perlAccepts: true},
	{name: "virtual negotiatetimeout over a day", src: v + "    negotiatetimeout=86401\n",
		want: []string{"t.cf:2: invalid negotiate timeout: 86401 is more than 86400 seconds (one day)"}, perlAccepts: true},
	{name: "checkinterval over a day", src: "checkinterval=100000\n",
		want: []string{"t.cf:1: invalid check interval value: 100000 is more than 86400 seconds (one day)"}, perlAccepts: true},
	{name: "checkcount over 1000", src: v + "    checkcount=1001\n",
		want: []string{"t.cf:2: invalid check count: 1001 is more than 1000"}, perlAccepts: true},
	{name: "request bad escape", src: v + "    real=10.0.0.2 gate\n    service=http\n    request=\"/status%zz\"\n",
		want: []string{`t.cf:4: invalid request "/status%zz": invalid URL escape "%zz"`}, perlAccepts: true},
	{name: "real request bad escape", src: v + "    real=10.0.0.2 gate \"/a%g\" \"ok\"\n    real=10.0.0.3 gate\n",
		want: []string{`t.cf:2: invalid request "/a%g": invalid URL escape "%g"`}, perlAccepts: true},
	{name: "request absolute URL bad port", src: v + "    request=\"http://example.org:99999/\"\n    real=10.0.0.2 gate\n",
		want: []string{`t.cf:2: invalid request "/http://example.org:99999/": invalid port "99999"`}, perlAccepts: true},
	{name: "http_proxy request not absolute", src: "virtual=10.0.0.1:3128\n    request=\"/probe\"\n    real=10.0.0.2 gate\n",
		want: []string{`t.cf:2: invalid request "/probe": service=http_proxy needs an absolute http:// URL`}, perlAccepts: true},
	{name: "virtualhost with white space", src: v + "    real=10.0.0.2 gate\n    virtualhost=\"a b\"\n",
		want: []string{`t.cf:3: invalid virtualhost "a b": it contains white space`}, perlAccepts: true},

	// Several errors: all of them, in line order.
	{name: "all errors collected", src: "quiescent=maybe\n" + v + "    real=10.0.0.2:80 dr\n    checktype=sometimes\n    real=10.0.0.3:99999 gate\n\nfork=perhaps\nvirtual=*\n",
		want: []string{
			"t.cf:1: quiescent must be 'yes' or 'no'",
			"t.cf:3: forward method must be gate, masq or ipip",
			`t.cf:4: checktype must be "connect", "negotiate", "on", "off", "ping", "external", "external-perl" or a positive number`,
			"t.cf:5: invalid port (99999) for real server (could not resolve port)",
			"t.cf:7: fork must be 'yes' or 'no'",
			"t.cf:8: invalid address for virtual server",
		}},
}

func TestInvalidConfigs(t *testing.T) {
	if len(invalidConfigs) < 60 {
		t.Fatalf("only %d invalid configs", len(invalidConfigs))
	}
	for _, tc := range invalidConfigs {
		t.Run(tc.name, func(t *testing.T) {
			got := parseAndResolve(t, tc.src)
			if got == nil {
				t.Fatalf("accepted:\n%s", tc.src)
			}
			el, ok := got.(ErrorList)
			if !ok {
				t.Fatalf("error is %T, want ErrorList", got)
			}
			var lines []string
			for _, e := range el {
				lines = append(lines, e.Error())
			}
			if g, w := strings.Join(lines, "\n"), strings.Join(tc.want, "\n"); g != w {
				t.Errorf("errors:\n%s\nwant:\n%s", g, w)
			}
			if got.Error() != strings.Join(tc.want, "\n") {
				t.Errorf("Error() = %q", got.Error())
			}
		})
	}
}

// parseAndResolve parses src as t.cf and resolves it with testResolver; it returns the error.
func parseAndResolve(t *testing.T, src string) error {
	t.Helper()
	c, err := Parse("t.cf", []byte(src))
	if err != nil {
		if c != nil {
			t.Errorf("Parse returned a config and an error")
		}
		return err
	}
	return c.Resolve(testResolver)
}

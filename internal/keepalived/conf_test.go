package keepalived

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ldirectord-go/ldirectord/config"
)

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("ldirectord.cf", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return cfg
}

// TestConf is the whole keepalived.conf of configs that use each mapped setting.
func TestConf(t *testing.T) {
	tests := []struct {
		name, cf, want string
	}{{
		name: "http, the compare scenario's shape",
		cf: `checkinterval=1
negotiatetimeout=2
quiescent=no
virtual=10.9.9.1:80
	real=10.1.0.2:8080 masq
	real=10.1.0.3:8080 masq 3
	service=http
	request="/"
	receive="ok"
	scheduler=wrr
`,
		want: `# Generated from ldirectord.cf by internal/keepalived.Conf: the same virtual services, reals and checks.
global_defs {
	router_id ldirectord-compare
}

virtual_server 10.9.9.1 80 {
	protocol TCP
	lvs_sched wrr
	delay_loop 1
	alpha
	real_server 10.1.0.2 8080 {
		weight 1
		lvs_method NAT
		HTTP_GET {
			url {
				path /
				regex ok
			}
			connect_timeout 2
			retry 0
			delay_before_retry 1
		}
	}
	real_server 10.1.0.3 8080 {
		weight 3
		lvs_method NAT
		HTTP_GET {
			url {
				path /
				regex ok
			}
			connect_timeout 2
			retry 0
			delay_before_retry 1
		}
	}
}
`,
	}, {
		name: "quiescent, fallback, persistence, failurecount, per-real request, virtualhost, gate and ipip",
		cf: `checkinterval=5
negotiatetimeout=3
failurecount=3
quiescent=yes
virtual=192.168.1.10:443
	real=10.0.0.1 gate 2 ".health" "All is well"
	real=10.0.0.2:443 ipip
	fallback=127.0.0.1:8443 masq
	service=https
	request="/status page"
	receive="up"
	virtualhost=www.example.com
	scheduler=sh
	schedflags=sh-port
	persistent=300
	netmask=255.255.255.0
`,
		want: `# Generated from ldirectord.cf by internal/keepalived.Conf: the same virtual services, reals and checks.
global_defs {
	router_id ldirectord-compare
}

virtual_server 192.168.1.10 443 {
	protocol TCP
	lvs_sched sh
	sh-port
	persistence_timeout 300
	persistence_granularity 255.255.255.0
	delay_loop 5
	alpha
	inhibit_on_failure
	sorry_server 127.0.0.1 8443
	sorry_server_lvs_method NAT
	real_server 10.0.0.1 443 {
		weight 2
		lvs_method DR
		SSL_GET {
			url {
				path /.health
				regex "All is well"
			}
			virtualhost www.example.com
			connect_timeout 3
			retry 2
			delay_before_retry 5
		}
	}
	real_server 10.0.0.2 443 {
		weight 1
		lvs_method TUN
		SSL_GET {
			url {
				path "/status page"
				regex up
			}
			virtualhost www.example.com
			connect_timeout 3
			retry 2
			delay_before_retry 5
		}
	}
}
`,
	}, {
		name: "connect check, udp with ops, fwmark with checkport, checktype on",
		cf: `checkinterval=2
checktimeout=1
virtual=10.9.9.2:53
	real=10.1.0.2:53 masq
	protocol=udp
	checktype=connect
	ops=yes
	scheduler=rr
virtual=7
	real=10.1.0.3 gate
	protocol=fwm
	checktype=connect
	checkport=80
	scheduler=wlc
virtual6=[fd00::1]:80
	real6=[fd00:1::2]:80 masq
	checktype=on
	scheduler=rr
`,
		want: `# Generated from ldirectord.cf by internal/keepalived.Conf: the same virtual services, reals and checks.
global_defs {
	router_id ldirectord-compare
}

virtual_server 10.9.9.2 53 {
	protocol UDP
	lvs_sched rr
	ops
	delay_loop 2
	alpha
	real_server 10.1.0.2 53 {
		weight 1
		lvs_method NAT
		TCP_CHECK {
			connect_timeout 1
			retry 0
			delay_before_retry 2
		}
	}
}

virtual_server fwmark 7 {
	lvs_sched wlc
	delay_loop 2
	alpha
	real_server 10.1.0.3 0 {
		weight 1
		lvs_method DR
		TCP_CHECK {
			connect_port 80
			connect_timeout 1
			retry 0
			delay_before_retry 2
		}
	}
}

virtual_server fd00::1 80 {
	protocol TCP
	lvs_sched rr
	delay_loop 2
	alpha
	real_server fd00:1::2 80 {
		weight 1
		lvs_method NAT
	}
}
`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Conf(parse(t, tt.cf))
			if err != nil {
				t.Fatalf("Conf: %v", err)
			}
			if got != tt.want {
				t.Errorf("Conf:\n%s\nwant:\n%s", got, tt.want)
			}
			keepalivedAccepts(t, got)
		})
	}
}

// TestConfRefuses: a config keepalived cannot express is an error naming the virtual's line.
func TestConfRefuses(t *testing.T) {
	tests := []struct{ cf, want string }{
		{"virtual=10.9.9.1:25\n\treal=10.1.0.2 masq\n\tservice=smtp\n",
			"ldirectord.cf:1: service=smtp has no keepalived equivalent (http, https only)"},
		{"virtual=10.9.9.1:80\n\treal=10.1.0.2 masq\n\tchecktype=ping\n",
			"ldirectord.cf:1: checktype=ping has no keepalived equivalent (negotiate, connect, on only)"},
		{"checkinterval=1\n\nvirtual=10.9.9.1:80\n\treal=10.1.0.2 masq\n\tservice=http\n\thttpmethod=HEAD\n",
			"ldirectord.cf:3: httpmethod=HEAD has no keepalived equivalent (HTTP_GET only)"},
		{"virtual=10.9.9.1:80\n\treal=10.1.0.2 masq\n\tservice=http\n\treceive=\"say \\\"hi\\\"\"\n",
			`ldirectord.cf:1: receive "say \\\"hi\\\"" cannot be written in keepalived.conf (a double quote or a newline)`},
	}
	for _, tt := range tests {
		cfg, err := config.Parse("ldirectord.cf", []byte(tt.cf))
		if err != nil {
			t.Fatalf("parse %q: %v", tt.cf, err)
		}
		_, err = Conf(cfg)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Conf(%q): %v, want %s", tt.cf, err, tt.want)
		}
	}
}

// keepalivedAccepts runs Debian's keepalived on the text in config-test mode: it must exit 0 and say
// nothing (keepalived prints a line for every setting it ignores or corrects).
func keepalivedAccepts(t *testing.T, text string) {
	t.Helper()
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatalf("keepalived is not installed (Debian package keepalived, scripts/deps/compare.txt): %v", err)
	}
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--config-test", "--log-console", "--use-file", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("keepalived --config-test: %v: %s\nconfig:\n%s", err, out, text)
	}
}

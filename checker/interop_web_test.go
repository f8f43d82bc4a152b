package checker

import (
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"testing"
	"time"
)

// nginx runs Debian's nginx from a private config: plain HTTP on 127.0.0.1 and ::1 (port http; files from
// www/, a redirect /old -> /index.html, nginx's own 404), and HTTPS (port https) with three server blocks on
// one port: a default one and www.a.example and www.b.example, each answering with its name and the TLS
// server name (SNI) it was reached by.
func nginx(t *testing.T) (d *debianServer, http, https uint16) {
	t.Helper()
	d = startServer(t, 2, func(ports []uint16) serverSpec {
		http, https = ports[0], ports[1]
		return nginxSpec(t, http, https)
	})
	return d, http, https
}

func nginxSpec(t *testing.T, http, https uint16) serverSpec {
	dir := serverDir(t)
	cert, key := writeCert(t, dir, "server")
	writeFile(t, dir, "www/index.html", "<html><body>Welcome to nginx</body></html>\n")
	p, s := itoa(int(http)), itoa(int(https))
	tlsSite := func(name, answer string) string {
		opts := " ssl"
		if name == "_" {
			opts += " default_server"
		}
		return `
  server {
    listen 127.0.0.1:` + s + opts + `;
    listen [::1]:` + s + opts + `;
    server_name ` + name + `;
    ssl_certificate ` + cert + `;
    ssl_certificate_key ` + key + `;
    location = /missing { return 404; }
    location / { return 200 "` + answer + `, sni=$ssl_server_name\n"; }
  }`
	}
	conf := writeFile(t, dir, "nginx.conf", `daemon off;
master_process on;
worker_processes 1;
pid `+dir+`/nginx.pid;
error_log `+dir+`/error.log info;
events { worker_connections 128; }
http {
  access_log `+dir+`/access.log;
  client_body_temp_path `+dir+`/body;
  proxy_temp_path `+dir+`/proxy;
  fastcgi_temp_path `+dir+`/fastcgi;
  uwsgi_temp_path `+dir+`/uwsgi;
  scgi_temp_path `+dir+`/scgi;
  default_type text/plain;
  server {
    listen 127.0.0.1:`+p+` default_server;
    listen [::1]:`+p+` default_server;
    server_name _;
    root `+dir+`/www;
    location = /old { return 301 /index.html; }
  }
  server {
    listen 127.0.0.1:`+p+`;
    server_name www.a.example;
    location = /secure { return 301 https://$host:`+s+`/; }
    location / { return 200 "site A\n"; }
  }`+tlsSite("_", "default TLS site")+tlsSite("www.a.example", "TLS site A")+tlsSite("www.b.example", "TLS site B")+`
}
`)
	return serverSpec{
		name: "nginx", pkg: "nginx", path: "/usr/sbin/nginx",
		args: []string{"-p", dir, "-c", conf, "-e", dir + "/error.log"},
		dir:  dir, logs: []string{dir + "/error.log", dir + "/access.log"},
		addrs: []string{loopback4(http), loopback6(http), loopback4(https), loopback6(https)},
	}
}

// tinyproxy runs Debian's tinyproxy from a private config on 127.0.0.1.
func tinyproxy(t *testing.T) (d *debianServer, port uint16) {
	t.Helper()
	d = startServer(t, 1, func(ports []uint16) serverSpec {
		port = ports[0]
		return tinyproxySpec(t, port)
	})
	return d, port
}

func tinyproxySpec(t *testing.T, port uint16) serverSpec {
	dir := serverDir(t)
	conf := writeFile(t, dir, "tinyproxy.conf", `Port `+itoa(int(port))+`
Listen 127.0.0.1
Timeout 30
MaxClients 20
Allow 127.0.0.1
LogLevel Info
LogFile "`+dir+`/tinyproxy.log"
PidFile "`+dir+`/tinyproxy.pid"
`)
	return serverSpec{
		name: "tinyproxy", pkg: "tinyproxy", path: "/usr/bin/tinyproxy",
		args: []string{"-d", "-c", conf},
		dir:  dir, logs: []string{dir + "/tinyproxy.log"},
		addrs: []string{loopback4(port)},
	}
}

// TestInteropHTTPNginx runs service=http and https against Debian's nginx.
func TestInteropHTTPNginx(t *testing.T) {
	noLeak(t)
	d, httpPort, httpsPort := nginx(t)
	v4, v6 := mustAddr("127.0.0.1"), mustAddr("::1")
	httpT := func(a netip.Addr, request, receive string) *Target {
		return &Target{Addr: a, Port: httpPort, Service: "http", Request: request, Receive: receive}
	}
	httpsT := func(a netip.Addr, vhost, request, receive string) *Target {
		return &Target{Addr: a, Port: httpsPort, Service: "https", VirtualHost: vhost, Request: request, Receive: receive}
	}
	check := func(c Checker, tg *Target) error { return c.Check(timeout(t, 5*time.Second), tg) }
	h := loopback4(httpPort)

	t.Run("up", func(t *testing.T) {
		wantErr(t, check(HTTP, httpT(v4, "/index.html", "Welcome to nginx")), "")
		wantErr(t, check(HTTP, httpT(v6, "/index.html", "^<html><body>Welcome to nginx</body></html>$")), "")
		wantErr(t, check(HTTP, httpT(v4, "/", "")), "")
		head := httpT(v4, "/index.html", "")
		head.HTTPMethod = "HEAD"
		wantErr(t, check(HTTP, head), "")
		// The Host header selects nginx's server block.
		a := httpT(v4, "/", "^site A$")
		a.VirtualHost = "www.a.example"
		wantErr(t, check(HTTP, a), "")
		// nginx answers /old with 301 and Location http://127.0.0.1:<port>/index.html: followed on the real.
		wantErr(t, check(HTTP, httpT(v4, "/old", "Welcome")), "")
		// The common redirect from http to https on the same name: followed to the real's https port, with
		// the name as TLS server name.
		secure := httpT(v4, "/secure", `^TLS site A, sni=www\.a\.example$`)
		secure.VirtualHost = "www.a.example"
		wantErr(t, check(HTTP, secure), "")
	})
	t.Run("wrong answer", func(t *testing.T) {
		err := check(HTTP, httpT(v4, "/missing.html", ""))
		wantErr(t, err, "GET http://"+h+"/missing.html: 404 Not Found")
		if got := Message(err); got != "404 Not Found" {
			t.Errorf("monitor message %q, want the status line", got)
		}
		err = check(HTTP, httpT(v4, "/index.html", "Goodbye"))
		wantErr(t, err, `GET http://`+h+`/index.html: 200 OK, body does not match "Goodbye"`)
		if got := Message(err); got != "<html><body>Welcome to nginx</body></html>\n" {
			t.Errorf("monitor message %q, want the body", got)
		}
		head := httpT(v4, "/index.html", "Welcome")
		head.HTTPMethod = "HEAD"
		wantErr(t, check(HTTP, head), `HEAD http://`+h+`/index.html: 200 OK, body does not match "Welcome"`)
		// An HTTPS check of the plain port: nginx answers the ClientHello with a plain 400 page.
		plain := httpsT(v4, "", "/", "")
		plain.Port = httpPort
		wantErr(t, check(HTTPS, plain), "GET https://"+h+"/: tls handshake: peer does not speak TLS")
	})
	t.Run("https sni", func(t *testing.T) {
		// Two names on one port: the check must reach each by its TLS server name, the Host header too.
		wantErr(t, check(HTTPS, httpsT(v4, "www.a.example", "/", `^TLS site A, sni=www\.a\.example$`)), "")
		wantErr(t, check(HTTPS, httpsT(v6, "www.b.example", "/", `^TLS site B, sni=www\.b\.example$`)), "")
		// No virtualhost: no SNI (an IP address is never sent as a server name), the default server.
		wantErr(t, check(HTTPS, httpsT(v4, "", "/", `^default TLS site, sni=$`)), "")
		wantErr(t, check(HTTPS, httpsT(v4, "www.a.example", "/", "site B")),
			`GET https://`+loopback4(httpsPort)+`/: 200 OK, body does not match "site B"`)
		wantErr(t, check(HTTPS, httpsT(v6, "www.b.example", "/missing", "")), "GET https://"+loopback6(httpsPort)+"/missing: 404 Not Found")
	})
	t.Run("refused", func(t *testing.T) {
		r := refusedTarget(t)
		hp := hostPort(r.Addr, r.Port)
		wantErr(t, check(HTTP, r), "GET http://"+hp+"/: connection refused")
		wantErr(t, check(HTTPS, r), "GET https://"+hp+"/: connection refused")
	})
	t.Run("hang", func(t *testing.T) {
		d.freeze(t)
		defer d.thaw(t)
		hangCheck(t, HTTP, httpT(v4, "/index.html", "Welcome"), "GET http://"+h+"/index.html: reading response: timed out")
		hangCheck(t, HTTPS, httpsT(v6, "www.a.example", "/", ""), "GET https://"+loopback6(httpsPort)+"/: tls handshake: timed out")
	})
	// Thawed, nginx answers again.
	wantErr(t, check(HTTP, httpT(v4, "/index.html", "Welcome")), "")
}

// squid runs Debian's squid from a private config in the foreground (-N) on 127.0.0.1: no disk cache, no
// pinger (it would send ICMP), DNS only to 127.0.0.1 (the tests use IP addresses in URLs; nothing may leave
// the host), its files in the temporary directory, which the user proxy (squid's effective user) owns.
func squid(t *testing.T) (d *debianServer, port uint16) {
	t.Helper()
	needRoot(t, "squid switches to its user proxy")
	d = startServer(t, 1, func(ports []uint16) serverSpec {
		port = ports[0]
		return squidSpec(t, port)
	})
	return d, port
}

func squidSpec(t *testing.T, port uint16) serverSpec {
	dir := serverDir(t)
	owner, err := user.Lookup("proxy")
	if err != nil {
		t.Fatalf("squid: no user proxy (Debian package squid): %v", err)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	if err := os.Chown(dir, uid, -1); err != nil {
		t.Fatal(err)
	}
	conf := writeFile(t, dir, "squid.conf", `http_port 127.0.0.1:`+itoa(int(port))+`
pid_filename `+dir+`/squid.pid
cache_log `+dir+`/cache.log
access_log stdio:`+dir+`/access.log
coredump_dir `+dir+`
netdb_filename none
cache deny all
http_access allow localhost
http_access deny all
visible_hostname proxy.ldgo.test
dns_nameservers 127.0.0.1
pinger_enable off
shutdown_lifetime 0 seconds
`)
	return serverSpec{
		name: "squid", pkg: "squid", path: "/usr/sbin/squid",
		args: []string{"-N", "-f", conf},
		dir:  dir, logs: []string{dir + "/cache.log", dir + "/access.log"},
		addrs: []string{loopback4(port)},
	}
}

// TestInteropHTTPProxy runs service=http_proxy against Debian's tinyproxy and squid, in front of nginx.
func TestInteropHTTPProxy(t *testing.T) {
	noLeak(t)
	_, httpPort, _ := nginx(t)
	origin := "http://" + loopback4(httpPort)
	for _, p := range []struct {
		name  string
		start func(*testing.T) (*debianServer, uint16)
		// originDown is the proxy's answer when the origin refuses connections.
		originDown string
	}{
		{"tinyproxy", tinyproxy, "500 Unable to connect"},
		{"squid", squid, "503 Service Unavailable"},
	} {
		t.Run(p.name, func(t *testing.T) {
			d, proxyPort := p.start(t)
			via := " via proxy " + loopback4(proxyPort)
			proxyT := func(request, receive string) *Target {
				return &Target{Addr: mustAddr("127.0.0.1"), Port: proxyPort, Service: "http_proxy", Request: "/" + request, Receive: receive}
			}
			check := func(tg *Target) error { return HTTPProxy.Check(timeout(t, 5*time.Second), tg) }
			t.Run("up", func(t *testing.T) {
				wantErr(t, check(proxyT(origin+"/index.html", "Welcome to nginx")), "")
				wantErr(t, check(proxyT(origin+"/", "")), "")
				// The redirect comes back through the proxy and is fetched through it.
				wantErr(t, check(proxyT(origin+"/old", "Welcome")), "")
			})
			t.Run("wrong answer", func(t *testing.T) {
				wantErr(t, check(proxyT(origin+"/missing.html", "")), "GET "+origin+"/missing.html"+via+": 404 Not Found")
				wantErr(t, check(proxyT(origin+"/index.html", "^site A")),
					`GET `+origin+`/index.html`+via+`: 200 OK, body does not match "^site A"`)
				// The origin is down: the proxy says so.
				closed := refusedTarget(t)
				down := "http://" + hostPort(closed.Addr, closed.Port) + "/"
				wantErr(t, check(proxyT(down, "")), "GET "+down+via+": "+p.originDown)
			})
			t.Run("refused", func(t *testing.T) {
				r := refusedTarget(t)
				r.Request = "/" + origin + "/"
				wantErr(t, check(r), "GET "+origin+"/ via proxy "+hostPort(r.Addr, r.Port)+": connection refused")
			})
			t.Run("hang", func(t *testing.T) {
				d.freeze(t)
				defer d.thaw(t)
				hangCheck(t, HTTPProxy, proxyT(origin+"/index.html", ""), "GET "+origin+"/index.html"+via+": reading response: timed out")
			})
			wantErr(t, check(proxyT(origin+"/index.html", "Welcome")), "")
		})
	}
}

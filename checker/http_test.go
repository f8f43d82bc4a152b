package checker

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// httpServer starts an HTTP (or HTTPS) test server on loopback of the given family.
func httpServer(t *testing.T, network string, tlsOn bool, h http.HandlerFunc) (*httptest.Server, *Target) {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = listen(t, network)
	if tlsOn {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	tg := target(t, s.Listener.Addr())
	tg.Request = "/index.html"
	return s, tg
}

func TestHTTP(t *testing.T) { paths(t, testHTTP) }

func testHTTP(t *testing.T, run func(Checker) Checker) {
	noLeak(t)
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			var mu sync.Mutex
			var hosts []string
			_, tg := httpServer(t, network, false, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hosts = append(hosts, r.Host)
				mu.Unlock()
				switch r.URL.Path {
				case "/index.html":
					fmt.Fprint(w, "<html>Test Page: ok</html>\n")
				case "/created":
					w.WriteHeader(http.StatusCreated)
				case "/broken":
					http.Error(w, "boom", http.StatusInternalServerError)
				default:
					http.NotFound(w, r)
				}
			})
			url := "http://" + hostPort(tg.Addr, tg.Port)
			ctx := timeout(t, time.Second)

			wantErr(t, run(HTTP).Check(ctx, tg), "")
			tg.Receive = "Test Page"
			wantErr(t, run(HTTP).Check(ctx, tg), "")
			tg.Receive = "^<html>.*</html>$" // Perl's $ before the final newline
			wantErr(t, run(HTTP).Check(ctx, tg), "")
			tg.Receive = "Welcome"
			err := run(HTTP).Check(ctx, tg)
			wantErr(t, err, `GET `+url+`/index.html: 200 OK, body does not match "Welcome"`)
			if got := Message(err); got != "<html>Test Page: ok</html>\n" {
				t.Errorf("monitor message %q, want the body as ldirectord writes it", got)
			}
			tg.Receive = ""
			tg.Request = "/missing"
			err = run(HTTP).Check(ctx, tg)
			wantErr(t, err, "GET "+url+"/missing: 404 Not Found")
			if got := Message(err); got != "404 Not Found" {
				t.Errorf("monitor message %q, want the status line", got)
			}
			tg.Request = "/broken"
			wantErr(t, run(HTTP).Check(ctx, tg), "GET "+url+"/broken: 500 Internal Server Error")
			tg.Request = "/created"
			wantErr(t, run(HTTP).Check(ctx, tg), "")

			// HEAD: the status alone; with a receive it fails as in ldirectord (no body).
			tg.Request, tg.HTTPMethod = "/index.html", "HEAD"
			wantErr(t, run(HTTP).Check(ctx, tg), "")
			tg.Receive = "ok"
			wantErr(t, run(HTTP).Check(ctx, tg), `HEAD `+url+`/index.html: 200 OK, body does not match "ok"`)
			tg.Receive, tg.HTTPMethod = "", "POST"
			wantErr(t, run(HTTP).Check(ctx, tg), `httpmethod "POST" is not GET or HEAD`)
			tg.HTTPMethod = ""

			// Host: the real's address (IPv6 in brackets, no port), or virtualhost.
			tg.VirtualHost = "www.example.org"
			wantErr(t, run(HTTP).Check(ctx, tg), "")
			mu.Lock()
			wantHost := hostLiteral(tg.Addr)
			if hosts[0] != wantHost || hosts[len(hosts)-1] != "www.example.org" {
				t.Errorf("Host headers %q, want %q first and www.example.org last", hosts, wantHost)
			}
			mu.Unlock()
		})
	}
}

// rawHTTP serves each connection with handle, after reading the request head, which it records.
func rawHTTP(t *testing.T, handle func(c net.Conn)) (*Target, chan string) {
	l := listen(t, "tcp4")
	reqs := make(chan string, 16)
	serve(t, l, func(c net.Conn) {
		br := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			head.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		reqs <- head.String()
		handle(c)
	})
	tg := target(t, l.Addr())
	tg.Request = "/index.html"
	return tg, reqs
}

func TestHTTPSendsOneRequestAndCloses(t *testing.T) { paths(t, testHTTPSendsOneRequestAndCloses) }

func testHTTPSendsOneRequestAndCloses(t *testing.T, run func(Checker) Checker) {
	noLeak(t)
	closed := make(chan bool, 1)
	tg, reqs := rawHTTP(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		_, err := c.Read(make([]byte, 1))
		closed <- err == io.EOF
	})
	wantErr(t, run(HTTP).Check(timeout(t, time.Second), tg), "")
	want := "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + userAgent + "\r\nConnection: close\r\n\r\n"
	if got := <-reqs; got != want {
		t.Errorf("request\n got %q\nwant %q", got, want)
	}
	if !<-closed {
		t.Error("the check did not close the connection after the response")
	}
}

func TestHTTPBackendFailures(t *testing.T) { paths(t, testHTTPBackendFailures) }

func testHTTPBackendFailures(t *testing.T, run func(Checker) Checker) {
	noLeak(t)
	const deadline = 200 * time.Millisecond
	for _, tc := range []struct {
		name    string
		handle  func(c net.Conn)
		receive string
		want    string // after "GET http://127.0.0.1:PORT/index.html: "
		full    bool   // the check must take the whole deadline
	}{
		{name: "accept and never answer", handle: func(c net.Conn) { c.Read(make([]byte, 1)) },
			want: "reading response: timed out", full: true},
		{name: "trickle slower than the deadline", handle: func(c net.Conn) {
			for _, b := range []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}, want: "reading response: timed out", full: true},
		{name: "trickle body", receive: "ok", handle: func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
			for range 100 {
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}, want: "200 OK, reading body: timed out", full: true},
		{name: "reset mid-response", handle: func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
			c.(*net.TCPConn).SetLinger(0)
		}, want: "reading response: connection reset by peer"},
		{name: "close mid-response", handle: func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
		}, want: "reading response: connection closed by peer"},
		{name: "close mid-body", receive: "ok", handle: func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
		}, want: "200 OK, reading body: connection closed by peer"},
		{name: "garbage", handle: func(c net.Conn) {
			c.Write([]byte("\x00\x01\x02garbage\r\n\r\n"))
		}, want: `not an HTTP response: malformed HTTP response "\x00\x01\x02garbage"`},
		{name: "endless header", handle: func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX: ")
			b := []byte(strings.Repeat("x", 4096))
			for {
				if _, err := c.Write(b); err != nil {
					return
				}
			}
		}, want: "response headers longer than 64 KiB"},
		{name: "wrong status", handle: func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
		}, want: "503 Service Unavailable"},
		{name: "redirect without location", handle: func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n")
		}, want: "302 Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, _ := rawHTTP(t, tc.handle)
			tg.Receive = tc.receive
			var err error
			d := elapsed(func() { err = run(HTTP).Check(timeout(t, deadline), tg) })
			wantErr(t, err, "GET http://"+hostPort(tg.Addr, tg.Port)+"/index.html: "+tc.want)
			if tc.full {
				withinDeadline(t, d, deadline)
			} else if d > deadline {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestHTTPRefused(t *testing.T) { paths(t, testHTTPRefused) }

func testHTTPRefused(t *testing.T, run func(Checker) Checker) {
	noLeak(t)
	for _, network := range []string{"tcp4", "tcp6"} {
		tg := closedPort(t, network)
		url := "http://" + hostPort(tg.Addr, tg.Port) + "/"
		wantErr(t, run(HTTP).Check(timeout(t, time.Second), tg), "GET "+url+": connection refused")
		wantErr(t, HTTPS.Check(timeout(t, time.Second), tg), "GET https"+url[4:]+": connection refused")
	}
}

func TestHTTPHugeBodyIsReadBounded(t *testing.T) { paths(t, testHTTPHugeBodyIsReadBounded) }

func testHTTPHugeBodyIsReadBounded(t *testing.T, run func(Checker) Checker) {
	noLeak(t)
	written := make(chan int64, 4)
	tg, _ := rawHTTP(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nok ")
		n, _ := io.Copy(c, neverEnding('x'))
		written <- n
	})
	tg.Receive = "^ok"
	wantErr(t, run(HTTP).Check(timeout(t, 5*time.Second), tg), "")
	if n := <-written; n > 8<<20 {
		t.Errorf("the server could write %d bytes before the check closed", n)
	}
	tg.Receive = "y" // never there: the first 1 MiB is all that is looked at
	wantErr(t, run(HTTP).Check(timeout(t, 5*time.Second), tg),
		"GET http://"+hostPort(tg.Addr, tg.Port)+`/index.html: 200 OK, body does not match "y"`)
	<-written
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func TestHTTPRedirects(t *testing.T) { paths(t, testHTTPRedirects) }

func testHTTPRedirects(t *testing.T, run func(Checker) Checker) {
	noLeak(t)
	var s *httptest.Server
	s, tg := httpServer(t, "tcp4", false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/index.html":
			http.Redirect(w, r, "/moved", http.StatusFound)
		case "/moved":
			host := r.Host
			if !strings.Contains(host, ":") { // our Host carries no port, as ldirectord's
				host = s.Listener.Addr().String()
			}
			http.Redirect(w, r, "http://"+host+"/final", http.StatusMovedPermanently)
		case "/final":
			fmt.Fprint(w, "final ok host="+r.Host)
		case "/away":
			http.Redirect(w, r, "http://www.example.com/", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	})
	_ = s
	url := "http://" + hostPort(tg.Addr, tg.Port)
	ctx := timeout(t, 2*time.Second)
	tg.Receive = "final ok"
	wantErr(t, run(HTTP).Check(ctx, tg), "")
	tg.VirtualHost = "www.example.org:" + itoa(int(tg.Port))
	tg.Receive = "host=www.example.org"
	wantErr(t, run(HTTP).Check(ctx, tg), "") // a redirect to the virtualhost goes to the real
	tg.VirtualHost, tg.Receive = "", ""
	tg.Request = "/away"
	wantErr(t, run(HTTP).Check(ctx, tg), "GET "+url+"/away: redirect to http://www.example.com/ leaves the real server")
	tg.Request = "/loop"
	wantErr(t, run(HTTP).Check(ctx, tg), "GET "+url+"/loop: more than 7 redirects")
}

func TestHTTPS(t *testing.T) {
	noLeak(t)
	for _, network := range []string{"tcp4", "tcp6"} {
		var mu sync.Mutex
		var sni []string
		s, tg := httpServer(t, network, true, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "secure ok")
		})
		s.TLS.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			sni = append(sni, h.ServerName)
			mu.Unlock()
			return nil, nil
		}
		// httptest's certificate is self-signed: ldirectord fails here, we check health, not trust.
		tg.Receive = "secure ok"
		wantErr(t, HTTPS.Check(timeout(t, time.Second), tg), "")
		tg.VirtualHost = "www.example.org"
		wantErr(t, HTTPS.Check(timeout(t, time.Second), tg), "")
		mu.Lock()
		if len(sni) != 2 || sni[0] != "" || sni[1] != "www.example.org" {
			t.Errorf("server names %q, want none for the IP and www.example.org for the virtualhost", sni)
		}
		mu.Unlock()
	}
}

func TestHTTPSHandshakeFailures(t *testing.T) {
	noLeak(t)
	// A server that insists on a client certificate.
	s, tg := httpServer(t, "tcp4", false, func(w http.ResponseWriter, r *http.Request) {})
	s.Close()
	s = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	tg = target(t, s.Listener.Addr())
	url := "https://" + hostPort(tg.Addr, tg.Port) + "/"
	err := HTTPS.Check(timeout(t, time.Second), tg)
	if err == nil || !strings.HasPrefix(err.Error(), "GET "+url+": ") {
		t.Errorf("client-certificate server: %v", err)
	}
	// A plain HTTP server on an https check.
	_, plain := httpServer(t, "tcp4", false, func(w http.ResponseWriter, r *http.Request) {})
	wantErr(t, HTTPS.Check(timeout(t, time.Second), plain),
		"GET https://"+hostPort(plain.Addr, plain.Port)+"/index.html: tls handshake: peer does not speak TLS")
	// A server that accepts and never answers the ClientHello.
	hang, _ := rawHTTP(t, func(c net.Conn) {})
	l := listen(t, "tcp4")
	serve(t, l, func(c net.Conn) { c.Read(make([]byte, 1<<16)); c.Read(make([]byte, 1)) })
	hang = target(t, l.Addr())
	var d time.Duration
	d = elapsed(func() { err = HTTPS.Check(timeout(t, 200*time.Millisecond), hang) })
	wantErr(t, err, "GET https://"+hostPort(hang.Addr, hang.Port)+"/: tls handshake: timed out")
	withinDeadline(t, d, 200*time.Millisecond)
}

func TestHTTPProxy(t *testing.T) { paths(t, testHTTPProxy) }

func testHTTPProxy(t *testing.T, run func(Checker) Checker) {
	noLeak(t)
	tg, reqs := rawHTTP(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nproxied!")
	})
	tg.Request = "/http://www.example.org/probe"
	tg.Receive = "proxied"
	tg.VirtualHost = "ignored.example.org"
	wantErr(t, run(HTTPProxy).Check(timeout(t, time.Second), tg), "")
	want := "GET http://www.example.org/probe HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: " + userAgent + "\r\nConnection: close\r\n\r\n"
	if got := <-reqs; got != want {
		t.Errorf("request\n got %q\nwant %q", got, want)
	}
	tg.Receive = "nope"
	wantErr(t, run(HTTPProxy).Check(timeout(t, time.Second), tg),
		`GET http://www.example.org/probe via proxy `+hostPort(tg.Addr, tg.Port)+`: 200 OK, body does not match "nope"`)
	tg.Request = "/index.html"
	wantErr(t, run(HTTPProxy).Check(timeout(t, time.Second), tg), `http_proxy: request "index.html" is not an absolute http:// URL`)
}

func TestHTTPPerRealAbsoluteURL(t *testing.T) { paths(t, testHTTPPerRealAbsoluteURL) }

func testHTTPPerRealAbsoluteURL(t *testing.T, run func(Checker) Checker) {
	noLeak(t)
	tg, reqs := rawHTTP(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tg.Request = "/http://" + hostPort(tg.Addr, tg.Port) + "/status?full"
	wantErr(t, run(HTTP).Check(timeout(t, time.Second), tg), "")
	if got := <-reqs; !strings.HasPrefix(got, "GET /status?full HTTP/1.1\r\nHost: "+hostPort(tg.Addr, tg.Port)+"\r\n") {
		t.Errorf("request %q", got)
	}
}

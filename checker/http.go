package checker

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// HTTP, HTTPS and HTTPProxy are the negotiate checks of service=http, https and http_proxy.
//
// HTTP and HTTPS send one HTTP/1.1 request (httpmethod GET or HEAD, default GET) for request to the real
// server at its check port, with Host set to virtualhost (or the real's address, IPv6 in brackets, without
// port) and `Connection: close`; the connection is always closed after the response. The server is healthy
// when the final response is 2xx and, if receive is set, the body (not the headers) matches receive (a Perl
// regular expression, see CompileReceive). At most 64 KiB of headers and the first 1 MiB of the body are
// read; receive is matched against that prefix. Redirects (301, 302, 303, 307, 308) are followed up to 7
// times, as LWP does, but only while they stay on the real server (a Location host equal to the real's
// address, the Host sent or virtualhost; the connection still goes to the real's address): a redirect to
// another host fails the check instead of sending the director's requests elsewhere.
//
// HTTPS checks health, not trust: the certificate is not verified (self-signed and expired certificates
// are fine; in ldirectord they fail), TLS 1.0 and later are accepted, and virtualhost, when it is a name, is
// sent as the TLS server name (SNI). A per-real request that is an absolute http:// or https:// URL is used
// as the URL, as in ldirectord; the connection goes to the URL's host when it is an IP address, else to
// the real.
//
// HTTPProxy sends the request, which must be an absolute http:// URL, through the real server acting as an
// HTTP proxy: `GET http://host/path HTTP/1.1` with Host from the URL, to the real at its check port.
var (
	HTTP      Checker = &httpChecker{scheme: "http"}
	HTTPS     Checker = &httpChecker{scheme: "https"}
	HTTPProxy Checker = &httpChecker{scheme: "http", proxy: true}
)

// userAgent keeps "libwww-perl" so backend log filters written for ldirectord's checks keep working.
const userAgent = "ldirectord-go (libwww-perl/6.68 compatible)"

const maxRedirects = 7

type httpChecker struct {
	scheme string
	proxy  bool
}

// httpRequest is one request of a check: where to connect and what to send.
type httpRequest struct {
	scheme  string
	connect netip.AddrPort
	host    string   // Host header
	target  string   // request-target: origin form, or absolute form through a proxy
	url     *url.URL // for resolving redirects
	label   string   // "GET http://...", the prefix of every error
	sni     string
	via     string // " via proxy 1.2.3.4:3128" for http_proxy
}

// httpError is a check failure that carries the monitorfile message ldirectord writes.
type httpError struct {
	checkError
	monitor string
}

func (e *httpError) monitorMessage() string { return e.monitor }

func (h *httpChecker) Check(ctx context.Context, t *Target) error {
	method, re, r, err := h.prepare(t)
	if err != nil {
		return err
	}
	loc, err := h.exchange(ctx, method, r, re, t.Receive)
	return h.follows(ctx, t, method, r, re, loc, err, 0)
}

// prepare checks the target's settings and builds the check's first request.
func (h *httpChecker) prepare(t *Target) (method string, re *regexp.Regexp, r *httpRequest, err error) {
	method = t.HTTPMethod
	if method == "" {
		method = http.MethodGet
	}
	if method != http.MethodGet && method != http.MethodHead {
		return "", nil, nil, errorf("httpmethod %q is not GET or HEAD", method)
	}
	if t.Receive != "" {
		if re, err = CompileReceive(t.Receive); err != nil {
			return "", nil, nil, err
		}
	}
	r, err = h.first(t, method)
	return method, re, r, err
}

// follows goes on from the answer to r (after redirects redirects): loc, a redirect to follow, or err.
func (h *httpChecker) follows(ctx context.Context, t *Target, method string, r *httpRequest, re *regexp.Regexp, loc string, err error, redirects int) error {
	for ; ; redirects++ {
		if err != nil || loc == "" {
			return err
		}
		if redirects == maxRedirects {
			return errorf("%s: more than %d redirects", r.label, maxRedirects)
		}
		if r, err = h.follow(t, method, r, loc); err != nil {
			return err
		}
		loc, err = h.exchange(ctx, method, r, re, t.Receive)
	}
}

// first builds the check's first request from the target.
func (h *httpChecker) first(t *Target, method string) (*httpRequest, error) {
	ap, err := addrPort(t)
	if err != nil {
		return nil, err
	}
	path := t.Request
	if path == "" {
		path = "/"
	}
	if h.proxy {
		abs := strings.TrimPrefix(path, "/")
		u, err := url.Parse(abs)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, errorf("http_proxy: request %q is not an absolute http:// URL", abs)
		}
		via := " via proxy " + ap.String()
		return &httpRequest{scheme: "http", connect: ap, host: u.Host, target: u.String(), url: u,
			label: method + " " + u.String() + via, via: via}, nil
	}
	if abs := strings.TrimPrefix(path, "/"); strings.HasPrefix(abs, "http://") || strings.HasPrefix(abs, "https://") {
		u, err := url.Parse(abs)
		if err != nil || u.Host == "" {
			return nil, errorf("request %q is not a valid URL", abs)
		}
		r := &httpRequest{scheme: u.Scheme, host: u.Host, target: u.RequestURI(), url: u, label: method + " " + u.String()}
		r.connect = netip.AddrPortFrom(ap.Addr(), ap.Port())
		if a, err := netip.ParseAddr(u.Hostname()); err == nil {
			r.connect = netip.AddrPortFrom(a.Unmap(), ap.Port())
		}
		if p := u.Port(); p != "" {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				return nil, errorf("request %q: bad port", abs)
			}
			r.connect = netip.AddrPortFrom(r.connect.Addr(), uint16(n))
		}
		r.sni = serverName(u.Hostname())
		return r, nil
	}
	pu, err := url.Parse(path)
	if err != nil {
		return nil, errorf("request %q is not a valid URL path", path)
	}
	u := &url.URL{Scheme: h.scheme, Host: ap.String(), Path: pu.Path, RawPath: pu.RawPath, RawQuery: pu.RawQuery}
	host := t.VirtualHost
	if host == "" {
		host = hostLiteral(t.Addr)
	} else if strings.ContainsAny(host, " \t\r\n") {
		return nil, errorf("virtualhost %q contains white space", host)
	}
	r := &httpRequest{scheme: h.scheme, connect: ap, host: host, target: u.RequestURI(), url: u,
		label: method + " " + u.String()}
	if h.scheme == "https" && t.VirtualHost != "" {
		hn := host
		if h, _, err := net.SplitHostPort(host); err == nil {
			hn = h
		}
		r.sni = serverName(hn)
	}
	return r, nil
}

// serverName is the TLS server name for a host: a DNS name, or "" for an IP address (SNI carries names only).
func serverName(host string) string {
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return ""
	}
	return host
}

// follow builds the request for a redirect to loc, or fails when loc leaves the real server.
func (h *httpChecker) follow(t *Target, method string, cur *httpRequest, loc string) (*httpRequest, error) {
	u, err := cur.url.Parse(loc)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errorf("%s: redirect to %q is not an http URL", cur.label, loc)
	}
	u.Fragment = ""
	if h.proxy {
		if u.Scheme != "http" {
			return nil, errorf("%s: redirect to %s cannot go through the proxy", cur.label, u)
		}
		return &httpRequest{scheme: "http", connect: cur.connect, host: u.Host, target: u.String(), url: u,
			label: method + " " + u.String() + cur.via, via: cur.via}, nil
	}
	name := u.Hostname()
	same := strings.EqualFold(name, hostOnly(cur.host)) || strings.EqualFold(name, hostOnly(t.VirtualHost))
	if a, err := netip.ParseAddr(name); err == nil && (a.Unmap() == t.Addr.Unmap() || a.Unmap() == cur.connect.Addr()) {
		same = true
	}
	if !same {
		return nil, errorf("%s: redirect to %s leaves the real server", cur.label, u)
	}
	port := uint16(80)
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return nil, errorf("%s: redirect to %q has a bad port", cur.label, loc)
		}
		port = uint16(n)
	}
	host := u.Host
	if strings.EqualFold(u.Host, cur.url.Host) && u.Scheme == cur.scheme {
		// A relative redirect, or one to the address just asked: keep the Host (virtualhost) we sent, where
		// LWP would switch to the real's IP address.
		host = cur.host
	}
	return &httpRequest{scheme: u.Scheme, connect: netip.AddrPortFrom(cur.connect.Addr(), port), host: host,
		target: u.RequestURI(), url: u, label: method + " " + u.String(), sni: serverName(name)}, nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	// Requests for http.ReadResponse, which only reads their Method.
	getRequest  = &http.Request{Method: http.MethodGet}
	headRequest = &http.Request{Method: http.MethodHead}
)

// exchange sends one request and judges its response. A followable redirect returns its Location.
func (h *httpChecker) exchange(ctx context.Context, method string, r *httpRequest, re *regexp.Regexp, receive string) (string, error) {
	c, err := dial(ctx, "tcp", r.connect)
	if err != nil {
		return "", failf(err, "%s", r.label)
	}
	defer c.Close()
	var nc net.Conn = c
	if r.scheme == "https" {
		tc := tls.Client(c, tlsConfig(r.sni))
		// The deadline and the cancel hook already bound c, so Handshake needs no goroutine of its own.
		if err := tc.Handshake(); err != nil {
			return "", failf(err, "%s: tls handshake", r.label)
		}
		nc = tc
	}

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	*bp = r.appendRequest((*bp)[:0], method)
	if _, err := nc.Write(*bp); err != nil {
		return "", failf(err, "%s: sending request", r.label)
	}
	return judge(nc, method, r, re, receive, bp)
}

// appendRequest appends the request the check sends to b.
func (r *httpRequest) appendRequest(b []byte, method string) []byte {
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, r.target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.host...)
	return append(b, "\r\nUser-Agent: "+userAgent+"\r\nConnection: close\r\n\r\n"...)
}

// errIncomplete ends the bytes the event loop has received so far (see judge): the answer may go on.
var errIncomplete = errors.New("response incomplete so far")

// judge reads the response to r from rd and judges it. A followable redirect returns its Location. bp is
// a buffer the body may be read into. When rd ends in errIncomplete (the event loop judging what arrived
// so far), a response that needs more bytes returns an error that errors.Is errIncomplete.
func judge(rd io.Reader, method string, r *httpRequest, re *regexp.Regexp, receive string, bp *[]byte) (string, error) {
	er := &errReader{r: rd}
	lr := &io.LimitedReader{R: er, N: maxHeaderBytes}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(lr)
	defer func() { br.Reset(nil); readerPool.Put(br) }()
	hreq := getRequest
	if method == http.MethodHead {
		hreq = headRequest
	}
	resp, err := http.ReadResponse(br, hreq)
	if err != nil {
		if er.err != nil {
			// The network failed mid-line; bufio then hands the partial line to the parser, whose complaint
			// is not the cause.
			err = er.err
		}
		switch {
		case lr.N == 0:
			return "", errorf("%s: response headers longer than %d KiB", r.label, maxHeaderBytes>>10)
		case err == errIncomplete:
			return "", err
		case isMalformed(err):
			return "", errorf("%s: not an HTTP response: %s", r.label, truncate(err.Error(), 100))
		}
		return "", failf(err, "%s: reading response", r.label)
	}
	// resp.Body is not closed: closing drains it, and the connection is closed anyway.
	switch resp.StatusCode {
	case 301, 302, 303, 307, 308:
		if loc := resp.Header.Get("Location"); loc != "" {
			return loc, nil
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", &httpError{checkError{msg: r.label + ": " + resp.Status}, resp.Status}
	}
	if re == nil {
		return "", nil
	}
	lr.N += maxBodyBytes
	body, err := readBody(resp.Body, bp)
	if err == errIncomplete || er.err == errIncomplete {
		return "", errIncomplete
	}
	if err != nil && lr.N > 0 {
		return "", failf(err, "%s: %s, reading body", r.label, resp.Status)
	}
	if !re.Match(body) {
		msg := r.label + ": " + resp.Status + ", body does not match " + strconv.Quote(receive)
		return "", &httpError{checkError{msg: msg}, quoteBody(body)}
	}
	return "", nil
}

// errReader remembers the first error of the reader it wraps.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// readBody reads up to maxBodyBytes of body into *bp (grown as needed). A body cut short by the read
// bound is not an error: the caller tells that case by its LimitedReader.
func readBody(body io.Reader, bp *[]byte) ([]byte, error) {
	b := (*bp)[:0]
	for len(b) < maxBodyBytes {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):min(cap(b), maxBodyBytes)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			if cap(b) <= 64<<10 {
				*bp = b
			}
			return b, err
		}
	}
	if cap(b) <= 64<<10 {
		*bp = b
	}
	return b, nil
}

// isMalformed tells a response that is not HTTP from one the network cut short.
func isMalformed(err error) bool {
	var ne net.Error
	return !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
		!errors.As(err, new(syscall.Errno))
}

// truncate shortens s to n bytes for a log line.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// quoteBody is the monitorfile message for a 2xx body that did not match: the body itself, as in
// ldirectord, but at most 256 bytes of it.
func quoteBody(b []byte) string {
	const max = 256
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

var (
	tlsConfigs   sync.Map // server name -> *tls.Config
	sessionCache = tls.NewLRUClientSessionCache(4096)
)

// tlsConfig is the shared TLS client config for a server name: no verification (health, not trust), TLS
// 1.0 and later, and a session cache so repeated checks of a backend resume instead of a full handshake.
func tlsConfig(sni string) *tls.Config {
	if c, ok := tlsConfigs.Load(sni); ok {
		return c.(*tls.Config)
	}
	c := &tls.Config{
		ServerName:         sni,
		InsecureSkipVerify: true, // a health check must work with self-signed backends; see docs/checks.md
		MinVersion:         tls.VersionTLS10,
		ClientSessionCache: sessionCache,
		// Plain X25519: the post-quantum hybrid Go offers by default costs several times the CPU and
		// protects nothing a health check sends.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
	}
	v, _ := tlsConfigs.LoadOrStore(sni, c)
	return v.(*tls.Config)
}

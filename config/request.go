package config

import (
	"cmp"
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// checkHTTP reports, at their own lines, the request= and virtualhost= values of an HTTP check that the
// check could never send: such a config used to pass `-t` and then fail every check with `not a valid
// URL path`. The rules are those of the http, https and http_proxy checkers.
func (p *parser) checkHTTP(v *Virtual, vs *vspec) {
	if v.CheckType != CheckNegotiate && v.CheckType != CheckCombined {
		return
	}
	proxy := false
	switch v.Service {
	case "http", "https":
	case "http_proxy":
		proxy = true
	default:
		return
	}
	virtualUsed := len(vs.reals) == 0
	for _, rs := range vs.reals {
		if !rs.own {
			virtualUsed = true
			continue
		}
		if msg := requestProblem(rs.request, proxy); msg != "" && rs.request != "/" {
			p.errorf(rs.line, "invalid request %q: %s", Excerpt(rs.request), msg)
		}
	}
	// The default request "/" is left to the check (4.12 accepted it, also for http_proxy).
	if virtualUsed && v.Request != "/" {
		if msg := requestProblem(v.Request, proxy); msg != "" {
			p.errorf(cmp.Or(vs.requestLn, v.Line), "invalid request %q: %s", Excerpt(v.Request), msg)
		}
	}
	if strings.ContainsAny(v.VirtualHost, " \t\r\n") {
		p.errorf(cmp.Or(vs.vhostLn, v.Line), "invalid virtualhost %q: it contains white space", Excerpt(v.VirtualHost))
	}
}

// requestProblem says why an HTTP check cannot send request (with its leading '/'), or "".
func requestProblem(request string, proxy bool) string {
	if request == "" {
		request = "/"
	}
	abs := strings.TrimPrefix(request, "/")
	if proxy {
		u, err := url.Parse(abs)
		switch {
		case err != nil:
			return urlProblem(err)
		case u.Scheme != "http" || u.Host == "":
			return "service=http_proxy needs an absolute http:// URL"
		}
		return ""
	}
	if strings.HasPrefix(abs, "http://") || strings.HasPrefix(abs, "https://") {
		u, err := url.Parse(abs)
		switch {
		case err != nil:
			return urlProblem(err)
		case u.Host == "":
			return "the URL has no host"
		}
		if port := u.Port(); port != "" {
			if _, err := strconv.ParseUint(port, 10, 16); err != nil {
				return "invalid port " + strconv.Quote(port)
			}
		}
		return ""
	}
	if _, err := url.Parse(request); err != nil {
		return urlProblem(err)
	}
	return ""
}

// urlProblem is url.Parse's error without the URL it repeats: `invalid URL escape "%zz"`.
func urlProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

package config

import (
	"bytes"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Dump prints the effective config in ldirectord.cf syntax: every default and inherited value is written
// out in each virtual section. Parse(Dump(c)) gives a config Equal to c.
func Dump(c *Config) []byte {
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# Effective configuration of %s", c.File)
	w("checkinterval=%d", secs(c.CheckInterval))
	w("autoreload=%s", yn(c.AutoReload))
	if c.Callback != "" {
		w(`callback="%s"`, c.Callback)
	}
	w(`logfile="%s"`, c.LogFile)
	for _, e := range c.Execute {
		w("execute=%s", e)
	}
	w("fork=%s", yn(c.Fork))
	w("supervised=%s", yn(c.Supervised))
	w("readdquiescent=%s", yn(c.ReaddQuiescent))
	if c.EmailAlertFrom != "" {
		w("emailalertfrom=%s", c.EmailAlertFrom)
	}
	if c.MaintenanceDir != "" {
		w("maintenancedir=%s", c.MaintenanceDir)
	}
	if c.Metrics != "" {
		w("metrics=%s", metricsText(c.Metrics))
	}
	// A value inherited from a global line may not be writable in a virtual section (a '#' there starts a
	// comment); such a value is written as the global line it came from.
	globalFB, globalEA := "", ""
	for _, v := range c.Virtuals {
		if v.FallbackCommand != "" && vstring(v, "fallbackcommand", v.FallbackCommand) == "" && globalFB == "" {
			globalFB = v.FallbackCommand
			w("fallbackcommand=%s", globalFB)
		}
		if v.EmailAlert != "" && vstring(v, "emailalert", v.EmailAlert) == "" && globalEA == "" {
			globalEA = v.EmailAlert
			w("emailalert=%s", globalEA)
		}
	}
	for i, v := range c.Virtuals {
		b.WriteString("\n")
		dumpVirtual(&b, c, i, v, globalFB, globalEA)
	}
	return b.Bytes()
}

func yn(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func secs(d time.Duration) int64 { return int64(d / time.Second) }

// vstring returns a per-virtual line `name=...` that parses back to val, or "" when there is none.
func vstring(v *Virtual, name, val string) string {
	for _, cand := range []string{name + "=" + val, name + `="` + val + `"`} {
		if got, ok := parseOneVirtualLine(cand, name); ok && got == val {
			return cand
		}
	}
	return ""
}

// parseOneVirtualLine parses a single per-virtual line in a scratch section and returns the value of the
// string directive name.
func parseOneVirtualLine(line, name string) (string, bool) {
	c, err := Parse("", []byte("virtual=1\n    "+line+"\n"))
	if err != nil || len(c.Virtuals) != 1 {
		return "", false
	}
	v := c.Virtuals[0]
	switch name {
	case "fallbackcommand":
		return v.FallbackCommand, true
	case "emailalert":
		return v.EmailAlert, true
	case "checkcommand":
		return v.CheckCommand, true
	case "monitorfile":
		return v.MonitorFile, true
	case "virtualhost":
		return v.VirtualHost, true
	case "servicename":
		return v.ServiceName, true
	case "comment":
		return v.Comment, true
	}
	return "", false
}

func hostPort(host string, addr netip.Addr, ipv6 bool, port string) string {
	h := host
	if addr.IsValid() {
		h = addr.String()
	}
	if ipv6 {
		h = "[" + h + "]"
	}
	if port == "" {
		return h
	}
	return h + ":" + port
}

func dumpVirtual(b *bytes.Buffer, c *Config, i int, v *Virtual, globalFB, globalEA string) {
	w := func(format string, a ...any) { fmt.Fprintf(b, "    "+format+"\n", a...) }
	var vs *vspec
	if c.state != nil && i < len(c.state.virtuals) && c.state.virtuals[i].line == v.Line {
		vs = c.state.virtuals[i]
	}
	kw := "virtual"
	if v.IPv6 {
		kw = "virtual6"
	}
	switch {
	case v.Protocol == FWM:
		fmt.Fprintf(b, "%s=%d\n", kw, v.FWMark)
	default:
		port := strconv.Itoa(int(v.Port))
		if vs != nil && v.Port == 0 && !isDigits(vs.portText) {
			port = vs.portText
		}
		fmt.Fprintf(b, "%s=%s\n", kw, hostPort(v.Host, v.Addr, v.IPv6, port))
	}
	w("protocol=%s", v.Protocol)
	w("scheduler=%s", v.Scheduler)
	if v.IsPersistent {
		w("persistent=%d", v.Persistent)
	}
	if v.Netmask != 0 {
		if v.IPv6 {
			w("netmask=%d", v.Netmask)
		} else {
			m := v.Netmask
			w("netmask=%d.%d.%d.%d", m>>24, m>>16&255, m>>8&255, m&255)
		}
	}
	if v.SchedFlags != "" {
		w("schedflags=%s", v.SchedFlags)
	}
	w("ops=%s", yn(v.OPS))
	if v.CheckType == CheckCombined {
		w("checktype=%d", v.CombinedN)
	} else {
		w("checktype=%s", v.CheckType)
	}
	for _, s := range []struct{ name, val string }{{"login", v.Login}, {"passwd", v.Passwd},
		{"database", v.Database}, {"secret", v.Secret}, {"load", v.Load}} {
		if s.val != "" {
			w(`%s="%s"`, s.name, s.val)
		}
	}
	// service=ftp/sip fill in an empty login/passwd; when they are empty the service came from the port.
	if v.Service != "" && !((v.Service == "ftp" && (v.Login == "" || v.Passwd == "")) || (v.Service == "sip" && v.Login == "")) {
		w("service=%s", v.Service)
	}
	if l := vstring(v, "checkcommand", v.CheckCommand); l != "" {
		w("%s", l)
	}
	if v.CheckPort != 0 {
		w("checkport=%d", v.CheckPort)
	}
	w(`request="%s"`, v.Request)
	if v.Receive != "" {
		w(`receive="%s"`, v.Receive)
	}
	w("httpmethod=%s", v.HTTPMethod)
	if v.VirtualHost != "" {
		w(`virtualhost="%s"`, v.VirtualHost)
	}
	w("checktimeout=%d", secs(v.CheckTimeout))
	w("negotiatetimeout=%d", secs(v.NegotiateTimeout))
	if v.CheckInterval != c.CheckInterval {
		w("checkinterval=%d", secs(v.CheckInterval))
	}
	if v.CheckCount != 1 {
		w("checkcount=%d", v.CheckCount)
	}
	w("failurecount=%d", v.FailureCount)
	w("successcount=%d", v.SuccessCount)
	w("quiescent=%s", yn(v.Quiescent))
	w("cleanstop=%s", yn(v.CleanStop))
	if f := v.Fallback; f != nil {
		kw := "fallback"
		if v.IPv6 {
			kw = "fallback6"
		}
		w("%s=%s %s", kw, hostPort(f.Host, f.Addr, v.IPv6, strconv.Itoa(int(f.Port))), f.Forward)
	}
	if v.FallbackCommand != "" && !(v.FallbackCommand == globalFB && vstring(v, "fallbackcommand", v.FallbackCommand) == "") {
		w("%s", vstring(v, "fallbackcommand", v.FallbackCommand))
	}
	if v.EmailAlert != "" && !(v.EmailAlert == globalEA && vstring(v, "emailalert", v.EmailAlert) == "") {
		w("%s", vstring(v, "emailalert", v.EmailAlert))
	}
	w("emailalertfreq=%d", secs(v.EmailAlertFreq))
	w("emailalertstatus=%s", v.EmailAlertStatus.String())
	if v.SMTP != "" {
		w("smtp=%s", v.SMTP)
	}
	for _, s := range []struct{ name, val string }{{"monitorfile", v.MonitorFile}, {"servicename", v.ServiceName}, {"comment", v.Comment}} {
		if s.val != "" {
			if l := vstring(v, s.name, s.val); l != "" {
				w("%s", l)
			}
		}
	}
	for _, r := range v.Reals {
		kw := "real"
		if v.IPv6 {
			kw = "real6"
		}
		port := ""
		if r.Port != 0 {
			port = strconv.Itoa(int(r.Port))
		} else if vs != nil && !r.Addr.IsValid() {
			for _, rs := range vs.reals {
				if rs.line == r.Line && !isDigits(rs.portText) {
					port = rs.portText
				}
			}
		}
		line := fmt.Sprintf("%s=%s %s %d", kw, hostPort(r.Host, r.Addr, v.IPv6, port), r.Forward, r.Weight)
		if r.HasOwnCheck {
			// Without its leading '/' the request means the same to ldirectord 4.12 (bug W7).
			line += fmt.Sprintf(` "%s", "%s"`, strings.TrimPrefix(r.Request, "/"), r.Receive)
		}
		if r.Lower != 0 {
			line += fmt.Sprintf(" l:%d", r.Lower)
		}
		if r.Upper != 0 {
			line += fmt.Sprintf(" u:%d", r.Upper)
		}
		w("%s", line)
	}
}

// Equal reports whether a and b are the same configuration: every field but File, Warnings and the Line
// fields, with Host compared only where the address is not resolved (a dump writes addresses).
func Equal(a, b *Config) bool {
	return reflect.DeepEqual(normalize(a), normalize(b))
}

func normalize(c *Config) *Config {
	if c == nil {
		return nil
	}
	n := *c
	n.File, n.Warnings, n.state = "", nil, nil
	if len(n.Execute) == 0 {
		n.Execute = nil
	}
	n.Virtuals = make([]*Virtual, len(c.Virtuals))
	for i, v := range c.Virtuals {
		nv := *v
		nv.Line = 0
		if nv.Addr.IsValid() || nv.Protocol == FWM {
			nv.Host = ""
		}
		if v.Fallback != nil {
			f := *v.Fallback
			f.Line = 0
			if f.Addr.IsValid() {
				f.Host = ""
			}
			nv.Fallback = &f
		}
		nv.Reals = make([]*Real, len(v.Reals))
		for j, r := range v.Reals {
			nr := *r
			nr.Line = 0
			if nr.Addr.IsValid() {
				nr.Host = ""
			}
			nv.Reals[j] = &nr
		}
		n.Virtuals[i] = &nv
	}
	return &n
}

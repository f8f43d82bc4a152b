package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ldirectord-go/ldirectord/config"
)

// modules is where the running kernel's modules can be seen: /sys/module (loaded and built-in modules
// with parameters) and /lib/modules/<release> (installed ones and modules.builtin).
type modules struct {
	sys, lib string // "" when not present
}

// kernelModules is the running kernel's module directories.
var kernelModules = func() modules {
	m := modules{sys: "/sys/module"}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		m.lib = filepath.Join("/lib/modules", b.String())
	}
	return m
}()

// knows says whether the kernel has the IPVS scheduler name (module ip_vs_<name>): known is false only
// when it can tell that the scheduler is neither loaded, built in nor installed; sure is false when it
// cannot tell (no module tree for the running kernel).
func (m modules) knows(name string) (known, sure bool) {
	mod := "ip_vs_" + name
	if m.sys != "" {
		if _, err := os.Stat(filepath.Join(m.sys, mod)); err == nil {
			return true, true
		}
	}
	if m.lib == "" {
		return true, false
	}
	if _, err := os.Stat(m.lib); err != nil {
		return true, false
	}
	if b, err := os.ReadFile(filepath.Join(m.lib, "modules.builtin")); err == nil &&
		bytes.Contains(b, []byte("/"+mod+".ko\n")) {
		return true, true
	}
	dir := filepath.Join(m.lib, "kernel", "net", "netfilter", "ipvs")
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if _, err := os.Stat(filepath.Join(dir, mod+ext)); err == nil {
			return true, true
		}
	}
	// modules.dep lists every installed module, also those outside kernel/net/netfilter/ipvs.
	if b, err := os.ReadFile(filepath.Join(m.lib, "modules.dep")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			path, _, _ := strings.Cut(l, ":")
			if base := filepath.Base(path); base == mod+".ko" || strings.HasPrefix(base, mod+".ko.") {
				return true, true
			}
		}
		return false, true
	}
	return false, true
}

// unknownSchedulers warns (for -t) about each scheduler= the running kernel does not have, when it can
// tell: the kernel would refuse the virtual service, and the daemon would retry it forever.
func unknownSchedulers(cfg *config.Config, m modules) []*config.Error {
	var warns []*config.Error
	said := map[string]bool{}
	for _, v := range cfg.Virtuals {
		if said[v.Scheduler] {
			continue
		}
		if known, sure := m.knows(v.Scheduler); sure && !known {
			said[v.Scheduler] = true
			warns = append(warns, &config.Error{File: cfg.File, Line: cfg.DirectiveLine(v, "scheduler"), Msg: fmt.Sprintf(
				"scheduler=%s: the running kernel has no IPVS scheduler %q (module ip_vs_%s is neither loaded nor installed)",
				v.Scheduler, v.Scheduler, v.Scheduler)})
		}
	}
	return warns
}

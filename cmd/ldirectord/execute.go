package main

import (
	"fmt"
	"strings"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/internal/daemon"
)

// ownInstance refuses an execute= that names this instance itself: the same CFGNAME means the same pid
// file, so its `start` finds this daemon, and its `stop`, run by this daemon's clean stop, signals this
// daemon again, which abandons the clean stop ("Exit Handler Repeatedly Called"). -t, start and every
// reload refuse it, with the line.
func ownInstance(cfg *config.Config, cfgName string) error {
	var errs config.ErrorList
	for i, e := range cfg.Execute {
		arg := unquote(strings.TrimSpace(e))
		if daemon.CfgName(arg) != cfgName {
			continue
		}
		errs = append(errs, &config.Error{File: cfg.File, Line: cfg.ExecuteLine(i), Msg: fmt.Sprintf(
			"execute=%s names this instance itself (CFGNAME %s, pid file %s): its stop would stop this daemon",
			config.Excerpt(e), cfgName, daemon.PidFile(cfgName))})
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// unquote strips one pair of matching quotes around an execute= value, as the shell does for a value that
// is one quoted word, so that `execute="this.cf"` is recognised as this.cf.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

package supervisor

import (
	"strings"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
)

// misconfiguredWarnings are the warnings for reals whose negotiate check can never pass, whatever the
// server does (checker.Misconfigured: mysql or pgsql without a login or a request), one per real at its
// line, in ldirectord's words: `Must specify a login and request string for MySQL, Oracle and PostgreSQL
// checks. Not adding 10.0.0.2.` (4.12 logs that line, after "Error: ", at every check).
func misconfiguredWarnings(cfg *config.Config) []*config.Error {
	var out []*config.Error
	for _, v := range cfg.Virtuals {
		if v.CheckType != config.CheckNegotiate && v.CheckType != config.CheckCombined {
			continue
		}
		for _, r := range v.Reals {
			t := targetOf(v, r)
			if err := checker.Misconfigured(&t); err != nil {
				line := r.Line
				if line == 0 {
					line = v.Line
				}
				// Printed as "FILE:LINE: warning: Must specify ...": Perl's "Error: " would say it twice.
				out = append(out, &config.Error{File: cfg.File, Line: line, Msg: strings.TrimPrefix(err.Error(), "Error: ")})
			}
		}
	}
	return out
}

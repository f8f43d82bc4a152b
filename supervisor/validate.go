package supervisor

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
)

// Validate checks what only the checkers can judge, so that `ldirectord -t`, start and reload all reject
// it up front instead of every check failing later:
//   - every receive= pattern a check will match must be one Go can run (checker.CompileReceive translates
//     Perl syntax; backreferences and lookaround cannot be translated): an error;
//   - a service whose protocol check is not implemented is checked with a plain TCP connect: a warning,
//     appended to cfg.Warnings, once per service and virtual;
//   - a real whose check can never pass (mysql or pgsql without login or request): a warning per real.
//
// The errors are a config.ErrorList (file:line, in line order); nil when there are none.
func Validate(cfg *config.Config) error {
	var errs config.ErrorList
	for _, v := range cfg.Virtuals {
		if v.CheckType != config.CheckNegotiate && v.CheckType != config.CheckCombined {
			continue
		}
		if !checker.Implemented(v.Service) {
			cfg.Warnings = append(cfg.Warnings, &config.Error{File: cfg.File, Line: v.Line, Msg: fmt.Sprintf(
				"service=%s is checked with a TCP connect only: its protocol check is not implemented", v.Service)})
		}
		if !checker.UsesReceive(v.Service) {
			continue
		}
		bad := func(line int, pattern string) {
			if _, err := checker.CompileReceive(pattern); err != nil {
				if inner := errors.Unwrap(err); inner != nil {
					err = inner // CompileReceive's error repeats the pattern
				}
				// The pattern as written in the config, not Go-quoted: backslashes stay single.
				errs = append(errs, &config.Error{File: cfg.File, Line: line,
					Msg: fmt.Sprintf(`invalid receive string "%s": %v`, config.Excerpt(pattern), err)})
			}
		}
		ownVirtual := false
		for _, r := range v.Reals {
			if r.HasOwnCheck {
				bad(r.Line, r.Receive)
			} else {
				ownVirtual = true
			}
		}
		if ownVirtual || len(v.Reals) == 0 {
			bad(cfg.DirectiveLine(v, "receive"), v.Receive)
		}
	}
	cfg.Warnings = append(cfg.Warnings, misconfiguredWarnings(cfg)...)
	slices.SortStableFunc(cfg.Warnings, func(a, b *config.Error) int { return cmp.Compare(a.Line, b.Line) })
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *config.Error) int { return cmp.Compare(a.Line, b.Line) })
	return errs
}

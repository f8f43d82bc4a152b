package supervisor

import (
	"strings"
	"testing"

	"github.com/ldirectord-go/ldirectord/config"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, text     string
		errs, warnings []string
	}{{
		name: "translatable patterns are fine",
		text: "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tservice=http\n\treceive=\"^OK\\Z\"\n",
	}, {
		name: "a backreference cannot run in Go",
		text: "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tservice=http\n\treceive=\"(a)\\1\"\n",
		errs: []string{`t.cf:4: invalid receive string "(a)\1": backreference \1 is not supported (Go regular expressions have no backreferences)`},
	}, {
		name: "the per-real pattern is checked at its line, the virtual's only when a real uses it",
		text: "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate \"health\", \"(?=x)\"\n\tservice=http\n\treceive=\"(a)\\1\"\n",
		errs: []string{`t.cf:2: invalid receive string "(?=x)": lookahead (?=...) is not supported`},
	}, {
		name: "an unused receive is not judged",
		text: "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tservice=smtp\n\treceive=\"(a)\\1\"\n",
	}, {
		name: "connect checks do not match",
		text: "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=connect\n\tservice=http\n\treceive=\"(a)\\1\"\n",
	}, {
		name: "ldap matches receive against the DN, and is implemented (no warning)",
		text: "virtual=10.0.0.1:389\n\treal=10.0.0.2:389 gate\n\treceive=\"(?<=dc=)x\"\n",
		errs: []string{`t.cf:3: invalid receive string "(?<=dc=)x": lookbehind (?<=...) is not supported`},
	}, {
		name:     "an unimplemented protocol is a warning",
		text:     "virtual=10.0.0.1:3306\n\treal=10.0.0.2:3306 gate\n\tlogin=\"u\"\n\trequest=\"select 1\"\n",
		warnings: []string{"t.cf:1: service=mysql is checked with a TCP connect only: its protocol check is not implemented"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("t.cf", []byte(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Resolve(config.DefaultResolver); err != nil {
				t.Fatal(err)
			}
			err = Validate(cfg)
			var got []string
			if err != nil {
				for _, e := range err.(config.ErrorList) {
					got = append(got, e.Error())
				}
			}
			if len(got) != len(tc.errs) {
				t.Fatalf("errors %q, want %q", got, tc.errs)
			}
			for i := range got {
				if got[i] != tc.errs[i] {
					t.Errorf("error %q, want %q", got[i], tc.errs[i])
				}
			}
			var warns []string
			for _, w := range cfg.Warnings {
				warns = append(warns, w.Error())
			}
			if strings.Join(warns, "\n") != strings.Join(tc.warnings, "\n") {
				t.Errorf("warnings %q, want %q", warns, tc.warnings)
			}
		})
	}
}

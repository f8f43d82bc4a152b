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
		text:     "virtual=10.0.0.1:1521\n\treal=10.0.0.2:1521 gate\n\tlogin=\"u\"\n\trequest=\"select 1\"\n",
		warnings: []string{"t.cf:1: service=oracle is checked with a TCP connect only: its protocol check is not implemented"},
	}, {
		name: "mysql or pgsql without login or request: 4.12's error line, per real",
		text: "virtual=10.0.0.1:3306\n\treal=10.0.0.2:3306 gate\n\treal=10.0.0.3:3306 gate\n\trequest=\"select 1\"\n" +
			"virtual=10.0.0.1:5432\n\treal=10.0.0.2:5432 gate\n\tlogin=\"u\"\n" +
			"virtual=10.0.0.1:5433\n\tservice=pgsql\n\treal=10.0.0.4:5432 gate \"/select 1\" \"x\"\n\treal=10.0.0.5:5432 gate\n\tlogin=\"u\"\n",
		warnings: []string{
			"t.cf:2: Must specify a login and request string for MySQL, Oracle and PostgreSQL checks. Not adding 10.0.0.2.",
			"t.cf:3: Must specify a login and request string for MySQL, Oracle and PostgreSQL checks. Not adding 10.0.0.3.",
			"t.cf:6: Must specify a login and request string for MySQL, Oracle and PostgreSQL checks. Not adding 10.0.0.2.",
			"t.cf:11: Must specify a login and request string for MySQL, Oracle and PostgreSQL checks. Not adding 10.0.0.5.",
		},
	}, {
		name: "mysql and pgsql query (no warning)",
		text: "virtual=10.0.0.1:3306\n\treal=10.0.0.2:3306 gate\n\tlogin=\"u\"\n\trequest=\"select 1\"\n" +
			"virtual=10.0.0.1:5432\n\treal=10.0.0.2:5432 gate\n\tlogin=\"u\"\n\trequest=\"select 1\"\n",
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

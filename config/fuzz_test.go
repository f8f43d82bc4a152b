package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics, every error it returns is an ErrorList of FILE:LINE errors in line
// order, and the dump of a parsed (and resolved) config parses back to an Equal config.
func FuzzParse(f *testing.F) {
	for _, pat := range []string{"../examples/*.cf", "testdata/valid/*.cf"} {
		files, _ := filepath.Glob(pat)
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, tc := range invalidConfigs {
		f.Add([]byte(tc.src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("f.cf", src)
		if err != nil {
			el, ok := err.(ErrorList)
			if !ok || len(el) == 0 || c != nil {
				t.Fatalf("Parse returned %T %v and config %v", err, err, c)
			}
			for i, e := range el {
				if e.File != "f.cf" || e.Line < 0 || (i > 0 && e.Line < el[i-1].Line) {
					t.Fatalf("bad error list: %v", el)
				}
			}
			return
		}
		if err := c.Resolve(testResolver); err != nil {
			if _, ok := err.(ErrorList); !ok {
				t.Fatalf("Resolve returned %T", err)
			}
			return
		}
		n := 0
		for _, v := range c.Virtuals {
			n += len(v.Reals)
		}
		// Ranges make configs of up to a million real servers out of a few bytes; their round trip takes
		// seconds and would stall the fuzzer. Parse and Resolve above still ran on them.
		if n <= 20000 {
			checkRoundTrip(t, c)
		}
	})
}

package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/valid")

// validFiles are the valid test configs and the examples.
func validFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"testdata/valid/*.cf", "../examples/*.cf"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("only %d valid configs found", len(files))
	}
	return files
}

// golden is what a golden file holds: the warnings as comments, then the dump.
func golden(c *Config) []byte {
	var b bytes.Buffer
	for _, w := range c.Warnings {
		b.WriteString("# warning: " + w.Error() + "\n")
	}
	b.Write(Dump(c))
	return b.Bytes()
}

// TestGolden parses every config of testdata/valid, compares warnings and dump with NAME.golden, and
// checks that the dump parses back to the same config.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.cf")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(filepath.Base(f), src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := c.Resolve(testResolver); err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			got := golden(c)
			gf := strings.TrimSuffix(f, ".cf") + ".golden"
			if *update {
				if err := os.WriteFile(gf, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(gf)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", gf, got, want)
			}
			checkRoundTrip(t, c)
		})
	}
}

// checkRoundTrip parses Dump(c) and wants a config Equal to c.
func checkRoundTrip(t *testing.T, c *Config) {
	t.Helper()
	d := Dump(c)
	c2, err := Parse("dump.cf", d)
	if err != nil {
		t.Fatalf("the dump does not parse: %v\n%s", err, d)
	}
	if err := c2.Resolve(testResolver); err != nil {
		t.Fatalf("the dump does not resolve: %v\n%s", err, d)
	}
	if !Equal(c, c2) {
		t.Fatalf("the dump parses to a different config:\n%s\n--- dump of that:\n%s", d, Dump(c2))
	}
}

// TestExamples: every file in examples/ parses and resolves with the system resolver, without warnings.
func TestExamples(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.cf")
	if len(files) < 7 {
		t.Fatalf("only %d examples", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(f, src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := c.Resolve(DefaultResolver); err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			for _, w := range c.Warnings {
				t.Errorf("warning: %v", w)
			}
			if len(c.Virtuals) == 0 {
				t.Errorf("no virtual services")
			}
			checkRoundTrip(t, c)
		})
	}
}

// BenchmarkParseLarge parses and resolves examples/large.cf (654 real servers).
func BenchmarkParseLarge(b *testing.B) {
	src, err := os.ReadFile("../examples/large.cf")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		c, err := Parse("large.cf", src)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Resolve(testResolver); err != nil {
			b.Fatal(err)
		}
	}
}

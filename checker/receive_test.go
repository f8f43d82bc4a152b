package checker

import (
	"testing"
)

func TestCompileReceiveMatchesLikePerl(t *testing.T) {
	for _, tc := range []struct {
		perl  string
		input string
		match bool
	}{
		{"OK", "status: OK\n", true},
		{"^OK$", "OK\n", true}, // Perl's $ matches before a final newline
		{"^OK$", "OK", true},
		{"^OK$", "OK\n\n", false},
		{"OK\\Z", "OK\n", true},
		{"OK\\z", "OK\n", false},
		{"(?i)ok", "OK", true},
		{"a\\hb", "a\tb", true},
		{"a\\Hb", "a b", false},
		{"a\\vb", "a\nb", true},
		{"a\\vb", "a\x0bb", true},
		{"a\\Rb", "a\r\nb", true},
		{"[\\h]x", " x", true},
		{"[$]", "$", true},
		{"\\$5", "$5", true},
		{"a(?#comment)b", "ab", true},
		{"(?'word'\\w+) ok", "all ok", true},
		{"\\Qa.b\\E", "a.b", true},
		{"\\Qa.b\\E", "axb", false},
		{"\\e\\[0m", "\x1b[0m", true},
		{"\\cA", "\x01", true},
		{"a{2}", "aa", true},
		{"<title>.*</title>", "<html><title>Hi</title>", true},
	} {
		re, err := CompileReceive(tc.perl)
		if err != nil {
			t.Errorf("CompileReceive(%q): %v", tc.perl, err)
			continue
		}
		if got := re.MatchString(tc.input); got != tc.match {
			t.Errorf("%q (as %q) on %q: match %v, want %v", tc.perl, re, tc.input, got, tc.match)
		}
	}
}

func TestCompileReceiveRejectsWhatRE2CannotRun(t *testing.T) {
	for _, tc := range []struct{ perl, err string }{
		{`(a)\1`, `receive "(a)\\1": backreference \1 is not supported (Go regular expressions have no backreferences)`},
		{`(?<n>a)\k<n>`, `receive "(?<n>a)\\k<n>": backreference \k is not supported (Go regular expressions have no backreferences)`},
		{`foo(?=bar)`, `receive "foo(?=bar)": lookahead (?=...) is not supported`},
		{`foo(?!bar)`, `receive "foo(?!bar)": lookahead (?!...) is not supported`},
		{`(?<=a)b`, `receive "(?<=a)b": lookbehind (?<=...) is not supported`},
		{`(?<!a)b`, `receive "(?<!a)b": lookbehind (?<!...) is not supported`},
		{`(?>a+)b`, `receive "(?>a+)b": atomic group (?>...) is not supported`},
		{`a++`, `receive "a++": possessive quantifier ++ is not supported (use +)`},
		{`a*+b`, `receive "a*+b": possessive quantifier *+ is not supported (use *)`},
		{`a{2,3}+`, `receive "a{2,3}+": possessive quantifier {2,3}+ is not supported (use {2,3})`},
		{`(?R)`, `receive "(?R)": recursion (?R is not supported`},
		{`\Gx`, `receive "\\Gx": \G is not supported`},
		{`(unclosed`, "receive \"(unclosed\": error parsing regexp: missing closing ): `(unclosed`"},
	} {
		_, err := CompileReceive(tc.perl)
		wantErr(t, err, tc.err)
	}
}

func TestCompileReceiveSharesCompiledPatterns(t *testing.T) {
	a, err := CompileReceive("shared pattern")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := CompileReceive("shared pattern")
	if a != b {
		t.Error("the same pattern was compiled twice")
	}
	if n := testing.AllocsPerRun(100, func() { CompileReceive("shared pattern") }); n != 0 {
		t.Errorf("a cached pattern costs %v allocations, want 0", n)
	}
}

func FuzzCompileReceive(f *testing.F) {
	for _, s := range []string{"OK$", `a\Zb`, `[\h$]`, `(?#x)a`, `\Qa\E`, "a{1,2}+", `(?'n'x)`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		CompileReceive(s) // must not panic
	})
}

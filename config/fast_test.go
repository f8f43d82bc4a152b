package config

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// randText joins n random tokens: random lines made of the pieces the fast paths look at.
func randText(rng *rand.Rand, tokens []string, n int) string {
	var b strings.Builder
	for range rng.IntN(n + 1) {
		b.WriteString(tokens[rng.IntN(len(tokens))])
	}
	return b.String()
}

// TestFastPathsMatchRegexps checks each fast path of fast.go against the regexp it stands for, on random
// text built from the characters and words those regexps care about, and that the fast paths are taken
// often enough for the comparison to mean something.
func TestFastPathsMatchRegexps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200000

	lineTokens := []string{" ", "  ", "    ", "\t", "\v", "\f", "\r", "#", "a", "real=", `"`, "x y", "\xff"}
	indentedHits := 0
	for range n {
		s := randText(rng, lineTokens, 10)
		if got, want := isCommentLine(s), reCommentLine.MatchString(s); got != want {
			t.Fatalf("isCommentLine(%q) = %v, regexp says %v", s, got, want)
		}
		got, ok := indented(s)
		m := reIndented.FindStringSubmatch(strings.ReplaceAll(s, "\t", "    "))
		if ok != (m != nil) || (ok && got != m[1]) {
			t.Fatalf("indented(%q) = %q, %v; regexp says %q", s, got, ok, m)
		}
		if ok {
			indentedHits++
		}
	}

	dirTokens := []string{"real", "real6", "6", "=", " ", "\t", "\v", "x", "==", "1.2.3.4:80 masq"}
	realHits := 0
	for range n {
		s := randText(rng, dirTokens, 6)
		name, val, ok := realDirective(s)
		m := reRealDir.FindStringSubmatch(s)
		if ok != (m != nil) || (ok && (name != m[1] || val != m[3])) {
			t.Fatalf("realDirective(%q) = %q, %q, %v; regexp says %q", s, name, val, ok, m)
		}
		if ok {
			realHits++
		}
	}

	octets := []string{"0", "1", "9", "00", "01", "25", "99", "100", "255", "256", "299", "1000", "0x1", "", "-1", "+1", "1 "}
	seps := []string{".", ".", ".", ".", ".", ".", "..", ":", ""}
	// quad is four random octets, mostly dot-separated, and sometimes more text.
	quad := func() string {
		s := octets[rng.IntN(len(octets))]
		for range 3 {
			s += seps[rng.IntN(len(seps))] + octets[rng.IntN(len(octets))]
		}
		if rng.IntN(8) == 0 {
			s += seps[rng.IntN(len(seps))] + octets[rng.IntN(len(octets))]
		}
		return s
	}
	quadHits := 0
	for range n {
		s := quad()
		a, ok := parseQuad(s)
		if !ok {
			continue
		}
		quadHits++
		want, canonical, wok := parseIPv4Aton(s)
		if !wok || !canonical || want != a {
			t.Fatalf("parseQuad(%q) = %v; parseIPv4Aton says %v, canonical %v, ok %v", s, a, want, canonical, wok)
		}
	}

	realTokens := []string{"1", "10", "127", "255", "256", "0", "00", "99999", ".", ".", ".", ":", ":", "80", " ", " ", "\t",
		"\v", "masq", "gate", "ipip", "masqu", "tunnel", "x", "-", "->", "1234567890", `"`, `"/" "ok"`, "l:3", "#", ","}
	ports := []string{"", "", ":80", ":0", ":65536", ":080", ":", ":8x", ":http", "->10.0.0.9:80", "-", ".5"}
	blanks := []string{" ", " ", "\t", "\v", "\f", "\r", "  \t", ""}
	methods := []string{"masq", "gate", "ipip", "masq", "masqu", "MASQ", "tun", "", "\"masq\""}
	tails := []string{"", "", "1", "0", "0012", "999999999", "1234567890", "2147483647", "2147483648", "99999999999999999999", "1 ", "1x", "-1",
		`1 "/" "ok"`, `"/" "ok"`, "l:3", "1 l:3 u:9", "# c", ",1", "1,"}
	fastHits := 0
	for range 4 * n {
		var s string
		switch rng.IntN(3) {
		case 0:
			s = randText(rng, realTokens, 12)
		default:
			// The common shape, pieces of it damaged at random.
			s = quad() + ports[rng.IntN(len(ports))] + blanks[rng.IntN(len(blanks))] + methods[rng.IntN(len(methods))]
			if tail := tails[rng.IntN(len(tails))]; tail != "" {
				s += blanks[rng.IntN(len(blanks))] + tail
			}
		}
		host, port, fwd, weight, ok := fastReal(s)
		if !ok {
			continue
		}
		fastHits++
		p := &parser{file: "t.cf"}
		want, msg := p.parseRealRegexp(7, s)
		got := realSpec{line: 7, host: host, portText: port, fwd: fwd, weight: weight}
		if msg != "" || len(p.warns) != 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("fastReal(%q) = %+v; parseRealRegexp says %+v, %q, warnings %v", s, got, want, msg, p.warns)
		}
	}
	t.Logf("fast paths taken: indented %d, realDirective %d, parseQuad %d, fastReal %d", indentedHits, realHits, quadHits, fastHits)
	for name, hits := range map[string]int{"indented": indentedHits, "realDirective": realHits, "parseQuad": quadHits, "fastReal": fastHits} {
		if hits < 1000 {
			t.Errorf("%s: fast path taken only %d times", name, hits)
		}
	}
}

// sameParse parses src with and without the fast paths, then resolves both with testResolver, and fails
// unless the two agree exactly: errors, warnings, every field. Configs whose ranges make more than maxN
// real servers are only parsed once (ranges take no fast path; comparing a million reals stalls a fuzzer).
func sameParse(t *testing.T, src []byte, maxN int) {
	t.Helper()
	fast, ferr := parse("f.cf", src, false)
	if fast != nil {
		n := 0
		for _, v := range fast.Virtuals {
			n += len(v.Reals)
		}
		if n > maxN {
			return
		}
	}
	slow, serr := parse("f.cf", src, true)
	if !sameResult(fast, ferr, slow, serr) {
		t.Fatalf("Parse differs with the fast paths:\nfast: %v\n%s\nslow: %v\n%s", ferr, dumpOrNil(fast), serr, dumpOrNil(slow))
	}
	if ferr != nil {
		return
	}
	ferr = fast.Resolve(testResolver)
	serr = slow.Resolve(testResolver)
	if !sameResult(fast, ferr, slow, serr) {
		t.Fatalf("Resolve differs with the fast paths:\nfast: %v\n%s\nslow: %v\n%s", ferr, dumpOrNil(fast), serr, dumpOrNil(slow))
	}
}

func sameResult(a *Config, aerr error, b *Config, berr error) bool {
	if (aerr == nil) != (berr == nil) || (aerr != nil && aerr.Error() != berr.Error()) {
		return false
	}
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	na, nb := *a, *b
	na.state, nb.state = nil, nil
	return reflect.DeepEqual(na, nb)
}

func dumpOrNil(c *Config) string {
	if c == nil {
		return "<nil>"
	}
	return string(golden(c))
}

// FuzzFastPaths: Parse and Resolve give the same result with and without the fast paths of fast.go.
func FuzzFastPaths(f *testing.F) {
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
	f.Add([]byte("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 masq 3\n\treal=10.0.0.3 gate\n\treal=web1:http ipip 1\n" +
		"    real=010.0.0.4:80 masq\n\treal=10.0.0.5:80\tmasq 2 # c\n\treal6=10.0.0.6:80 masq\n\treal=10.0.0.7:80 masq 0012\n" +
		"\treal=10.0.0.8:80 masq 1234567890\n\treal=10.0.0.9:80 masq 1 \"/\" \"ok\"\n\t \n\t\t\n     \n"))
	f.Add([]byte("virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::2]:80 masq 1\n\treal6=10.0.0.1:80 masq 1\n"))
	f.Add([]byte("virtual=1.2.3.4:80\n\treal=1.2.3.4:80 masq 1\nvirtual=www.example.com:http\n\treal=1.2.3.4:80 masq 1\n"))
	f.Add(load10kConfig(400)[:3000])
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 1<<16 {
			return
		}
		sameParse(t, src, 20000)
	})
}

package checker

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// CompileReceive compiles a receive= pattern written for Perl (ldirectord matches it as /receive/) into a
// Go regular expression. Perl constructs whose meaning RE2 can express are translated:
//
//   - `$` (outside a character class) matches at the end or before a final newline, as in Perl, not only
//     at the very end as in RE2; `\Z` likewise;
//   - `\h`, `\H`, `\v`, `\V`, `\R` (horizontal and vertical whitespace, linebreak), `\e`, `\cX`;
//   - `(?#comment)` is removed, `(?'name'...)` becomes a named group.
//
// Constructs RE2 cannot run are rejected with an error naming them: backreferences (`\1`, `\g1`,
// `\k<n>`), lookahead and lookbehind, atomic groups, possessive quantifiers, conditionals, recursion,
// `\G` and `\K`. The daemon calls this at startup and reload so a bad pattern is a config error, not a
// real server that is always down.
func CompileReceive(perl string) (*regexp.Regexp, error) {
	if v, ok := receiveCache.Load(perl); ok {
		return v.(*regexp.Regexp), nil
	}
	src, err := translatePerl(perl)
	if err != nil {
		return nil, fmt.Errorf("receive %q: %w", perl, err)
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("receive %q: %w", perl, err)
	}
	if receiveCount.Add(1) > maxCachedReceives {
		// Patterns only change on reload; a process that reloads thousands of distinct patterns starts over
		// rather than growing without bound.
		receiveCache.Clear()
		receiveCount.Store(1)
	}
	receiveCache.Store(perl, re)
	return re, nil
}

// The compiled patterns are cached by their text, so every target with the same receive shares one
// *regexp.Regexp (safe for concurrent use) and a check never compiles.
var (
	receiveCache sync.Map // string -> *regexp.Regexp
	receiveCount atomic.Int64
)

const maxCachedReceives = 4096

const (
	perlVSpace = `\n\x0B\f\r\x{85}\x{2028}\x{2029}`
	perlHSpace = `\t \x{A0}\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}`
)

// translatePerl rewrites a Perl pattern into RE2 syntax, or says which construct cannot be run.
func translatePerl(p string) (string, error) {
	var b strings.Builder
	inClass := false // inside [...]
	classStart := 0  // index in p just after the '[' (and '^') that opened the class
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			i++
			e := p[i]
			switch {
			case e >= '1' && e <= '9' && !inClass:
				return "", fmt.Errorf(`backreference \%c is not supported (Go regular expressions have no backreferences)`, e)
			case e == 'g' || e == 'k':
				if inClass {
					b.WriteString(`\` + string(e))
					continue
				}
				return "", fmt.Errorf(`backreference \%c is not supported (Go regular expressions have no backreferences)`, e)
			case e == 'G' || e == 'K':
				return "", fmt.Errorf(`\%c is not supported`, e)
			case e == 'Z':
				b.WriteString(`(?:\n?\z)`)
			case e == 'h':
				b.WriteString(wrapClass(perlHSpace, inClass, false))
			case e == 'H':
				b.WriteString(wrapClass(perlHSpace, inClass, true))
			case e == 'v':
				b.WriteString(wrapClass(perlVSpace, inClass, false))
			case e == 'V':
				b.WriteString(wrapClass(perlVSpace, inClass, true))
			case e == 'R' && !inClass:
				b.WriteString(`(?:\r\n|[` + perlVSpace + `])`)
			case e == 'e':
				b.WriteString(`\x1B`)
			case e == 'c' && i+1 < len(p):
				i++
				fmt.Fprintf(&b, `\x{%X}`, (p[i]&^0x20)^0x40)
			case e == 'Q':
				// \Q...\E: quote literally, as RE2 does, but make sure a missing \E does not swallow anything
				// we translated.
				end := strings.Index(p[i+1:], `\E`)
				lit := p[i+1:]
				if end >= 0 {
					lit = p[i+1 : i+1+end]
					i += end + 2
				} else {
					i = len(p)
				}
				b.WriteString(regexp.QuoteMeta(lit))
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		case inClass:
			if c == ']' && i > classStart {
				inClass = false
			} else if c == '[' && i+1 < len(p) && p[i+1] == ':' {
				// POSIX class [:alpha:] inside a bracket expression: copy it whole.
				if end := strings.Index(p[i:], ":]"); end > 0 {
					b.WriteString(p[i : i+end+2])
					i += end + 1
					continue
				}
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			classStart = i + 1
		case c == '$':
			b.WriteString(`(?:\n?$)`)
		case c == '(' && strings.HasPrefix(p[i:], "(?"):
			rest := p[i+2:]
			switch {
			case strings.HasPrefix(rest, "#"):
				end := strings.IndexByte(rest, ')')
				if end < 0 {
					return "", fmt.Errorf("unterminated (?# comment")
				}
				i += 2 + end
			case strings.HasPrefix(rest, "="), strings.HasPrefix(rest, "!"):
				return "", fmt.Errorf("lookahead (?%c...) is not supported", rest[0])
			case strings.HasPrefix(rest, "<="), strings.HasPrefix(rest, "<!"):
				return "", fmt.Errorf("lookbehind (?%s...) is not supported", rest[:2])
			case strings.HasPrefix(rest, ">"):
				return "", fmt.Errorf("atomic group (?>...) is not supported")
			case strings.HasPrefix(rest, "("):
				return "", fmt.Errorf("conditional (?(...)...) is not supported")
			case strings.HasPrefix(rest, "R"), strings.HasPrefix(rest, "&"),
				len(rest) > 0 && (rest[0] >= '0' && rest[0] <= '9' || rest[0] == '+' || rest[0] == '-') && isRecursion(rest):
				return "", fmt.Errorf("recursion (?%s is not supported", rest[:1])
			case strings.HasPrefix(rest, "'"):
				end := strings.IndexByte(rest[1:], '\'')
				if end < 0 {
					return "", fmt.Errorf("unterminated (?' group name")
				}
				b.WriteString("(?P<" + rest[1:1+end] + ">")
				i += 2 + 1 + end
			case strings.HasPrefix(rest, "|"):
				return "", fmt.Errorf("branch reset (?|...) is not supported")
			default:
				b.WriteByte(c)
			}
		case (c == '+') && i > 0 && isQuantifierEnd(p, i-1):
			return "", fmt.Errorf("possessive quantifier %s+ is not supported (use %s)", quantAt(p, i-1), quantAt(p, i-1))
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// wrapClass renders a Perl shorthand class: inside a bracket expression only its members, outside a
// (negated) bracket expression.
func wrapClass(members string, inClass, negate bool) string {
	if inClass {
		if negate {
			// [^...] inside a class cannot be spelled; RE2 has no class subtraction. Rare enough to keep
			// the closest meaning: the class members themselves are left out.
			return ""
		}
		return members
	}
	if negate {
		return "[^" + members + "]"
	}
	return "[" + members + "]"
}

// isRecursion tells (?1), (?+1), (?-1) (recursion) from inline flags such as (?-i).
func isRecursion(rest string) bool {
	j := 0
	if rest[0] == '+' || rest[0] == '-' {
		j = 1
	}
	return j < len(rest) && rest[j] >= '0' && rest[j] <= '9'
}

// isQuantifierEnd reports whether p[i] ends a quantifier (*, +, ?, or {n,m}) that is not escaped, so a
// following '+' makes it possessive.
func isQuantifierEnd(p string, i int) bool {
	if escaped(p, i) {
		return false
	}
	switch p[i] {
	case '*', '+', '?':
		// "a++" is possessive, but in "a+?+" the last + quantifies nothing and RE2 reports it itself.
		return i > 0 && !(p[i] == '?' && isQuantifierEnd(p, i-1)) && !(p[i] == '+' && i > 0 && p[i-1] == '(')
	case '}':
		open := strings.LastIndexByte(p[:i], '{')
		if open < 0 {
			return false
		}
		for _, r := range p[open+1 : i] {
			if (r < '0' || r > '9') && r != ',' {
				return false
			}
		}
		return true
	}
	return false
}

func quantAt(p string, i int) string {
	if p[i] == '}' {
		return p[strings.LastIndexByte(p[:i], '{') : i+1]
	}
	return p[i : i+1]
}

// escaped reports whether p[i] is preceded by an odd number of backslashes.
func escaped(p string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && p[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// receiveOrNil is CompileReceive for the checks where an empty receive means "anything": nil for "".
func receiveOrNil(perl string) (*regexp.Regexp, error) {
	if perl == "" {
		return nil, nil
	}
	return CompileReceive(perl)
}

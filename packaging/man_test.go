package packaging

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ldirectord-go/ldirectord/config"
)

const manPage = root + "/docs/ldirectord.8"

// TestManPageGroff: groff finds nothing to warn about in the man page (-ww: every warning).
func TestManPageGroff(t *testing.T) {
	need(t, "groff", "groff-base")
	out, errOut, code := run(t, "", nil, "groff", "-ww", "-z", "-man", manPage)
	if code != 0 || out != "" || errOut != "" {
		t.Errorf("groff -ww -z -man docs/ldirectord.8: exit %d\n%s%s", code, out, errOut)
	}
}

// TestManPageRenders: man -l renders it, without a warning, with the sections an operator looks for.
func TestManPageRenders(t *testing.T) {
	need(t, "man", "man-db")
	out, errOut, code := run(t, "", []string{"MANWIDTH=100", "MAN_KEEP_FORMATTING=0", "MANROFFOPT=-ww", "LC_ALL=C.UTF-8"},
		"man", "--warnings=w", "-l", "-P", "cat", manPage)
	if code != 0 || errOut != "" {
		t.Fatalf("man -l docs/ldirectord.8: exit %d\n%s", code, errOut)
	}
	text := regexp.MustCompile(".\b").ReplaceAllString(out, "") // overstrike bold and underline
	for _, section := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "CONFIGURATION",
		"GLOBAL DIRECTIVES", "VIRTUAL SERVICES", "SIGNALS", "EXIT STATUS", "FILES", "ENVIRONMENT", "SYSTEMD",
		"DIFFERENCES FROM LDIRECTORD 4.12", "SEE ALSO"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(section) + `$`).MatchString(text) {
			t.Errorf("the rendered man page has no section %s", section)
		}
	}
	if !regexp.MustCompile(`ldirectord\s+-\s+Linux Director Daemon`).MatchString(text) {
		t.Errorf("NAME line missing:\n%s", text[:min(len(text), 400)])
	}
	if !strings.Contains(text, "docs/compat.md") || !strings.Contains(text, "/usr/share/doc/ldirectord/compat.md.gz") {
		t.Error("the differences section does not point to docs/compat.md")
	}
}

// TestManPageDirectives: every directive the parser knows is documented in the man page as an item of its
// own (".TP" then ".BI name= value"), and every directive item of the man page is one the parser knows.
// The parser's directives are found by asking it: each lower-case word of config's source is tried as a
// global and as a per-virtual directive, and it is a directive unless the parser calls it an unknown command.
func TestManPageDirectives(t *testing.T) {
	src, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatal(err)
	}
	known := parserDirectives(t)
	if len(known) < 50 {
		t.Fatalf("found only %d directives in the parser: %v", len(known), known)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\.TP\n\.BI? "?([a-z][a-z0-9]*)=`).FindAllStringSubmatch(string(src), -1) {
		documented[m[1]] = true
	}
	for _, d := range known {
		if !documented[d] {
			t.Errorf("directive %s is not documented in docs/ldirectord.8 (an item .TP, .BI %s= ...)", d, d)
		}
	}
	for d := range documented {
		if !slices.Contains(known, d) {
			t.Errorf("docs/ldirectord.8 documents %s, which the parser does not know", d)
		}
	}
}

// parserDirectives returns the directive names config.Parse accepts, globally or in a virtual section.
func parserDirectives(t *testing.T) []string {
	t.Helper()
	words := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(root, "config", "*.go"))
	fset := token.NewFileSet()
	reWord := regexp.MustCompile(`[a-z][a-z0-9]*`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, _ := strconv.Unquote(lit.Value)
				// A regexp such as ^virtual(6)? names virtual and virtual6.
				for _, v := range []string{strings.ReplaceAll(s, "(6)?", ""), strings.ReplaceAll(s, "(6)?", "6")} {
					for _, w := range reWord.FindAllString(v, -1) {
						words[w] = true
					}
				}
			}
			return true
		})
	}
	var out []string
	for w := range words {
		if isDirective(w) {
			out = append(out, w)
		}
	}
	slices.Sort(out)
	return out
}

// isDirective reports whether the parser takes name as a directive with any of a few values, globally or
// in a virtual section.
func isDirective(name string) bool {
	for _, v := range []string{"x", `"x"`, "1", "yes", "127.0.0.1:80 gate", "[::1]:80 gate"} {
		for _, src := range []string{
			name + "=" + v + "\n",
			"virtual=10.0.0.1:80\n    " + name + "=" + v + "\n",
			"virtual6=[::1]:80\n    " + name + "=" + v + "\n",
		} {
			_, err := config.Parse("t.cf", []byte(src))
			if err == nil {
				return true
			}
			var list config.ErrorList
			if !errors.As(err, &list) {
				return true
			}
			unknown := false
			for _, e := range list {
				if strings.HasPrefix(e.Msg, "Unknown command") {
					unknown = true
				}
			}
			if !unknown {
				return true
			}
		}
	}
	return false
}

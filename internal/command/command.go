// Package command runs the commands of ldirectord.cf (fallbackcommand, callback, execute) as ldirectord 4.12
// did with Perl's system(STRING): a command with shell metacharacters goes to /bin/sh -c, a plain one is
// split on white space and exec'd. Unlike Perl, the words the daemon appends (an address, a state, a
// file name) are always passed as single words: quoted for the shell, never split or expanded.
package command

import (
	"strings"
)

// Shell is the shell Perl uses for system(STRING) (its sh_path).
const Shell = "/bin/sh"

// metachars are the characters that make Perl hand a command to the shell (doio.c, Perl_do_exec3).
const metachars = "$&*(){}[]'\";\\|?<>~`\n"

// isSpace is Perl's isSPACE for ASCII: the characters a plain command is split on.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isWordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// NeedsShell reports whether Perl's system(text) runs text through /bin/sh -c: when, after leading white
// space, it starts with ". " (source) or "exec ", or with a NAME= assignment, or when it contains one of
// $&*(){}[]'";\|?<>~` or a newline that is not its last character. (Perl also execs "cmd 2>&1" directly
// with stderr on stdout; the shell does the same with it, so here it goes to the shell.)
func NeedsShell(text string) bool { return needsShell(text, true, true) }

// needsShell is NeedsShell for text that may have the daemon's words before it (first = false: the
// ". ", "exec " and NAME= forms cannot apply) or after it (last = false: a final newline is inside the
// line, so it is a metacharacter).
func needsShell(text string, first, last bool) bool {
	s := text
	if first {
		s = strings.TrimLeft(s, " \t\n\r\f\v")
		if len(s) >= 2 && s[0] == '.' && isSpace(s[1]) {
			return true
		}
		if len(s) >= 5 && s[:4] == "exec" && isSpace(s[4]) {
			return true
		}
		i := 0
		for i < len(s) && isWordChar(s[i]) {
			i++
		}
		if i < len(s) && s[i] == '=' {
			return true
		}
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(metachars, s[i]) >= 0 {
			return !(s[i] == '\n' && i == len(s)-1 && last)
		}
	}
	return false
}

// Argv is what ldirectord's system("<text> <after...>") runs, as an argv: with shell metacharacters in
// text, /bin/sh -c "<text> 'after1' 'after2' ..."; otherwise text split on white space followed by the
// after words as they are. Only text decides; the after words never make a shell run and are never
// split, globbed or expanded. An empty text gives nil.
func Argv(text string, after ...string) []string {
	return Prefixed(nil, text, after...)
}

// Prefixed is Argv for a command line whose first words come from the daemon, not from the config
// (`<ldirectord> <execute=> start`): before and after are single words, text is judged and split as in
// Argv.
func Prefixed(before []string, text string, after ...string) []string {
	if needsShell(text, len(before) == 0, len(after) == 0) {
		var b strings.Builder
		for _, w := range before {
			b.WriteString(Quote(w))
			b.WriteByte(' ')
		}
		b.WriteString(text)
		for _, w := range after {
			b.WriteByte(' ')
			b.WriteString(Quote(w))
		}
		return []string{Shell, "-c", b.String()}
	}
	words := strings.FieldsFunc(text, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
	if len(before) == 0 && len(words) == 0 {
		return nil
	}
	argv := append(append([]string(nil), before...), words...)
	return append(argv, after...)
}

// Quote returns s as one word for /bin/sh: as it is when it has only characters the shell leaves alone,
// else in single quotes, where nothing is expanded (a single quote in s ends the quotes, is escaped with
// a backslash, and the quotes start again).
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+.,:/@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Text is argv as ldirectord logs it (`system(<text>) failed: ...`): the script of a /bin/sh -c argv,
// else the words joined by spaces.
func Text(argv []string) string {
	if len(argv) == 3 && argv[0] == Shell && argv[1] == "-c" {
		return argv[2]
	}
	return strings.Join(argv, " ")
}

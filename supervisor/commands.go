package supervisor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
)

// fallbackCommands runs `fallbackcommand start|stop <VIP>:<VPORT> <proto>` for each virtual whose state
// changed (reference §5.5): start when no real is up, stop when one is. The first decision after start
// always runs; nothing runs while no real is up and some have not been checked yet.
func (s *Supervisor) fallbackCommands(only map[*config.Virtual]bool) {
	for _, v := range s.virtuals {
		if only != nil && !only[v] {
			continue
		}
		start, ok := fallbackState(v, s.healthOf)
		if !ok {
			continue
		}
		st := "stop"
		if start {
			st = "start"
		}
		id := serviceID(v)
		next := fbcmdState{state: st, cmd: v.FallbackCommand}
		if s.fbcmd[id] == next {
			continue
		}
		s.fbcmd[id] = next
		if v.FallbackCommand == "" {
			continue
		}
		s.queue(command{argv: append(splitCommand(v.FallbackCommand), st, v.String(), v.Protocol.String())})
	}
}

// command is one fallbackcommand or callback run.
type command struct {
	argv []string
	// executable says to run it only if argv[0] is an executable file (the callback, as ldirectord).
	executable bool
}

// queue hands c to runCommands without waiting (owner goroutine).
func (s *Supervisor) queue(c command) {
	select {
	case s.cmds <- c:
	default:
		s.log.Errorf("system(%s) failed: too many commands queued", strings.Join(c.argv, " "))
	}
}

// runCommands runs fallbackcommand and callback invocations one at a time, in order, off the owner
// goroutine, so a slow command delays no check and no kernel update.
func (s *Supervisor) runCommands(ctx context.Context) {
	defer close(s.cmdsDone)
	for c := range s.cmds {
		if c.executable {
			if fi, err := os.Stat(c.argv[0]); err != nil || fi.Mode()&0o111 == 0 || fi.IsDir() {
				continue
			}
		}
		if err := s.opts.Run(ctx, c.argv); err != nil {
			s.log.Errorf("system(%s) failed: %v", strings.Join(c.argv, " "), err)
		}
	}
}

// splitCommand splits a command line into words as a shell would for plain words and quotes, with no
// expansion of any kind: the program is exec'd, never given to a shell.
func splitCommand(s string) []string {
	var out []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

func runCommand(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = time.Second
	return cmd.Run()
}

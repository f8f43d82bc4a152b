package supervisor

import (
	"context"
	"errors"
	"os"

	"github.com/ldirectord-go/ldirectord/config"
	syscmd "github.com/ldirectord-go/ldirectord/internal/command"
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
		s.queue(command{argv: syscmd.Argv(v.FallbackCommand, st, v.String(), v.Protocol.String())})
	}
}

// command is one fallbackcommand or callback run: argv from internal/command (Perl's system(STRING) rule).
type command struct {
	argv []string
	// executable, when set, is a file that must be executable for the command to run: the callback= line
	// as a whole, tested as a file name as ldirectord's `-x $CALLBACK` does.
	executable string
}

// queue hands c to runCommands without waiting (owner goroutine).
func (s *Supervisor) queue(c command) {
	select {
	case s.cmds <- c:
	default:
		s.log.Errorf("system(%s) failed: too many commands queued", syscmd.Text(c.argv))
	}
}

// runCommands runs fallbackcommand and callback invocations one at a time, in order, off the owner
// goroutine, so a slow command delays no check and no kernel update.
func (s *Supervisor) runCommands(ctx context.Context) {
	defer close(s.cmdsDone)
	for c := range s.cmds {
		if c.executable != "" {
			if fi, err := os.Stat(c.executable); err != nil || fi.Mode()&0o111 == 0 || fi.IsDir() {
				continue
			}
		}
		if err := s.opts.Run(ctx, c.argv); err != nil {
			s.log.Errorf("system(%s) failed: %v", syscmd.Text(c.argv), err)
		}
	}
}

func runCommand(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	return syscmd.Run(ctx, argv)
}

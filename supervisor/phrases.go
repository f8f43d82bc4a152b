package supervisor

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// logOp logs a successful operation with ldirectord's phrase (reference §5.3, §6.2) and alerts.
func (s *Supervisor) logOp(op ipvsctl.Op, at time.Time) {
	log := s.logWhen(at)
	id := op.Service.ServiceID
	vi := s.vindex[id]
	switch op.Kind {
	case ipvsctl.OpAddService:
		if vi != nil {
			log.Infof("Added virtual server: %s", vi.v)
		}
		return
	case ipvsctl.OpUpdateService:
		if vi != nil {
			log.Infof("Changed virtual server: %s", vi.v)
		}
		return
	case ipvsctl.OpDeleteService:
		if v := s.retired[id]; v != nil {
			log.Infof("Purged virtual server (start): %s", v)
		} else if vi != nil {
			log.Infof("Purged virtual server (start): %s", vi.v)
		}
		return
	}
	if vi == nil {
		return
	}
	v, d := vi.v, op.Destination
	did := d.DestinationID
	kid := did.String()
	var msg string
	if r := vi.reals[did]; r != nil {
		up := s.healthOf(r) == Up
		cfgText := realText(r)
		switch op.Kind {
		case ipvsctl.OpAddDestination:
			if up {
				msg = fmt.Sprintf("Added real server: %s (%s) (Weight set to %d)", cfgText, v, d.Weight)
			} else {
				msg = fmt.Sprintf("Readd Quiescent real server: %s (%s) (Weight set to 0)", cfgText, v)
			}
		case ipvsctl.OpUpdateDestination:
			if up {
				msg = fmt.Sprintf("Restored real server: %s (%s) (Weight set to %d)", cfgText, v, d.Weight)
			} else {
				msg = fmt.Sprintf("Quiescent real server: %s %s(%s) (Weight set to 0)", kid, mapped(kid, cfgText), v)
			}
		case ipvsctl.OpDeleteDestination:
			msg = fmt.Sprintf("Deleted real server: %s %s(%s)", kid, mapped(kid, cfgText), v)
		}
	} else if vi.hasFB && vi.fallback == did {
		cfgText := v.Fallback.AddrPort().String()
		switch op.Kind {
		case ipvsctl.OpAddDestination:
			msg = fmt.Sprintf("Added fallback server: %s (%s) (Weight set to 1)", cfgText, v)
		case ipvsctl.OpUpdateDestination:
			msg = fmt.Sprintf("Restored fallback server: %s (%s) (Weight set to 1)", cfgText, v)
		case ipvsctl.OpDeleteDestination:
			msg = fmt.Sprintf("Deleted fallback server: %s %s(%s)", kid, mapped(kid, cfgText), v)
		}
	} else if op.Kind == ipvsctl.OpDeleteDestination {
		msg = fmt.Sprintf("Purged real server (start): %s (%s)", kid, v)
	}
	if msg != "" {
		log.Info(msg)
		s.alert(v, msg)
	}
}

// logOpError logs a failed kernel operation: "IPVS: <error>", and for an operation that failed before
// (retries back off, see backoff.go), how many times in a row it has.
func (s *Supervisor) logOpError(err error, times int) {
	if times > 1 {
		s.log.Errorf("IPVS: %v (failed %d times in a row)", err, times)
		return
	}
	s.log.Errorf("IPVS: %v", err)
}

// mapped is ldirectord's "mapped from <RIP:RPORT> " when the kernel stores the entry under another port.
func mapped(kid, cfgText string) string {
	if kid == cfgText {
		return ""
	}
	return "mapped from " + cfgText + " "
}

func (s *Supervisor) alert(v *config.Virtual, msg string) {
	if s.opts.Alert != nil {
		s.opts.Alert.Alert(v, s.phase, msg)
	}
}

// logConfigErrors logs every error of a refused config as ldirectord does (reference §5.7). It reads only
// the published view: the loader calls it.
func (s *Supervisor) logConfigErrors(err error) {
	file := s.view.Load().cfg.File
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			if e.Line > 0 {
				s.log.Errorf("Error [%d] reading file %s at line %d: %s", os.Getpid(), e.File, e.Line, e.Msg)
			} else {
				s.log.Errorf("Error [%d] reading file %s: %s", os.Getpid(), e.File, e.Msg)
			}
		}
	} else {
		s.log.Errorf("Error [%d] reading file %s: %v", os.Getpid(), file, err)
	}
	s.log.Errorf("Configuration file '%s' not reloaded: keeping the running configuration", file)
}

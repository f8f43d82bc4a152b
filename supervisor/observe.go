package supervisor

import (
	"time"

	"github.com/ldirectord-go/ldirectord/config"
)

// checkKind is the kind of u's check for the observer: the service of a negotiate check (http, dns, ...),
// else the checktype (connect, ping, external, combined, ...).
func (k *unitKey) checkKind() string {
	if k.Type == config.CheckNegotiate && k.Target.Service != "" {
		return k.Target.Service
	}
	return k.Type.String()
}

// observeCheck tells the observer that one check of u ran for d and ended with err (check loops).
func (s *Supervisor) observeCheck(u *unit, d time.Duration, err error) {
	if s.opts.Observer != nil {
		s.opts.Observer.Checked(u.key.checkKind(), d, err)
	}
}

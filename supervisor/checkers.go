package supervisor

import (
	"fmt"
	"sync"

	"github.com/ldirectord-go/ldirectord/checker"
	"github.com/ldirectord-go/ldirectord/config"
)

var (
	pingerOnce sync.Once
	pinger     *checker.Pinger
	pingerErr  error
)

// sharedPinger is the process's one ICMP pinger, opened on first use.
func sharedPinger() (checker.Checker, error) {
	pingerOnce.Do(func() { pinger, pingerErr = checker.NewPinger() })
	if pingerErr != nil {
		return nil, pingerErr
	}
	return pinger, nil
}

// NewChecker is the default Options.NewChecker: the check of real r of virtual v by checktype
// (reference §3.7, §4): negotiate by service, connect (a ping on UDP virtuals), ping, external,
// external-perl, on, and checktype=N as checker.NewCombined. checktype=off has no checker.
func NewChecker(v *config.Virtual, r *config.Real) (checker.Checker, error) {
	switch v.CheckType {
	case config.CheckNegotiate:
		c, ok := checker.Negotiate(v.Service)
		if !ok {
			return nil, fmt.Errorf("unknown service %q", v.Service)
		}
		return c, nil
	case config.CheckConnect:
		if v.Protocol == config.UDP {
			return sharedPinger()
		}
		return checker.Connect, nil
	case config.CheckPing:
		return sharedPinger()
	case config.CheckExternal:
		return checker.External, nil
	case config.CheckExternalPerl:
		return checker.ExternalPerl, nil
	case config.CheckOn:
		return checker.On, nil
	case config.CheckOff:
		return checker.Off, nil
	case config.CheckCombined:
		neg, ok := checker.Negotiate(v.Service)
		if !ok {
			return nil, fmt.Errorf("unknown service %q", v.Service)
		}
		return checker.NewCombined(v.CombinedN, checker.Connect, v.CheckTimeout, neg, v.NegotiateTimeout), nil
	}
	return nil, fmt.Errorf("unknown checktype %s", v.CheckType)
}

func usesCheckTimeout(service string) bool { return checker.UsesCheckTimeout(service) }

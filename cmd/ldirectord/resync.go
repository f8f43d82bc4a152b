package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ldirectord-go/ldirectord/supervisor"
)

// ResyncIntervalEnv names the environment variable that sets how often the daemon reads the kernel table
// back and repairs drift (default supervisor.DefaultResyncInterval, 10s): seconds ("5") or a duration
// ("500ms", "2m"), at least MinResyncInterval. It is an environment variable, not a directive, so that
// ldirectord.cf stays readable by the Perl ldirectord.
const ResyncIntervalEnv = "LDIRECTORD_RESYNC_INTERVAL"

// MinResyncInterval is the shortest resync interval ResyncIntervalEnv may ask for.
const MinResyncInterval = 100 * time.Millisecond

// resyncInterval parses the value of ResyncIntervalEnv; "" is the default (0).
func resyncInterval(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseFloat(s, 64)
		if nerr != nil || n > 1e9 {
			return 0, fmt.Errorf("%s=%q: not a number of seconds or a duration such as 10s", ResyncIntervalEnv, s)
		}
		d = time.Duration(n * float64(time.Second))
	}
	if d < MinResyncInterval {
		return 0, fmt.Errorf("%s=%q: shorter than %s", ResyncIntervalEnv, s, MinResyncInterval)
	}
	return d, nil
}

// resyncFromEnv is the resync interval the environment asks for; a bad value is logged and the default
// used.
func (a *app) resyncFromEnv() time.Duration {
	d, err := resyncInterval(os.Getenv(ResyncIntervalEnv))
	if err != nil {
		a.log.Errorf("%v: using %s", err, supervisor.DefaultResyncInterval)
	}
	return d
}

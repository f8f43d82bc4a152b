package daemon

import (
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// NotifySocketEnv names the environment variable through which systemd (Type=notify) passes its
// notification socket.
const NotifySocketEnv = "NOTIFY_SOCKET"

// Notified reports whether $NOTIFY_SOCKET is set: a foreground daemon tells it its state.
func Notified() bool { return os.Getenv(NotifySocketEnv) != "" }

// SystemdMain reports whether this process is the main process of a systemd Type=notify service, which
// must be the daemon itself, in the foreground: $NOTIFY_SOCKET is set and systemd started this very
// process ($SYSTEMD_EXEC_PID, set by systemd 248 and later, is its pid; without it, its parent is PID 1).
// A $NOTIFY_SOCKET inherited from another service's process does not count.
func SystemdMain() bool {
	if !Notified() {
		return false
	}
	if p, ok := os.LookupEnv("SYSTEMD_EXEC_PID"); ok {
		return p == strconv.Itoa(os.Getpid())
	}
	return os.Getppid() == 1
}

// Notify sends state (for example "READY=1" or "STOPPING=1") to systemd's notification socket when
// $NOTIFY_SOCKET is set (Type=notify), and does nothing otherwise. This is sd_notify(3): one datagram on
// the unix socket; a name starting with '@' is in the abstract namespace.
func Notify(state string) error {
	path := os.Getenv(NotifySocketEnv)
	if path == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// Reloading is the state that tells systemd a reload has begun: RELOADING=1 with the time on the
// monotonic clock, which systemd's Type=notify-reload requires and older systemd ignores. READY=1 ends it.
func Reloading() string {
	var ts unix.Timespec
	s := "RELOADING=1"
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
		s += "\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)
	}
	return s
}

// WatchdogInterval is the interval of systemd's watchdog for this process (WatchdogSec=: $WATCHDOG_USEC,
// for the process $WATCHDOG_PID names when it is set), or 0 when there is none or no $NOTIFY_SOCKET to
// feed it through. This is sd_watchdog_enabled(3). The process must send WATCHDOG=1 more often than
// that, or systemd kills it (SIGABRT) and, with Restart=, starts it again.
func WatchdogInterval() time.Duration {
	if !Notified() {
		return 0
	}
	if p, ok := os.LookupEnv("WATCHDOG_PID"); ok && p != strconv.Itoa(os.Getpid()) {
		return 0
	}
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 || us > int64(time.Duration(1<<62)/time.Microsecond) {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

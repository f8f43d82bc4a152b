package daemon

import (
	"net"
	"os"
)

// Notify sends state (for example "READY=1" or "STOPPING=1") to systemd's notification socket when
// $NOTIFY_SOCKET is set (Type=notify), and does nothing otherwise. This is sd_notify(3): one datagram on
// the unix socket; a name starting with '@' is in the abstract namespace.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
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

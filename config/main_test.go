package config

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The ftp/sip login defaults contain the host name; make them the same on every machine.
	hostname = func() string { return "lvs1" }
	os.Exit(m.Run())
}

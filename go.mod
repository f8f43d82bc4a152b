module github.com/ldirectord-go/ldirectord

go 1.26.8

require (
	github.com/fsnotify/fsnotify v1.10.1
	github.com/moby/ipvs v1.1.0
	github.com/sirupsen/logrus v1.10.2
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.49.0
)

require (
	github.com/vishvananda/netlink v1.1.0 // indirect
	github.com/vishvananda/netns v0.0.2 // indirect
)

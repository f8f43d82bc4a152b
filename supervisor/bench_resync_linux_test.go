package supervisor

import (
	"context"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/internal/uml"
	"github.com/ldirectord-go/ldirectord/ipvsctl"
)

// BenchmarkKernelResync10k is BenchmarkResync10k against the kernel through the netlink client, inside
// user-mode Linux (one virtual CPU, every syscall trapped by ptrace: slower than a real kernel). Run with
// -benchtime=1x.
func BenchmarkKernelResync10k(b *testing.B) {
	o := uml.Options{Modules: []string{"ip_vs", "ip_vs_wrr"}, Timeout: 20 * time.Minute}
	uml.RunBenchmark(b, o, func(b *testing.B) {
		c, err := ipvsctl.NewNetlink(context.Background(), ipvsctl.NetlinkOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		benchResync10k(b, c, 30*time.Second)
	})
}

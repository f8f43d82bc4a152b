package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// load10kConfig is the text of a config of 10,000 reals (literal IPs, numeric ports) over nv virtuals,
// the same file as supervisor's BenchmarkReload10k writes.
func load10kConfig(nv int) []byte {
	const n = 10000
	var b strings.Builder
	b.WriteString("# BenchmarkLoad10k\nlogfile=\"local0\"\ncheckinterval=10\nchecktimeout=5\nnegotiatetimeout=5\n")
	for v := range nv {
		fmt.Fprintf(&b, "\nvirtual=10.9.9.%d:80\n\tservice=http\n\trequest=\"/\"\n\treceive=\"ok\"\n\tscheduler=wrr\n", v+1)
		for i := v; i < n; i += nv {
			fmt.Fprintf(&b, "\treal=127.0.0.1:%d masq 1\n", 20000+i)
		}
	}
	return []byte(b.String())
}

// BenchmarkLoad10k is Load (read, Parse, Resolve with DefaultResolver, CheckFiles) of a 10,000-real file:
// 4 virtuals of 2,500 reals, or 1 of 10,000.
func BenchmarkLoad10k(b *testing.B) {
	for _, nv := range []int{4, 1} {
		b.Run(fmt.Sprintf("virtuals=%d", nv), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "ldirectord.cf")
			src := load10kConfig(nv)
			if err := os.WriteFile(path, src, 0o644); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				c, err := Load(path)
				if err != nil {
					b.Fatal(err)
				}
				if n := len(c.Virtuals); n != nv {
					b.Fatalf("%d virtuals, want %d", n, nv)
				}
				if len(c.Warnings) != 0 {
					b.Fatalf("warnings: %v", c.Warnings)
				}
			}
		})
	}
}

package supervisor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
)

// describeChange renders what prepare decided, one line per virtual of the new config: "kept" for a
// running virtual reused as is, else what install is to do with it.
func describeChange(ch *change, running []*config.Virtual) string {
	if ch.full {
		return fmt.Sprintf("full, %d virtuals", len(ch.changed))
	}
	var b strings.Builder
	byV := map[*config.Virtual]*vchange{}
	for _, vc := range ch.changed {
		byV[vc.v] = vc
	}
	for i, v := range ch.virtuals {
		vc := byV[v]
		if vc == nil {
			fmt.Fprintf(&b, "%d %s kept=%v\n", i, v, slices.Contains(running, v))
			continue
		}
		var carried, dropped []string
		for j, p := range vc.prev {
			if p != nil {
				carried = append(carried, fmt.Sprint(j))
				if v.Reals[j] != p {
					carried = append(carried, "NOT-THE-RUNNING-REAL")
				}
			}
		}
		for _, r := range vc.dropped {
			dropped = append(dropped, realText(r))
		}
		fmt.Fprintf(&b, "%d %s new=%v same=%v inPlace=%v changed=%v carried=%v dropped=%v\n", i, v, vc.old == nil,
			vc.same, vc.inPlace, vc.changed, carried, dropped)
	}
	return b.String()
}

// TestPrepare: planning a reload is a pure function of the running config and the loaded one.
func TestPrepare(t *testing.T) {
	base := func() *config.Config {
		v1 := vs("10.9.9.1:80", rs("10.0.0.1:80", masq, 1), rs("10.0.0.2:80", masq, 1), rs("10.0.0.3:80", masq, 1))
		v2 := vs("10.9.9.2:80", rs("10.0.0.1:80", masq, 1), rs("10.0.0.4:80", masq, 1))
		for i, v := range []*config.Virtual{v1, v2} {
			v.Line = 10 * (i + 1)
			for j, r := range v.Reals {
				r.Line = v.Line + j + 1
			}
		}
		return cfgOf(v1, v2)
	}
	for _, c := range []struct {
		name string
		edit func(c *config.Config)
		want string
	}{
		{"nothing changed", func(c *config.Config) {},
			"0 10.9.9.1:80 kept=true\n1 10.9.9.2:80 kept=true\n"},
		{"a real reweighted", func(c *config.Config) { c.Virtuals[0].Reals[1].Weight = 5 },
			"0 10.9.9.1:80 new=false same=true inPlace=true changed=[1] carried=[0 2] dropped=[10.0.0.2:80]\n1 10.9.9.2:80 kept=true\n"},
		{"a virtual moved down a line", func(c *config.Config) { c.Virtuals[1].Line++ },
			"0 10.9.9.1:80 kept=true\n1 10.9.9.2:80 new=false same=true inPlace=true changed=[] carried=[0 1] dropped=[]\n"},
		{"reals swapped", func(c *config.Config) { r := c.Virtuals[1].Reals; r[0], r[1] = r[1], r[0] },
			"0 10.9.9.1:80 kept=true\n1 10.9.9.2:80 new=false same=true inPlace=false changed=[] carried=[0 1] dropped=[]\n"},
		{"a real removed", func(c *config.Config) { c.Virtuals[0].Reals = c.Virtuals[0].Reals[:2] },
			"0 10.9.9.1:80 new=false same=true inPlace=false changed=[] carried=[0 1] dropped=[10.0.0.3:80]\n1 10.9.9.2:80 kept=true\n"},
		{"a virtual setting changed", func(c *config.Config) { c.Virtuals[1].Scheduler = "rr" },
			"0 10.9.9.1:80 kept=true\n1 10.9.9.2:80 new=false same=false inPlace=false changed=[] carried=[] dropped=[]\n"},
		{"a virtual added first", func(c *config.Config) {
			c.Virtuals = append([]*config.Virtual{vs("10.9.9.3:80", rs("10.0.0.1:80", masq, 1))}, c.Virtuals...)
		}, "0 10.9.9.3:80 new=true same=false inPlace=false changed=[] carried=[] dropped=[]\n1 10.9.9.1:80 kept=true\n2 10.9.9.2:80 kept=true\n"},
		{"a virtual removed", func(c *config.Config) { c.Virtuals = c.Virtuals[1:] }, "0 10.9.9.2:80 kept=true\n"},
		{"checkinterval changed", func(c *config.Config) { c.CheckInterval = 2 * time.Second }, "full, 2 virtuals"},
		{"readdquiescent changed", func(c *config.Config) { c.ReaddQuiescent = true }, "full, 2 virtuals"},
		{"a service defined twice", func(c *config.Config) {
			c.Virtuals = append(c.Virtuals, vs("10.9.9.1:80", rs("10.0.0.9:80", masq, 1)))
		}, "full, 3 virtuals"},
	} {
		t.Run(c.name, func(t *testing.T) {
			running := base()
			next := base()
			c.edit(next)
			ch := prepare(7, running, running.Virtuals, next)
			if got := describeChange(ch, running.Virtuals); got != c.want {
				t.Errorf("prepare:\n%s\nwant:\n%s", got, c.want)
			}
			if ch.gen != 7 || ch.cfg != next || ch.base != running {
				t.Errorf("gen %d, cfg %p, base %p: not the inputs", ch.gen, ch.cfg, ch.base)
			}
			if len(ch.virtuals) != len(next.Virtuals) {
				t.Errorf("%d virtuals to run, the config has %d", len(ch.virtuals), len(next.Virtuals))
			}
		})
	}
	t.Run("no running config", func(t *testing.T) {
		cfg := base()
		if got := describeChange(prepare(0, nil, nil, cfg), nil); got != "full, 2 virtuals" {
			t.Errorf("prepare against nothing: %s", got)
		}
	})
}

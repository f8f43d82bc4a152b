package config

// Hidden is what Redacted writes instead of a password or a RADIUS secret.
const Hidden = "********"

// Redacted returns a copy of c fit to be shown (`--dump-config`): every non-empty passwd and secret is
// replaced by Hidden. c is not changed; the copy shares everything else with c, so it is for reading only.
func Redacted(c *Config) *Config {
	n := *c
	n.Virtuals = make([]*Virtual, len(c.Virtuals))
	for i, v := range c.Virtuals {
		nv := *v
		if nv.Passwd != "" {
			nv.Passwd = Hidden
		}
		if nv.Secret != "" {
			nv.Secret = Hidden
		}
		n.Virtuals[i] = &nv
	}
	return &n
}

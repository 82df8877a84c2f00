package spec

import (
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/topolab/topo/privilege"
)

// privilege reads one of a container's privilege keys, as Compose writes
// them: user: NAME, UID, NAME:GROUP or UID:GID; cap_add and cap_drop,
// lists of capabilities (NET_ADMIN, net_admin or CAP_NET_ADMIN, or ALL);
// privileged: true for every capability.
func (p *parser) privilege(c *Container, key string, n *yaml.Node, what string) {
	v := resolve(n)
	switch key {
	case "user":
		c.UserPos = p.pos(n)
		// user: 1000 is a YAML integer; Compose takes it, and so do we.
		if v.Kind != yaml.ScalarNode || (v.ShortTag() != "!!str" && v.ShortTag() != "!!int") {
			p.errorf(n, "%s: user must be a string like \"nobody\", \"1000\" or \"1000:1000\", got %s", what, describe(v))
			return
		}
		if msg := privilege.ParseUser(v.Value); msg != "" {
			p.errorf(n, "%s: user %q %s", what, clip(v.Value), msg)
			return
		}
		c.Privileges.User = v.Value
	case "privileged":
		c.Privileges.Privileged, _ = p.boolean(n, what+": privileged")
	case "cap_add", "cap_drop":
		if v.Kind != yaml.SequenceNode {
			p.errorf(n, "%s: %s must be a list of capabilities like [NET_ADMIN], got %s", what, key, describe(v))
			return
		}
		var caps []string
		for _, item := range v.Content {
			s, ok := p.str(item, fmt.Sprintf("%s: each entry of %s", what, key), `"NET_ADMIN"`)
			if !ok {
				continue
			}
			name, ok := privilege.Normalize(s)
			if !ok {
				p.errorf(item, "%s: %s: %q is not a Linux capability%s: see capabilities(7), or write ALL", what, key, clip(s), didYouMean(name, privilege.Names()))
				continue
			}
			caps = append(caps, name)
		}
		slices.Sort(caps)
		caps = slices.Compact(caps)
		if key == "cap_add" {
			c.Privileges.CapAdd = caps
		} else {
			c.Privileges.CapDrop = caps
		}
	}
}

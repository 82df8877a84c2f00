// Package linux composes the real mechanisms of package machine into the
// Machine topo runs on: netlink (links), iptables and ip6tables, sysctls,
// files and processes, all in the network namespace the process runs in.
package linux

import (
	"context"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/cni"
	"github.com/topolab/topo/machine/files"
	"github.com/topolab/topo/machine/iptables"
	"github.com/topolab/topo/machine/links"
	"github.com/topolab/topo/machine/process"
	"github.com/topolab/topo/machine/sysctl"
	"github.com/topolab/topo/machine/uts"
	"github.com/topolab/topo/names"
)

// Options are how the machine is set up.
type Options struct {
	// Runtime locates topo's runtime files.
	Runtime names.Runtime
	// Prefetch starts reading the firewall at once, in the background
	// (see iptables.New).
	Prefetch bool
}

// New returns the machine of the network namespace the process runs in.
func New(ctx context.Context, o Options) (*machine.Mechanisms, error) {
	l, err := links.New()
	if err != nil {
		return nil, err
	}
	return &machine.Mechanisms{
		Links:     l,
		Firewall:  iptables.New(ctx, goipt.ProtocolIPv4, o.Prefetch),
		Firewall6: iptables.New(ctx, goipt.ProtocolIPv6, o.Prefetch),
		Sysctls:   sysctl.Kernel{},
		Files:     files.Kernel{Runtime: o.Runtime},
		Processes: process.Kernel{Runtime: o.Runtime},
		CNI:       cni.New(o.Runtime),
		UTS:       uts.Kernel{Runtime: o.Runtime},
	}, nil
}

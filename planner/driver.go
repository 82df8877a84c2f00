package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/topolab/topo/op"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// A driver makes the links of one kind of network: the network's own on
// the host (a bridge's), and each container's interface on it, and knows
// them again in the kernel. What all endpoints share (the container end's
// state, its address, the routes through it, its removal) is the
// differ's; a new kind of network is a driver, in a file of its own, and
// an entry of drivers.
type driver interface {
	// network plans the network's own links against have, the host link
	// marked as the network's (nil when there is none).
	network(d *differ, n *Network, have *state.Link)
	// create plans the link of a new endpoint e of container c.
	create(d *differ, ref op.Ref, c *Container, e *Endpoint)
	// repair plans what the driver's part of an intact endpoint needs
	// (a bridge port's state).
	repair(d *differ, ref op.Ref, e *Endpoint, have *observedEndpoint)
	// intact reports whether o, in namespace ns, is e as the file wants
	// it, whole: what changes in place from there, not made again.
	intact(o *observedEndpoint, e *Endpoint, ns string) bool
	// rebuild makes the link of o again as it is (the undo of its
	// removal); ok is false when o is not this driver's or cannot be.
	rebuild(o *observedEndpoint) (o2 op.Operation, ok bool)
	// firewalled says the network has a bridge on the host, which the
	// firewall's rules name: isolation, NAT and publishes.
	firewalled() bool
	// check refuses, at their lines, the options of n (driver_opts) that
	// the driver does not take.
	check(f *spec.File, n *spec.Network) []error
}

// drivers are the network drivers, by the name of a file's driver:; each
// registers itself from its own file.
var drivers = map[string]driver{}

// driverOf is the driver called name ("" is bridge, the default).
func driverOf(name string) driver {
	if d, ok := drivers[name]; ok {
		return d
	}
	return drivers["bridge"]
}

// rebuildOf makes the link of o again, with whichever driver it is of.
func rebuildOf(o *observedEndpoint) (op.Operation, bool) {
	for _, name := range sortedKeys(drivers) {
		if r, ok := drivers[name].rebuild(o); ok {
			return r, true
		}
	}
	return nil, false
}

// checkDrivers refuses, at their lines, networks whose driver: topo does
// not have, and options a driver does not take.
func checkDrivers(f *spec.File) []error {
	var errs []error
	external := map[string]*spec.Network{}
	for _, n := range f.Networks {
		if n.External {
			errs = append(errs, checkExternal(f, n, external)...)
			continue
		}
		if n.Driver != "" {
			if _, ok := drivers[n.Driver]; !ok {
				errs = append(errs, &spec.Error{Path: f.Path, Pos: n.DriverPos, Msg: fmt.Sprintf(
					"network %q: driver %q is not supported: topo has %s; write one of them or leave driver out", n.Name, n.Driver, strings.Join(driverNames(), ", "))})
				continue
			}
		}
		errs = append(errs, driverOf(n.Driver).check(f, n)...)
	}
	return errs
}

func driverNames() []string {
	out := sortedKeys(drivers)
	slices.Sort(out)
	return out
}

// DriverName names the network's driver: "bridge", "macvlan", or
// "external" for a host bridge topo joins.
func (n *Network) DriverName() string {
	switch {
	case n.External:
		return "external"
	case n.Overlay != nil:
		return "overlay" // the bridge driver, with a VXLAN device
	}
	for _, name := range driverNames() {
		if drivers[name] == n.Driver {
			return name
		}
	}
	return "bridge"
}

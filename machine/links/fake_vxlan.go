package links

import (
	"fmt"
	"slices"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// VxlanAdd makes a VXLAN device on the host, a port of its bridge, up.
func (f *Fake) VxlanAdd(o op.VxlanAdd) error {
	ns, unlock, err := f.in("")
	if err != nil {
		return err
	}
	defer unlock()
	if ns.links[o.Link] != nil {
		return fmt.Errorf("link %s: %w", o.Link, machine.ErrExist)
	}
	if m := ns.links[o.Master]; m == nil || m.Kind != "bridge" {
		return fmt.Errorf("master %q: %w", o.Master, machine.ErrNotExist)
	}
	ns.links[o.Link] = &fakeLink{Link: state.Link{Name: o.Link, Kind: "vxlan", Alias: o.Mark.String(), Master: o.Master, Up: true, MTU: mtu(o.MTU),
		VXLAN: &state.VXLAN{VNI: o.VNI, Local: o.Local.String(), Port: o.Port, Proxy: true}}}
	return nil
}

// Fdb adds or deletes a forwarding entry of a VXLAN device; adding one
// that is there changes nothing, as the kernel's append.
func (f *Fake) Fdb(o op.FdbAdd, add bool) error {
	return f.entry(o.Link, op.FdbEntry(o.MAC, o.Dst), add, false, func(v *state.VXLAN) *[]string { return &v.FDB })
}

// Neigh adds or deletes a neighbour entry of a VXLAN device.
func (f *Fake) Neigh(o op.NeighAdd, add bool) error {
	return f.entry(o.Link, op.NeighEntry(o.Addr, o.MAC), add, true, func(v *state.VXLAN) *[]string { return &v.Neigh })
}

// entry adds or removes e in the list of link's that list picks;
// exclusive adds refuse one that is there.
func (f *Fake) entry(link, e string, add, exclusive bool, list func(*state.VXLAN) *[]string) error {
	ns, unlock, err := f.in("")
	if err != nil {
		return err
	}
	defer unlock()
	l := ns.links[link]
	switch {
	case l == nil && !add:
		return nil
	case l == nil:
		return fmt.Errorf("link %q: %w", link, machine.ErrNotExist)
	case l.VXLAN == nil:
		return fmt.Errorf("link %s is a %s: only the fake's VXLAN devices hold entries", link, l.Kind)
	}
	entries := list(l.VXLAN)
	has := slices.Contains(*entries, e)
	switch {
	case add && has && exclusive:
		return fmt.Errorf("%s on %s: %w", e, link, machine.ErrExist)
	case add && !has:
		*entries = append(*entries, e)
		slices.Sort(*entries)
	case !add:
		*entries = slices.DeleteFunc(*entries, func(x string) bool { return x == e })
		if len(*entries) == 0 {
			*entries = nil
		}
	}
	return nil
}

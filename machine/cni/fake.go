package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"sync"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// Fake keeps attachments in memory, as the real cache would hold them:
// an ADD gives the interface the next address of the chain's first
// host-local range, and fails, changing nothing, for a plugin it does not
// have (Plugins) or a namespace that is not there (HasNamespace).
type Fake struct {
	Runtime names.Runtime
	// Plugins are the plugins on the fake's path: Debian's by default.
	Plugins map[string]bool
	// HasNamespace says a namespace exists; nil takes every one.
	HasNamespace func(ns string) bool

	mu    sync.Mutex
	atts  map[string]*state.CNIAttachment // by network, ID and interface
	next  map[string]netip.Addr           // last address given, by network
	broke map[string]string               // CHECK's failures, by attachment
	cache map[string]string               // the cache folder of each, its project's
}

// NewFake is a fake of rt with Debian's plugins.
func NewFake(rt names.Runtime) *Fake {
	ps := map[string]bool{}
	for _, p := range []string{"bandwidth", "bridge", "dhcp", "firewall", "host-device", "host-local", "ipvlan", "loopback", "macvlan", "portmap", "ptp", "sbr", "static", "tuning", "vlan", "vrf"} {
		ps[p] = true
	}
	return &Fake{Runtime: rt, Plugins: ps, atts: map[string]*state.CNIAttachment{}, next: map[string]netip.Addr{}, broke: map[string]string{}, cache: map[string]string{}}
}

func fakeKey(network, id, ifname string) string { return network + "\x00" + id + "\x00" + ifname }

// fakeChain is what the fake reads of a conflist.
type fakeChain struct {
	Plugins []struct {
		Type string `json:"type"`
		IPAM struct {
			Ranges [][]struct {
				Subnet string `json:"subnet"`
			} `json:"ranges"`
		} `json:"ipam"`
	} `json:"plugins"`
}

func (f *Fake) Add(_ context.Context, o op.CNIAdd) error {
	var ch fakeChain
	if err := json.Unmarshal([]byte(o.Config), &ch); err != nil {
		return fmt.Errorf("network %s: the chain's config: %w", o.Network, err)
	}
	if f.HasNamespace != nil && !f.HasNamespace(o.NS) {
		return fmt.Errorf("network %s, container %s: failed to open netns %q: no such file or directory", o.Network, o.Container, o.NS)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fakeKey(o.Network, o.NS, o.IfName)
	if f.atts[k] != nil {
		return fmt.Errorf("network %s, container %s: %s already attached", o.Network, o.Container, o.IfName)
	}
	a := &state.CNIAttachment{Network: o.Network, ID: o.NS, IfName: o.IfName, NetNS: "/run/netns/" + o.NS, Config: o.Config}
	for _, p := range ch.Plugins {
		if !f.Plugins[p.Type] {
			return fmt.Errorf("network %s, container %s: plugin type=%q failed (add): failed to find plugin %q in path %v", o.Network, o.Container, p.Type, p.Type, names.CNIPath)
		}
		if len(p.IPAM.Ranges) > 0 && len(p.IPAM.Ranges[0]) > 0 && len(a.Addrs) == 0 {
			s, err := netip.ParsePrefix(p.IPAM.Ranges[0][0].Subnet)
			if err != nil {
				return fmt.Errorf("network %s, container %s: plugin type=%q failed (add): invalid CIDR %q (CNI error code 7: invalid network config)", o.Network, o.Container, p.Type, p.IPAM.Ranges[0][0].Subnet)
			}
			var addr netip.Addr
			if len(o.IPs) > 0 {
				// host-local's IP= (CNI_ARGS): the address asked for.
				addr = o.IPs[0]
			} else {
				last, ok := f.next[o.Network]
				if !ok {
					last = s.Addr().Next() // the gateway's
				}
				addr = last.Next()
				f.next[o.Network] = addr
			}
			a.Addrs, a.Gateways = []string{netip.PrefixFrom(addr, s.Bits()).String()}, []string{s.Addr().Next().String()}
			a.MAC = names.MAC(addr).String()
			if len(o.MAC) > 0 {
				a.MAC = o.MAC.String()
			}
		}
	}
	f.atts[k], f.cache[k] = a, o.Cache
	return nil
}

func (f *Fake) Del(_ context.Context, o op.CNIDel) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fakeKey(o.Network, o.NS, o.IfName)
	delete(f.atts, k)
	delete(f.broke, k)
	delete(f.cache, k)
	return nil
}

func (f *Fake) Observe(_ context.Context, project string) ([]state.CNIAttachment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []state.CNIAttachment
	for k, a := range f.atts {
		if project != "" && f.cache[k] != f.Runtime.CNI(project) {
			continue
		}
		c := *a
		c.Check = f.broke[k]
		if c.Check == "" && f.HasNamespace != nil && !f.HasNamespace(a.ID) {
			c.Check = fmt.Sprintf("failed to open netns %q: no such file or directory", a.NetNS)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return attKey(out[i]) < attKey(out[j]) })
	return out, nil
}

// Break makes the CHECK of an attachment fail with why, as after its
// interface was deleted by hand.
func (f *Fake) Break(network, ns, ifname, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broke[fakeKey(network, ns, ifname)] = why
}

// Dump lists the attachments, one a line, sorted.
func (f *Fake) Dump() []string {
	obs, _ := f.Observe(context.Background(), "")
	var out []string
	for _, a := range obs {
		out = append(out, fmt.Sprintf("cni %s %s %s %v", a.Network, a.ID, a.IfName, a.Addrs))
	}
	return out
}

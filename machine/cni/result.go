package cni

import (
	"encoding/json"
	"os"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
)

// cacheEntry is what topo reads of libcni's cache of an ADD without
// libcni: the result's interfaces and addresses, in any CNI version's
// shape. The resolver reads the cache so, and hosts files are filled so.
type cacheEntry struct {
	Result struct {
		Interfaces []struct {
			Name    string `json:"name"`
			Sandbox string `json:"sandbox"`
		} `json:"interfaces"`
		IPs []struct {
			Address   string `json:"address"`
			Interface *int   `json:"interface"`
		} `json:"ips"`
	} `json:"result"`
}

// ResultAddrs are the addresses (CIDR) of interface ifname in the cache
// entry b: the result's addresses on that interface of the container
// (or on none named).
func ResultAddrs(b []byte, ifname string) []string {
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil {
		return nil
	}
	idx := -1
	for i, in := range e.Result.Interfaces {
		if in.Name == ifname && in.Sandbox != "" {
			idx = i
		}
	}
	var out []string
	for _, ip := range e.Result.IPs {
		if ip.Interface != nil && idx >= 0 && *ip.Interface != idx {
			continue
		}
		out = append(out, ip.Address)
	}
	return out
}

// Addrs reads an attachment's addresses from its cache entry.
func (k *Kernel) Addrs(l op.CNIHostsLine) []string {
	b, err := os.ReadFile(names.CNIResult(l.Cache, l.Network, l.ID, l.IfName))
	if err != nil {
		return nil
	}
	return ResultAddrs(b, l.IfName)
}

// Addrs are the fake attachment's addresses.
func (f *Fake) Addrs(l op.CNIHostsLine) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.atts[fakeKey(l.Network, l.ID, l.IfName)]; a != nil {
		return a.Addrs
	}
	return nil
}

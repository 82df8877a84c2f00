// Package resolver is topo's embedded DNS server: it answers, at
// 127.0.0.11:53 inside every container namespace of a project, the names of
// the containers that share a network with the asker, and forwards other
// names to the host's upstream resolvers, as Docker's embedded DNS does for
// user-defined networks.
package resolver

import (
	"net/netip"
	"strings"

	"github.com/topolab/topo/resolver/records"
)

// Store answers name and address lookups for one records document. It is
// immutable once built: a reload builds a new one and swaps it in, so that
// queries in flight never see half of either.
type Store struct {
	askers map[string]*asker
}

// asker is what one namespace may see.
type asker struct {
	nets []*netIndex
	// forward is false when every network of the namespace is internal
	// (or it has none): such a container reaches nothing outside, and its
	// names stay inside too.
	forward bool
	// upstreams are the namespace's own (records.Namespace.Upstreams);
	// nil for the host's.
	upstreams []string
}

// netIndex is one network's names and addresses: IPv4 ones, and
// IPv6 ones (byName6) of the members that have them.
type netIndex struct {
	name    string
	byName  map[string][]netip.Addr
	byName6 map[string][]netip.Addr
	// ptr is the name an address answers to in reverse: CONTAINER.NETWORK.
	ptr map[netip.Addr]string
}

// NewStore indexes a document.
func NewStore(d *records.Document) *Store {
	nets := map[string]*netIndex{}
	internal := map[string]bool{}
	for _, n := range d.Networks {
		ix := &netIndex{name: strings.ToLower(n.Name), byName: map[string][]netip.Addr{}, byName6: map[string][]netip.Addr{}, ptr: map[netip.Addr]string{}}
		for _, m := range n.Members {
			if !m.Addr.IsValid() && !m.Addr6.IsValid() {
				continue // a CNI attachment without a result yet
			}
			seen := map[string]bool{}
			for _, name := range m.Names {
				name = canonical(name)
				if name == "" || seen[name] {
					continue
				}
				seen[name] = true
				// One family alone on an IPv6-only network.
				if m.Addr.IsValid() {
					ix.byName[name] = appendUnique(ix.byName[name], m.Addr)
				}
				if m.Addr6.IsValid() {
					ix.byName6[name] = appendUnique(ix.byName6[name], m.Addr6)
				}
			}
			for _, a := range []netip.Addr{m.Addr, m.Addr6} {
				if a.IsValid() {
					ix.ptr[a] = canonical(m.Container) + "." + ix.name + "."
				}
			}
		}
		nets[n.Name] = ix
		internal[n.Name] = n.Internal
	}
	s := &Store{askers: map[string]*asker{}}
	for _, ns := range d.Namespaces {
		a := &asker{upstreams: ns.Upstreams}
		for _, n := range ns.Networks {
			if ix := nets[n]; ix != nil {
				a.nets = append(a.nets, ix)
				if !internal[n] {
					a.forward = true
				}
			}
		}
		s.askers[ns.Name] = a
	}
	return s
}

func appendUnique(list []netip.Addr, a netip.Addr) []netip.Addr {
	for _, x := range list {
		if x == a {
			return list
		}
	}
	return append(list, a)
}

// canonical lower-cases an ASCII name and drops its trailing dot. It
// allocates only when the name has upper-case letters.
func canonical(name string) string {
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// Lookup returns the IPv4 addresses (IPv6 with v6) that name
// (canonical) has for the namespace ns, and whether ns knows the name at
// all. A name is looked up in each network the asker shares, then, as
// NAME.NETWORK, in NETWORK.
func (s *Store) Lookup(ns, name string, v6 bool) ([]netip.Addr, bool) {
	a := s.askers[ns]
	if a == nil {
		return nil, false
	}
	var out []netip.Addr
	found := false
	collect := func(ix *netIndex, name string) {
		_, ok4 := ix.byName[name]
		if _, ok6 := ix.byName6[name]; !ok4 && !ok6 {
			return // a name of an IPv6-only network has AAAA alone
		}
		found = true
		addrs := ix.byName[name]
		if v6 {
			addrs = ix.byName6[name]
		}
		for _, x := range addrs {
			out = appendUnique(out, x)
		}
	}
	for _, ix := range a.nets {
		collect(ix, name)
	}
	if found {
		return out, true
	}
	for _, ix := range a.nets {
		if prefix, ok := strings.CutSuffix(name, "."+ix.name); ok {
			collect(ix, prefix)
		}
	}
	return out, found
}

// Reverse returns the name of the container holding addr on a network ns
// shares, as CONTAINER.NETWORK., or "".
func (s *Store) Reverse(ns string, addr netip.Addr) string {
	a := s.askers[ns]
	if a == nil {
		return ""
	}
	for _, ix := range a.nets {
		if name, ok := ix.ptr[addr]; ok {
			return name
		}
	}
	return ""
}

// Forwards reports whether ns may have other names forwarded upstream.
func (s *Store) Forwards(ns string) bool {
	a := s.askers[ns]
	return a != nil && a.forward
}

// Upstreams are where ns's other names are forwarded when it has servers
// of its own; nil means the host's.
func (s *Store) Upstreams(ns string) []string {
	if a := s.askers[ns]; a != nil {
		return a.upstreams
	}
	return nil
}

// Serves reports whether ns is a namespace of the document.
func (s *Store) Serves(ns string) bool { return s.askers[ns] != nil }

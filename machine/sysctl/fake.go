package sysctl

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
)

// Fake is an in-memory Sysctls. A key of an interface exists only while
// the interface does (HasLink says), reads 0 until set, and goes with it
// (LinkGone).
type Fake struct {
	mu   sync.Mutex
	keys map[string]string // of the host, and of named namespaces as NS/KEY
	// HasLink, when set, says whether an interface exists.
	HasLink func(ns, link string) bool
}

var _ machine.Sysctls = (*Fake)(nil)

// NewFake returns a fake holding the host's keys (which may be nil), with
// forwarding off unless they say otherwise.
func NewFake(keys map[string]string) *Fake {
	f := &Fake{keys: map[string]string{names.IPForward: "0", names.IPv6Forward: "0"}}
	for k, v := range keys {
		f.keys[k] = v
	}
	return f
}

func key(ns, k string) string {
	if ns == "" {
		return k
	}
	return ns + "/" + k
}

// linkKey says whether k is a key of an interface that exists; ok is
// false for other keys.
func (f *Fake) linkKey(ns, k string) (exists, ok bool) {
	link, ok := names.SysctlLink(k)
	if !ok || link == "all" || link == "default" {
		return false, false
	}
	return f.HasLink == nil || f.HasLink(ns, link), true
}

// Set writes a key; an interface's needs its interface.
func (f *Fake) Set(ns, k, value string) error {
	exists, isLink := f.linkKey(ns, k)
	if isLink && !exists {
		return fmt.Errorf("sysctl %s: %w", k, machine.ErrNotExist)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if isLink && value == "0" {
		// The kernel's default: kept as no entry, as for a new link.
		delete(f.keys, key(ns, k))
		return nil
	}
	f.keys[key(ns, k)] = value
	return nil
}

// Get reads a key of the host.
func (f *Fake) Get(k string) (string, bool, error) {
	exists, isLink := f.linkKey("", k)
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.keys[k]
	if isLink && !ok && exists {
		return "0", true, nil
	}
	return v, ok, nil
}

// GetIn reads keys of a named namespace; one never set reads as a new
// namespace's (Fresh).
func (f *Fake) GetIn(ns string, keys []string) (map[string]string, error) {
	out, _ := f.Fresh(keys)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		if v, ok := f.keys[key(ns, k)]; ok {
			out[k] = v
		}
	}
	return out, nil
}

// Fresh reads keys as a new namespace has them: 0 each.
func (f *Fake) Fresh(keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = "0"
	}
	return out, nil
}

// NetnsGone drops the keys of a namespace that is gone.
func (f *Fake) NetnsGone(ns string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.keys {
		if strings.HasPrefix(k, ns+"/") {
			delete(f.keys, k)
		}
	}
}

// LinkGone drops the keys of an interface that is gone.
func (f *Fake) LinkGone(ns, link string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.keys {
		kns, name, found := strings.Cut(k, "/")
		if !found {
			kns, name = "", k
		}
		if l, ok := names.SysctlLink(name); ok && l == link && kns == ns {
			delete(f.keys, k)
		}
	}
}

// Dump renders the keys as sorted text, one a line.
func (f *Fake) Dump(b *strings.Builder) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(f.keys)) {
		fmt.Fprintf(b, "sysctl %s=%s\n", k, f.keys[k])
	}
}

package uts

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// Fake is an in-memory UTSNamespaces: the names each path holds.
type Fake struct {
	Runtime names.Runtime
	mu      sync.Mutex
	ns      map[string][2]string // hostname, domainname by path
}

var _ machine.UTSNamespaces = (*Fake)(nil)

// NewFake returns a fake holding initial (which may be nil).
func NewFake(rt names.Runtime, initial []state.UTS) *Fake {
	f := &Fake{Runtime: rt, ns: map[string][2]string{}}
	for _, u := range initial {
		if u.Mounted {
			f.ns[u.Path] = [2]string{u.Hostname, u.Domainname}
		}
	}
	return f
}

// Add makes one: ErrExist when path holds one.
func (f *Fake) Add(p, hostname, domainname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ns[p]; ok {
		return fmt.Errorf("UTS namespace %s: %w", p, machine.ErrExist)
	}
	f.ns[p] = [2]string{hostname, domainname}
	return nil
}

// Set changes the names at path: ErrNotExist when there is none.
func (f *Fake) Set(p, hostname, domainname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ns[p]; !ok {
		return fmt.Errorf("UTS namespace %s: %w", p, machine.ErrNotExist)
	}
	f.ns[p] = [2]string{hostname, domainname}
	return nil
}

// Del removes one; a missing one is success.
func (f *Fake) Del(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ns, p)
	return nil
}

// Has reports whether path holds a UTS namespace.
func (f *Fake) Has(p string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ns[p]
	return ok
}

// Observe lists project's.
func (f *Fake) Observe(project string) ([]state.UTS, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.Runtime.UTSDir(project) + "/"
	var out []state.UTS
	for p, n := range f.ns {
		if strings.HasPrefix(p, dir) {
			out = append(out, state.UTS{NS: path.Base(p), Path: p, Hostname: n[0], Domainname: n[1], Mounted: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Dump writes one line per namespace, sorted.
func (f *Fake) Dump(b *strings.Builder) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for p, n := range f.ns {
		lines = append(lines, fmt.Sprintf("uts %s %s %s\n", p, n[0], n[1]))
	}
	sort.Strings(lines)
	for _, l := range lines {
		b.WriteString(l)
	}
}

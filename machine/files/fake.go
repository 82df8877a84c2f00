package files

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
)

// Fake is an in-memory Files: the files by path, refusing those that are
// neither a file of /etc/netns/NS/ nor a record of a host sysctl.
type Fake struct {
	Runtime names.Runtime
	// Servers are the host's resolv.conf nameservers.
	Servers []string
	// ID is the host's machine ID.
	ID    string
	mu    sync.Mutex
	files map[string]string
}

var _ machine.Files = (*Fake)(nil)

// NewFake returns a fake with no files.
func NewFake(rt names.Runtime, nameservers []string) *Fake {
	return &Fake{Runtime: rt, Servers: nameservers, files: map[string]string{}}
}

func (f *Fake) check(ns, p string) error {
	if names.IsNetnsFile(ns, p) || ns == "" && (f.Runtime.IsSysctlRecord(p, names.HostSysctls...) || f.Runtime.IsNetnsSysctls(p)) {
		return nil
	}
	return fmt.Errorf("file %s: not a resolv.conf or hosts of %s/%s/", p, names.NetnsEtcDir, ns)
}

// Write writes a file.
func (f *Fake) Write(o op.FileWrite) error {
	if err := f.check(o.NS, o.Path); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[o.Path] = o.Content
	return nil
}

// Remove removes a file; a missing one is success.
func (f *Fake) Remove(o op.FileDel) error {
	if err := f.check(o.NS, o.Path); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, o.Path)
	return nil
}

// ReadNetns reads a namespace's files.
func (f *Fake) ReadNetns(ns string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out map[string]string
	for _, name := range names.NetnsFiles {
		p := names.NetnsFile(ns, name)
		if c, ok := f.files[p]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[p] = c
		}
	}
	return out, nil
}

// ReadRecord reads a sysctl's record.
func (f *Fake) ReadRecord(key string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.files[f.Runtime.SysctlRecord(key)]
	return strings.TrimSpace(v), ok, nil
}

// ReadNetnsSysctls reads a namespace's sysctl record.
func (f *Fake) ReadNetnsSysctls(project, ns string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.files[f.Runtime.NetnsSysctls(project, ns)], nil
}

// MachineID is ID.
func (f *Fake) MachineID() string { return f.ID }

// Nameservers are Servers.
func (f *Fake) Nameservers() []string { return slices.Clone(f.Servers) }

// Dump renders the files as sorted text, one a line.
func (f *Fake) Dump(b *strings.Builder) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range slices.Sorted(maps.Keys(f.files)) {
		fmt.Fprintf(b, "file %s %q\n", p, f.files[p])
	}
}

package planner

import (
	"maps"
	"slices"
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
)

// sysctls plans a container's net.* sysctls in its namespace, and the
// record of the keys topo set there (names.Runtime.NetnsSysctls), which
// goes first: a key the file drops is put back to a new namespace's
// value, which a namespace topo made had before topo set it. The undo of
// setting a key is the value the namespace has: observed for a recorded
// key, a new namespace's for one topo has not set.
func (d *differ) sysctls(c *Container) {
	ref := op.Container(c.Name)
	var now, before map[string]string
	if ns := d.ownNS[c.NS]; ns != nil {
		now, before = ns.Sysctls, ns.SysctlsBefore
	}
	path := d.rt.NetnsSysctls(d.project, c.NS)
	wantKeys := map[string]bool{}
	var needs []op.Key
	for _, s := range c.Sysctls {
		wantKeys[s.Key] = true
		v, recorded := now[s.Key]
		switch {
		case recorded && sameSysctl(v, s.Value):
			continue
		case recorded:
			d.add(change(ref, op.Sysctl{NS: c.NS, Key: s.Key, Value: s.Value}, op.Sysctl{NS: c.NS, Key: s.Key, Value: v}))
		default:
			st := change(ref, op.Sysctl{NS: c.NS, Key: s.Key, Value: s.Value}, op.SysctlReset{NS: c.NS, Key: s.Key})
			st.Needs = []op.Key{op.FileKey(path)}
			d.add(st)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(now)) {
		if wantKeys[k] {
			continue
		}
		if b, ok := before[k]; ok && !sameSysctl(b, now[k]) {
			st := change(ref, op.Sysctl{NS: c.NS, Key: k, Value: b}, op.Sysctl{NS: c.NS, Key: k, Value: now[k]})
			needs = append(needs, op.SysctlKey(c.NS, k))
			d.add(st)
		}
	}
	d.sysctlRecord(ref, c.NS, now, slices.Sorted(maps.Keys(wantKeys)), needs)
}

// sysctlRecord makes the namespace's record name the keys want: written
// before they are set, removed (or shortened) after the keys it drops
// are put back (needs).
func (d *differ) sysctlRecord(ref op.Ref, ns string, now map[string]string, want []string, needs []op.Key) {
	path := d.rt.NetnsSysctls(d.project, ns)
	had := slices.Sorted(maps.Keys(now))
	if slices.Equal(had, want) {
		return
	}
	old := op.FileWrite{Path: path, Content: recordOf(had)}
	switch {
	case len(want) == 0:
		st := destroy(ref, op.FileDel{Path: path}, old)
		st.Needs = needs
		d.add(st)
	case len(had) == 0:
		d.add(create(ref, op.FileWrite{Path: path, Content: recordOf(want)}, op.FileDel{Path: path}))
	default:
		// Keys dropped and added at once: the record names both until
		// both are done, then what the file wants.
		union := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(had), want...))))
		if !slices.Equal(union, had) {
			d.add(change(ref, op.FileWrite{Path: path, Content: recordOf(union)}, old))
		}
		if !slices.Equal(union, want) {
			st := change(ref, op.FileWrite{Path: path, Content: recordOf(want)}, op.FileWrite{Path: path, Content: recordOf(union)})
			st.Needs = needs
			d.add(st)
		}
	}
}

func recordOf(keys []string) string { return names.FormatSysctlRecord(keys) }

// sysctlRecordsGone removes the sysctl records of the namespaces that go.
func (d *differ) sysctlRecordsGone() {
	for _, name := range sortedKeys(d.ownNS) {
		ns := d.ownNS[name]
		if d.wantNS[name] != nil || ns.Sysctls == nil {
			continue
		}
		mk, _ := names.ParseMark(ns.Mark)
		path := d.rt.NetnsSysctls(d.project, name)
		d.add(destroy(op.Container(mk.Name), op.FileDel{Path: path}, op.FileWrite{Path: path, Content: recordOf(slices.Sorted(maps.Keys(ns.Sysctls)))}))
	}
}

// sameSysctl says whether two values of a key are the same: the kernel
// writes lists (net.ipv4.tcp_rmem) with tabs, a file with blanks.
func sameSysctl(a, b string) bool {
	return strings.Join(strings.Fields(a), " ") == strings.Join(strings.Fields(b), " ")
}

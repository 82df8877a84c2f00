package machine

import (
	"fmt"
	"maps"
	"slices"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// readNetnsSysctls reads, in the namespace, the keys its record names;
// nil when it has no record.
//
// Equivalent to: `cat /run/topo/PROJECT/NS.sysctls; ip netns exec NS sysctl -n KEY...`
func (m *Mechanisms) readNetnsSysctls(project, ns string) (map[string]string, error) {
	rec, err := m.Files.ReadNetnsSysctls(project, ns)
	if err != nil || rec == "" {
		return nil, err
	}
	keys := names.ParseSysctlRecord(rec)
	if len(keys) == 0 {
		return nil, nil
	}
	now, err := m.Sysctls.GetIn(ns, keys)
	if err != nil {
		return nil, fmt.Errorf("read the sysctls of namespace %s: %w", ns, err)
	}
	if now == nil {
		now = map[string]string{}
	}
	return now, nil
}

// attachNetnsSysctls puts the values readNetnsSysctls read into the
// snapshot's namespaces, with a new namespace's: read once for all keys.
//
// Equivalent to: `unshare -n sysctl -n KEY...`
func (m *Mechanisms) attachNetnsSysctls(snap *state.Snapshot, by map[string]map[string]string) error {
	if len(by) == 0 {
		return nil
	}
	all := map[string]bool{}
	for _, now := range by {
		for k := range now {
			all[k] = true
		}
	}
	fresh, err := m.Sysctls.Fresh(slices.Sorted(maps.Keys(all)))
	if err != nil {
		return fmt.Errorf("read a new namespace's sysctls: %w", err)
	}
	for i := range snap.Namespaces {
		ns := &snap.Namespaces[i]
		now := by[ns.Name]
		if now == nil {
			continue
		}
		ns.Sysctls, ns.SysctlsBefore = now, map[string]string{}
		for k := range now {
			if v, ok := fresh[k]; ok {
				ns.SysctlsBefore[k] = v
			}
		}
	}
	return nil
}

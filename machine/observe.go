package machine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// Observe returns the host namespace in full, every named namespace by
// name, and the full content of those whose lo carries a mark of project,
// with the firewall, the project's files, commands and resolver, the
// host's sysctls topo sets and their records, its ports and nameservers.
// For project "" it stops before the project's commands and resolver.
func (m *Mechanisms) Observe(ctx context.Context, project string) (*state.Snapshot, error) {
	// Never show links that the kernel is still removing for topo.
	m.Links.Settle(ctx)
	// The firewalls may be read by processes of their own that mostly
	// wait on the kernel: they are read while the namespaces are, both
	// families at once.
	type fwResult struct {
		fw  *state.Firewall
		err error
	}
	readFirewall := func(fw Firewall) <-chan fwResult {
		c := make(chan fwResult, 1)
		go func() {
			f, err := fw.Observe(ctx)
			c <- fwResult{f, err}
		}()
		return c
	}
	fwc, fw6c := readFirewall(m.Firewall), readFirewall(m.Firewall6)
	snap := &state.Snapshot{}
	var mu sync.Mutex
	// The reader that finds a namespace to be the project's reads its
	// files: read after all namespaces, 1000 files took a down at N=500
	// 12-17 ms more before its first deletion.
	sysctls := map[string]map[string]string{}
	own := func(ns string) error {
		sc, err := m.readNetnsSysctls(project, ns)
		if err != nil {
			return err
		}
		files, err := m.Files.ReadNetns(ns)
		if err != nil {
			return err
		}
		mu.Lock()
		if sc != nil {
			sysctls[ns] = sc
		}
		if len(files) == 0 {
			mu.Unlock()
			return nil
		}
		defer mu.Unlock()
		if snap.Files == nil {
			snap.Files = map[string]string{}
		}
		for p, c := range files {
			snap.Files[p] = c
		}
		return nil
	}
	err := m.Links.Observe(ctx, project, snap, own)
	fwr, fw6r := <-fwc, <-fw6c
	if err != nil {
		return nil, err
	}
	if fwr.err != nil {
		return nil, fwr.err
	}
	if fw6r.err != nil {
		return nil, fmt.Errorf("ip6tables: %w", fw6r.err)
	}
	snap.Firewall, snap.Firewall6 = fwr.fw, fw6r.fw
	if err := m.attachNetnsSysctls(snap, sysctls); err != nil {
		return nil, err
	}
	netem := m.Links.Netem()
	snap.Netem = &netem
	if err := m.observeSysctls(project, snap); err != nil {
		return nil, err
	}
	if project == "" {
		// The host alone (topo ls finds projects by its links' marks).
		return snap, nil
	}
	if snap.Processes, err = m.Processes.Observe(project); err != nil {
		return nil, err
	}
	if snap.UTS, err = m.UTS.Observe(project); err != nil {
		return nil, fmt.Errorf("observe the UTS namespaces of project %s: %w", project, err)
	}
	if snap.Ports, err = m.observePorts(); err != nil {
		return nil, fmt.Errorf("read host ports: %w", err)
	}
	if m.CNI != nil {
		if snap.CNI, err = m.CNI.Observe(ctx, project); err != nil {
			return nil, err
		}
	}
	snap.Nameservers = m.Files.Nameservers()
	snap.MachineID = m.Files.MachineID()
	if snap.Resolver, err = m.Processes.ObserveResolver(project); err != nil {
		return nil, fmt.Errorf("observe DNS resolver of project %s: %w", project, err)
	}
	return snap, nil
}

// observeSysctls adds to snap the host sysctls topo sets, with their
// records from before topo, and route_localnet and disable_ipv6 of the
// project's bridges.
func (m *Mechanisms) observeSysctls(project string, snap *state.Snapshot) error {
	set := func(key, v string) {
		if snap.Sysctls == nil {
			snap.Sysctls = map[string]string{}
		}
		snap.Sysctls[key] = v
	}
	for _, key := range names.HostSysctls {
		v, ok, err := m.Sysctls.Get(key)
		if err != nil {
			return fmt.Errorf("read sysctl %s: %w", key, err)
		}
		if !ok {
			continue
		}
		set(key, v)
		before, ok, err := m.Files.ReadRecord(key)
		if err != nil {
			return fmt.Errorf("read the record of sysctl %s: %w", key, err)
		}
		if ok {
			if snap.SysctlsBefore == nil {
				snap.SysctlsBefore = map[string]string{}
			}
			snap.SysctlsBefore[key] = before
		}
	}
	for _, l := range snap.Host.Links {
		if !names.Owns(l.Alias, project, names.KindNetwork) {
			continue
		}
		for _, key := range []string{names.RouteLocalnet(l.Name), names.IPv6Off(l.Name)} {
			// Missing: the link went away since the listing.
			if v, ok, err := m.Sysctls.Get(key); err == nil && ok {
				set(key, v)
			}
		}
	}
	return nil
}

// observePorts reads what the planner needs of the host's ports: the
// ephemeral range and the reserved ports, from which publishes without a
// host port are given one, and the sockets that hold ports, with the
// processes that hold them, which a fixed host port must not take over.
//
// Equivalent to: `sysctl net.ipv4.ip_local_port_range
// net.ipv4.ip_local_reserved_ports; ss -ltnup; cat /proc/net/sctp/eps`,
// and the firewall's SCTP support
func (m *Mechanisms) observePorts() (*state.HostPorts, error) {
	hp := &state.HostPorts{}
	if v, ok, err := m.Sysctls.Get(names.EphemeralPorts); err == nil && ok {
		if f := strings.Fields(v); len(f) == 2 {
			hp.EphemeralLow, _ = strconv.Atoi(f[0])
			hp.EphemeralHigh, _ = strconv.Atoi(f[1])
		}
	}
	if v, ok, err := m.Sysctls.Get(names.ReservedPorts); err == nil && ok {
		hp.Reserved = parsePortRanges(v)
	}
	socks, err := m.Links.Sockets()
	if err != nil {
		return nil, err
	}
	hp.Sockets = socks
	hp.SCTP = m.Firewall.SCTP()
	return hp, nil
}

// parsePortRanges reads a port list as the kernel prints
// ip_local_reserved_ports: "8080,9000-9100", "" for none.
func parsePortRanges(v string) []state.PortRange {
	var out []state.PortRange
	for _, f := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(f), "-")
		l, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		h := l
		if isRange {
			if h, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		out = append(out, state.PortRange{Low: l, High: h})
	}
	return out
}

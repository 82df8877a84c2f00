package links

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine"
	topons "github.com/topolab/topo/machine/netns"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// Observe fills snap's host namespace in full, every named namespace by
// name, and the full content of those whose lo carries a mark of project,
// for which it calls own. A namespace marked by another project shows its
// mark only; a foreign one its name only.
//
// Equivalent to: `ip link; ip addr; ip route; ip -6 route; ip netns list`
// and, for each of project's namespaces, the same with `-n NS`.
func (k *Kernel) Observe(ctx context.Context, project string, snap *state.Snapshot, own func(ns string) error) error {
	// The host, hundreds of veth ends at hundreds of containers, is read
	// beside the namespaces rather than before them.
	hostDone := make(chan error, 1)
	var hostLinks []linkInfo
	go func() {
		h, err := k.socket("")
		if err != nil {
			hostDone <- err
			return
		}
		defer h.Close()
		links, err := retryDump(func() ([]linkInfo, error) { return dumpLinks(h.sock) })
		if err == nil {
			snap.Host.Links, snap.Host.Routes, err = readNamespace(h, links)
		}
		if err == nil {
			hostLinks = links
			err = readNeighbours(h, links, snap.Host.Links)
		}
		hostDone <- err
	}()
	names, err := topons.List()
	if err == nil {
		snap.Namespaces, err = k.observeAll(ctx, names, project, own)
	} else {
		err = fmt.Errorf("list namespaces: %w", err)
	}
	if herr := <-hostDone; herr != nil {
		return fmt.Errorf("observe host namespace: %w", herr)
	}
	resolveParents(snap, hostLinks)
	if terr := k.observeTunnels(project, &snap.Host); terr != nil {
		return fmt.Errorf("observe host namespace: %w", terr)
	}
	return err
}

// observeNetns reads one named namespace: its mark, and its content when it
// is project's. A file that is not a namespace (as a failed `ip netns add`
// can leave) is foreign.
func (k *Kernel) observeNetns(name, project string) (state.Namespace, error) {
	ns := state.Namespace{Name: name}
	// The handle stays in the cache for the steps that follow.
	h, err := k.socket(name)
	if errors.Is(err, machine.ErrNotExist) {
		return ns, os.ErrNotExist
	}
	if err != nil {
		return ns, nil
	}
	defer h.Close()
	// One dump serves both to find lo's mark and, for project's own
	// namespaces, as their links: a round trip saved per container.
	links, err := retryDump(func() ([]linkInfo, error) { return dumpLinks(h.sock) })
	if err != nil {
		return ns, fmt.Errorf("list links: %w", err)
	}
	h.links = links
	i := slices.IndexFunc(links, func(l linkInfo) bool { return l.Name == "lo" })
	if i < 0 {
		return ns, nil
	}
	alias := links[i].Alias
	m, ok := names.ParseMark(alias)
	if !ok {
		return ns, nil
	}
	ns.Mark = alias
	if m.Project != project {
		return ns, nil
	}
	ns.Links, ns.Routes, err = readNamespace(h, links)
	if err == nil {
		setMACs(links, ns.Links)
		err = readQdiscs(h, links, ns.Links)
	}
	return ns, err
}

// readNamespace reads the addresses and main-table routes, of both
// families, of the namespace h is bound to, whose links are given, in one dump each whatever
// the number of links, and returns links and routes sorted.
func readNamespace(h *nsHandle, links []linkInfo) ([]state.Link, []state.Route, error) {
	addrs, err := retryDump(func() ([]addrInfo, error) { return dumpAddrs(h.sock) })
	if err != nil {
		return nil, nil, fmt.Errorf("list addresses: %w", err)
	}
	routes, err := retryDump(func() ([]routeInfo, error) { return dumpRoutes(h.sock) })
	if err != nil {
		return nil, nil, fmt.Errorf("list routes: %w", err)
	}

	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Index] = l.Name
	}
	addrsOf := make(map[int][]string)
	for _, a := range addrs {
		addrsOf[a.Index] = append(addrsOf[a.Index], a.CIDR)
	}
	out := make([]state.Link, 0, len(links))
	for _, l := range links {
		sl := state.Link{
			Name:    l.Name,
			Kind:    l.Kind,
			Alias:   l.Alias,
			Master:  names[l.Master], // "" when none: no link has index 0
			Up:      l.Flags&unix.IFF_UP != 0,
			Addrs:   addrsOf[l.Index],
			Hairpin: l.Hairpin,
			MTU:     int(l.MTU),
		}
		if l.Kind == "bridge" && l.MAC != ([6]byte{}) {
			sl.MAC = net.HardwareAddr(l.MAC[:]).String()
		}
		if l.Kind == "macvlan" {
			sl.MacvlanMode, sl.Parent = macvlanModeName(l.MacvlanMode), names[l.Link]
			if l.LinkNetns {
				sl.Parent = parentRef(l.Link)
			}
		}
		slices.Sort(sl.Addrs)
		out = append(out, sl)
	}
	slices.SortFunc(out, func(a, b state.Link) int { return cmp.Compare(a.Name, b.Name) })

	var rs []state.Route // nil when none, as in a decoded snapshot
	for _, r := range routes {
		rs = append(rs, state.Route{Dst: r.Dst, Gateway: r.Gateway, Dev: names[r.OIF], Metric: r.Metric, Topo: r.Proto == topoRouteProto})
	}
	slices.SortFunc(rs, func(a, b state.Route) int {
		return cmp.Or(cmp.Compare(a.Dst, b.Dst), cmp.Compare(a.Gateway, b.Gateway), cmp.Compare(a.Dev, b.Dev))
	})
	return out, rs, nil
}

// retryDump runs a netlink dump again when the kernel reports that the
// objects changed during it (NLM_F_DUMP_INTR; netlink returns partial
// results with ErrDumpInterrupted) or the call was interrupted, as CNI's
// netlinksafe does.
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	const attempts = 5
	var (
		v   []T
		err error
	)
	for range attempts {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) && !errors.Is(err, unix.EINTR) {
			return v, err
		}
	}
	return nil, fmt.Errorf("still interrupted after %d attempts: %w", attempts, err)
}

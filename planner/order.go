package planner

import (
	"cmp"
	"container/heap"

	"github.com/topolab/topo/op"
)

// Steps are ordered by what they need: each operation names what it needs
// and provides (op.Needs, op.Provides: a namespace before its links, a
// bridge before its ports, a link before its addresses), and a step may
// need more (Step.Needs: an address before a route through it, a
// namespace's files before its command). Destroys run in the reverse of
// the order that would make what they remove: a destroy goes before the
// destroy of anything its undo needs. One topological sort orders the
// plan; among the steps free to run it takes destroys first, then the
// kind of step by rank (destroys in descending rank, the rest ascending),
// then the step's fields (op.OrderKey), then the order they were planned
// in. Every dependency of topo's plans points the way the ranks do, so
// the ranks alone would give the same order; the dependencies are what
// keeps it right when they do not.

// rank is the kind of a step, for breaking ties.
type rank int

// Ranks, lowest first.
const (
	// rankRecordsGone: a record of a host sysctl that goes, after
	// everything else: the last project's down removes it.
	rankRecordsGone rank = iota
	// rankFirewallGone: a firewall batch that only removes rules; and
	// rankFilesGone, a DNS file of a namespace that goes. They come
	// after the namespaces and bridges go: deleting those is hundreds of
	// milliseconds of the kernel's work at hundreds of containers, much
	// of it waiting, and the machine runs these steps beside it. Rules
	// name links and addresses as strings and may outlive them for a
	// moment; the DNS files of a deleted namespace stay in /etc/netns
	// until their steps.
	rankFirewallGone
	rankFilesGone
	// rankSysctl: host sysctls, and the records of their values from
	// before topo.
	rankSysctl
	rankNetns
	rankBridge
	// rankBridgeSet: a bridge's state: up, hardware address, MTU.
	rankBridgeSet
	rankBridgeAddr
	// rankVeth: veths, and the namespaces that go with theirs.
	rankVeth
	// rankVethSet: a veth end's state: up, hairpin, MTU.
	rankVethSet
	rankEndpointAddr
	rankRoute
	// rankFirewall comes after everything its rules name, and the
	// per-network sysctls with it.
	rankFirewall
	// The embedded DNS, after every namespace and route exists: the files
	// first, then the resolver that listens in the namespaces.
	rankDNSFiles
	rankResolver
	// rankUTS: the containers' UTS namespaces, just before the commands
	// that run in them.
	rankUTS
	// rankProcess: container commands start last, in a namespace that is
	// complete, and stop first, before anything they use goes away.
	rankProcess
)

// rankOf is the rank of s.
func rankOf(s *op.Step) rank {
	onNetwork := s.Ref.Kind == op.RefNetwork
	onHost := s.Ref.Kind == op.RefHost
	switch o := s.Op.(type) {
	case op.Sysctl:
		if onHost {
			return rankSysctl
		}
		return rankFirewall
	case op.FileWrite:
		if onHost {
			return rankSysctl
		}
		return rankDNSFiles
	case op.FileDel:
		if onHost {
			return rankRecordsGone
		}
		return rankFilesGone
	case op.NetnsAdd:
		return rankNetns
	case op.NetnsDel:
		if s.Undo != nil {
			if _, rebuilds := s.Undo.Op.(op.Seq); rebuilds {
				// It takes its veths with it: a deletion of veths,
				// before the bridges they are on.
				return rankVeth
			}
		}
		return rankNetns
	case op.BridgeAdd:
		return rankBridge
	case op.VxlanAdd:
		// A port of its network's bridge, beside the bridge's state.
		return rankBridgeSet
	case op.FdbAdd, op.FdbDel, op.NeighAdd, op.NeighDel:
		return rankBridgeAddr
	case op.VethAdd, op.CNIAdd, op.CNIDel:
		return rankVeth
	case op.MacvlanAdd:
		if onNetwork {
			return rankBridge // a macvlan network's host_link
		}
		return rankVeth
	case op.LinkDel:
		if onNetwork {
			return rankBridge
		}
		return rankVeth
	case op.LinkUp, op.LinkDown, op.LinkSetMAC, op.LinkSetMTU, op.Hairpin, op.QdiscSet, op.QdiscDel:
		if onNetwork {
			return rankBridgeSet
		}
		return rankVethSet
	case op.AddrAdd, op.AddrDel:
		if onNetwork {
			return rankBridgeAddr
		}
		return rankEndpointAddr
	case op.RouteAdd, op.RouteDel:
		return rankRoute
	case op.FirewallBatch:
		if s.Action == op.Destroy {
			return rankFirewallGone
		}
		return rankFirewall
	case op.HostsWrite:
		return rankDNSFiles
	case op.RecordsWrite, op.RecordsDel:
		return rankDNSFiles
	case op.ResolverStart, op.ResolverStop, op.ResolverReload:
		return rankResolver
	case op.ProcStart, op.ProcStop:
		return rankProcess
	case op.UTSAdd, op.UTSSet, op.UTSDel:
		return rankUTS
	case op.Seq:
		if len(o.Steps) > 0 {
			return rankOf(&o.Steps[0])
		}
	}
	return rankSysctl
}

// order returns steps in the order the plan runs them.
func order(steps []op.Step) []op.Step {
	g := newGraph(steps)
	out := make([]op.Step, 0, len(steps))
	for _, i := range g.sort() {
		out = append(out, steps[i])
	}
	return out
}

// graph is the steps' dependencies: after[i] are the steps that must run
// after step i; before[j] counts those that must run before step j.
type graph struct {
	steps  []op.Step
	keys   []string // op.OrderKey of each step
	ranks  []rank
	after  [][]int32
	before []int32
}

func newGraph(steps []op.Step) *graph {
	n := len(steps)
	g := &graph{steps: steps, keys: make([]string, n), ranks: make([]rank, n), after: make([][]int32, n), before: make([]int32, n)}
	providers := map[op.Key][]int32{} // creates and changes, by what they make
	removers := map[op.Key][]int32{}  // destroys, by what they remove
	for i := range steps {
		s := &steps[i]
		g.keys[i], g.ranks[i] = op.OrderKey(s), rankOf(s)
		if s.Action == op.Destroy {
			for _, k := range op.Removes(s.Op) {
				removers[k] = append(removers[k], int32(i))
			}
			if s.Undo != nil {
				for _, k := range op.Provides(s.Undo.Op) {
					removers[k] = append(removers[k], int32(i))
				}
			}
			continue
		}
		for _, k := range op.Provides(s.Op) {
			providers[k] = append(providers[k], int32(i))
		}
	}
	for i := range steps {
		s := &steps[i]
		for _, k := range s.Needs {
			g.edges(providers[k], int32(i))
		}
		if s.Action != op.Destroy {
			for _, k := range op.Needs(s.Op) {
				g.edges(providers[k], int32(i))
			}
			// What it makes again goes first.
			for _, k := range op.Provides(s.Op) {
				g.edges(removers[k], int32(i))
			}
			continue
		}
		// A destroy goes before the destroys of what its object needs.
		if s.Undo != nil {
			for _, k := range op.Needs(s.Undo.Op) {
				for _, j := range removers[k] {
					g.edge(int32(i), j)
				}
			}
		}
	}
	return g
}

func (g *graph) edges(from []int32, to int32) {
	for _, i := range from {
		g.edge(i, to)
	}
}

func (g *graph) edge(from, to int32) {
	if from == to {
		return
	}
	g.after[from] = append(g.after[from], to)
	g.before[to]++
}

// less says whether step i goes before step j when both are free to run.
func (g *graph) less(i, j int32) bool {
	a, b := &g.steps[i], &g.steps[j]
	ad, bd := a.Action == op.Destroy, b.Action == op.Destroy
	switch {
	case ad != bd:
		return ad
	case g.ranks[i] != g.ranks[j] && ad:
		return g.ranks[i] > g.ranks[j]
	case g.ranks[i] != g.ranks[j]:
		return g.ranks[i] < g.ranks[j]
	}
	return cmp.Or(cmp.Compare(g.keys[i], g.keys[j]), cmp.Compare(i, j)) < 0
}

// sort is Kahn's algorithm with a priority queue: of the steps whose
// dependencies have all run, the least by less runs next. A cycle (a bug
// of the planner) leaves its steps to the end, in the order less gives.
func (g *graph) sort() []int32 {
	q := &queue{g: g}
	for i := range g.steps {
		if g.before[i] == 0 {
			q.idx = append(q.idx, int32(i))
		}
	}
	heap.Init(q)
	out := make([]int32, 0, len(g.steps))
	for q.Len() > 0 {
		i := heap.Pop(q).(int32)
		out = append(out, i)
		for _, j := range g.after[i] {
			if g.before[j]--; g.before[j] == 0 {
				heap.Push(q, j)
			}
		}
	}
	if len(out) < len(g.steps) {
		done := make([]bool, len(g.steps))
		for _, i := range out {
			done[i] = true
		}
		rest := &queue{g: g}
		for i := range g.steps {
			if !done[i] {
				rest.idx = append(rest.idx, int32(i))
			}
		}
		heap.Init(rest)
		for rest.Len() > 0 {
			out = append(out, heap.Pop(rest).(int32))
		}
	}
	return out
}

type queue struct {
	g   *graph
	idx []int32
}

func (q *queue) Len() int           { return len(q.idx) }
func (q *queue) Less(a, b int) bool { return q.g.less(q.idx[a], q.idx[b]) }
func (q *queue) Swap(a, b int)      { q.idx[a], q.idx[b] = q.idx[b], q.idx[a] }
func (q *queue) Push(x any)         { q.idx = append(q.idx, x.(int32)) }
func (q *queue) Pop() any {
	n := len(q.idx) - 1
	x := q.idx[n]
	q.idx = q.idx[:n]
	return x
}

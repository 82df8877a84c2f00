package view

import (
	"fmt"
	"strings"
	"time"

	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/state"
)

// LinkEnd is a container's end of a point-to-point link, in ps and
// inspect.
type LinkEnd struct {
	Interface string `json:"interface"`
	// Address is in CIDR form, as the kernel holds it; "" while down or
	// for an end without one.
	Address string `json:"address"`
	// Peer is the other end: CONTAINER:INTERFACE.
	Peer string `json:"peer"`
	// MAC and MTU are the kernel's; "" and 0 while down.
	MAC string `json:"mac,omitempty"`
	MTU int    `json:"mtu,omitempty"`
	// Impairment is the end's qdisc as tc would write it; "" for none.
	Impairment string `json:"impairment,omitempty"`
}

// linkEnds are the container's ends of links as the kernel shows them.
func (in *Input) linkEnds(mc *planner.Container) []LinkEnd {
	var out []LinkEnd
	var ns *state.Namespace
	if in.nsUp(mc) {
		ns = in.Obs.Namespace(mc.NS)
	}
	for _, e := range mc.Links {
		p := e.Peer()
		le := LinkEnd{Interface: e.IfName, Peer: p.Container + ":" + p.IfName}
		if ns != nil {
			if l := ns.Link(e.IfName); l != nil && l.Alias == e.Link.Mark.String() {
				if len(l.Addrs) > 0 {
					le.Address = l.Addrs[0]
				}
				le.MAC, le.MTU, le.Impairment = l.MAC, l.MTU, impairmentText(l.Qdisc)
			}
		}
		out = append(out, le)
	}
	return out
}

// impairmentText is an observed qdisc as the tc arguments that make it.
func impairmentText(q *state.Qdisc) string {
	if q == nil {
		return ""
	}
	return describeImpairment(op.Impairment{Rate: q.Rate, Delay: time.Duration(q.Delay), Jitter: time.Duration(q.Jitter),
		Loss: q.Loss, Duplicate: q.Duplicate, Corrupt: q.Corrupt, Reorder: q.Reorder})
}

// describeImpairment is an impairment as tc's qdisc arguments, without
// the tbf queue's: "netem delay 20ms 2ms loss 0.5%", "tbf rate 20mbit".
func describeImpairment(i op.Impairment) string {
	if i.IsZero() {
		return ""
	}
	c := op.QdiscSet{Imp: i}.Command()
	c = c[strings.Index(c, " root ")+len(" root "):]
	if i.Kind() == "tbf" {
		return "tbf rate " + op.RateString(i.Rate)
	}
	return c
}

// linkLabel is a link's edge label in a graph: both ends' addresses and
// the impairment.
func linkLabel(l *planner.Link) []string {
	a, b := l.Ends[0], l.Ends[1]
	end := func(e *planner.LinkEnd) string {
		if e.Addr.IsValid() {
			return e.IfName + " " + e.Addr.String()
		}
		return e.IfName
	}
	lines := []string{end(a) + " — " + end(b)}
	if l.MTU != 0 {
		lines = append(lines, fmt.Sprintf("mtu %d", l.MTU))
	}
	if s := describeImpairment(l.Imp); s != "" {
		lines = append(lines, s)
	}
	return lines
}

// namespaceSysctls are the sysctls the file sets in the container's
// namespace, as the kernel has them ("" for one not set yet).
func (in *Input) namespaceSysctls(mc *planner.Container) map[string]string {
	if len(mc.Sysctls) == 0 {
		return nil
	}
	out := map[string]string{}
	var ns *state.Namespace
	if in.nsUp(mc) {
		ns = in.Obs.Namespace(mc.NS)
	}
	for _, s := range mc.Sysctls {
		if ns != nil {
			out[s.Key] = ns.Sysctls[s.Key]
		} else {
			out[s.Key] = ""
		}
	}
	return out
}

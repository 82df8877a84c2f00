package planner

import (
	"cmp"
	"strings"
	"time"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/spec"
)

// This file plans what a container's command and namespace files take
// from the file besides its networks: extra_hosts, the resolv.conf of
// dns_search and dns_opt, and what the resolver process runs of
// healthchecks.

// extraHosts resolves each container's extra_hosts, host-gateway to the
// host's address on its first network (the gateway, on the bridge): where
// the host answers the container, as Docker's host-gateway is the host's
// address on its default bridge.
func (ds *desirer) extraHosts() {
	for i, c := range ds.f.Containers {
		dc := ds.m.Containers[i]
		for _, h := range c.ExtraHosts {
			a := h.Addr
			if h.Gateway {
				if len(dc.Endpoints) == 0 {
					ds.fail(h.Pos, "container %q: extra_hosts %s: host-gateway needs a network, and the container has none (network_mode %q): give an address", c.Name, h.Name, c.Mode)
					continue
				}
				n := ds.nets[dc.Endpoints[0].Network]
				a = cmp.Or(n.Gateway, n.Gateway6) // IPv6's on an IPv6-only network
			}
			dc.ExtraHosts = append(dc.ExtraHosts, HostLine{Addr: a, Name: h.Name})
		}
	}
}

// ResolvConf is the resolv.conf of a container namespace: the embedded
// resolver, the container's dns_search, and its dns_opt with ndots:0
// unless it sets ndots, as Docker writes it for user-defined networks (a
// name with no dot is asked as it is, first).
func ResolvConf(project string, c *Container) string {
	var b strings.Builder
	b.WriteString("# Written by topo for project " + project + ": the embedded DNS resolver.\nnameserver " + names.ResolverAddr.String() + "\n")
	var search []string
	opts := []string{}
	ndots := false
	if c != nil {
		for _, d := range c.DNSSearch {
			if d != "." { // "." is no search domain
				search = append(search, d)
			}
		}
		for _, o := range c.DNSOptions {
			ndots = ndots || strings.HasPrefix(o, "ndots:")
			opts = append(opts, o)
		}
	}
	if !ndots {
		opts = append(opts, "ndots:0")
	}
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	b.WriteString("options " + strings.Join(opts, " ") + "\n")
	return b.String()
}

// awaitBound is how long up waits for a container to be healthy: by then
// Docker's rules have given a verdict (the start period, then a failure
// per interval until Retries of them), with a run's timeout each, and a
// run to spare.
func awaitBound(h *spec.Healthcheck) time.Duration {
	every := h.Interval
	if h.StartPeriod > 0 {
		every = max(every, h.StartInterval)
	}
	return h.StartPeriod + time.Duration(h.Retries+2)*(every+h.Timeout)
}

// healthChecks are the healthchecks the project's resolver process runs,
// one per container with a command and a healthcheck.
func healthChecks(m *Model, rt names.Runtime) []records.Check {
	var out []records.Check
	for _, c := range m.Containers {
		h := c.Healthcheck
		if h == nil {
			continue
		}
		out = append(out, records.Check{Container: c.Name, NS: c.NS, UTS: UTSOf(rt, m.Project, c), PidFile: rt.PidFile(m.Project, c.Name), Test: h.Test,
			Privileges: c.Privileges, Env: c.Env, Dir: c.WorkingDir, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries})
	}
	return out
}

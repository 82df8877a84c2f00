// Package view turns a project (its file, the model the planner resolves
// and the observed kernel) into what `topo ps`, `topo inspect` and
// `topo graph` show. Its functions are pure: the same input gives the same
// bytes, and the JSON shapes are documented in README.md.
package view

import (
	"fmt"
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// FormatVersion is the version of the JSON shapes of ps and inspect; it
// changes only when a field changes meaning or goes away.
const FormatVersion = "1"

// Input is one project as the views see it.
type Input struct {
	File  *spec.File
	Model *planner.Model
	Obs   *state.Snapshot
	// Ports gives the host side of a container's published ports. Nil
	// means FilePorts.
	Ports func(c *spec.Container) []Port
	// Runtime locates pid files and logs; the zero value is
	// names.DefaultRuntime.
	Runtime names.Runtime
}

func (in *Input) runtime() names.Runtime {
	if in.Runtime.Root == "" {
		return names.DefaultRuntime
	}
	return in.Runtime
}

// Port is one published port: a host address and port forwarded to a
// container port. Ranges in the file give one Port per port.
type Port struct {
	HostIP string `json:"host_ip"`
	// HostPort is 0 while the file leaves it to topo and none is assigned.
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
	Protocol      string `json:"protocol"`
}

// String renders a port as docker ps does: 0.0.0.0:8080->80/tcp,
// [::]:8080->80/tcp.
func (p Port) String() string {
	host := "?"
	if p.HostPort != 0 {
		host = fmt.Sprint(p.HostPort)
	}
	ip := p.HostIP
	if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	return fmt.Sprintf("%s:%s->%d/%s", ip, host, p.ContainerPort, p.Protocol)
}

// FilePorts are a container's published ports as the file says them: a
// port left to topo has HostPort 0.
func FilePorts(c *spec.Container) []Port {
	out := []Port{}
	for _, p := range c.Ports {
		for i := 0; i <= int(p.ContainerEnd)-int(p.ContainerStart); i++ {
			hp := 0
			if p.HostStart != 0 && !p.PicksHostPort() {
				hp = int(p.HostStart) + i
			}
			out = append(out, Port{HostIP: p.HostIP.String(), HostPort: hp, ContainerPort: int(p.ContainerStart) + i, Protocol: p.Proto})
		}
	}
	return out
}

func (in *Input) ports(c *spec.Container) []Port {
	if in.Ports != nil {
		return in.Ports(c)
	}
	return FilePorts(c)
}

// container returns the model's container called name, or nil.
func (in *Input) container(name string) *planner.Container {
	for _, c := range in.Model.Containers {
		if c.Name == name {
			return c
		}
	}
	for _, c := range in.Model.Remote {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// remote says whether c runs on another host of the file.
func (in *Input) remote(c *planner.Container) bool {
	return c != nil && c.Host != in.Model.Host
}

func (in *Input) network(name string) *planner.Network {
	for _, n := range in.Model.Networks {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// nsUp reports whether the container's namespace is there, marked for the
// project by the container that owns it. Host mode is always up.
func (in *Input) nsUp(c *planner.Container) bool {
	if c.NS == "" {
		return true
	}
	owner := c.Name
	if c.Mode == spec.ModeContainer {
		owner = in.File.Container(c.Name).ModeTarget
	}
	ns := in.Obs.Namespace(c.NS)
	return ns != nil && ns.Mark == names.NewMark(in.Model.Project, names.KindNamespace, owner).String()
}

// observedAddr is the address the kernel shows on the container end of an
// endpoint, or "".
func (in *Input) observedAddr(ns, container, network string) (addr string, link *state.Link) {
	n := in.Obs.Namespace(ns)
	if n == nil {
		return "", nil
	}
	want := names.NewMark(in.Model.Project, names.KindEndpoint, names.Endpoint(container, network)).String()
	for i := range n.Links {
		l := &n.Links[i]
		if l.Alias == want {
			if p, ok := l.Addr(false); ok {
				return p.String(), l
			}
			return "", l
		}
	}
	return "", nil
}

// observedAddrs are the IPv4 and IPv6 addresses the kernel shows on the
// container end of an endpoint, "" for each it has not.
func (in *Input) observedAddrs(ns, container, network string) (addr, addr6 string) {
	addr, l := in.observedAddr(ns, container, network)
	if l != nil {
		if p, ok := l.Addr(true); ok {
			addr6 = p.String()
		}
	}
	return addr, addr6
}

func modeString(c *spec.Container) string {
	switch c.Mode {
	case spec.ModeBridge:
		return "bridge"
	case spec.ModeContainer:
		return "container:" + c.ModeTarget
	}
	return string(c.Mode)
}

// addressOwner is the container whose endpoints a container uses: NAME
// for network_mode container:NAME, else itself.
func addressOwner(c *spec.Container) string {
	if c.Mode == spec.ModeContainer {
		return c.ModeTarget
	}
	return c.Name
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

package view

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/topolab/topo/op"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// Container states.
const (
	// StateRunning: the container is up and its command runs.
	StateRunning = "running"
	// StateExited: the container is up but its command does not run:
	// it finished (a one-shot), was stopped, or died. Container.Exit
	// says its status when topo saw it.
	StateExited = "exited"
	// StateUp: the container is up and has no command.
	StateUp = "up"
	// StateDown: the container's namespace is not there.
	StateDown = "down"
	// StateRemote: the container is another host's (hosts:), which
	// this one does not see.
	StateRemote = "remote"
)

// PS is what `topo ps --json` prints.
type PS struct {
	FormatVersion string      `json:"format_version"`
	Project       string      `json:"project"`
	Containers    []Container `json:"containers"`
}

// Container is one line of ps.
type Container struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Host is the file's host the container runs on, in a file with
	// hosts.
	Host string `json:"host,omitempty"`
	// NetworkMode is bridge, host, none or container:NAME.
	NetworkMode string `json:"network_mode"`
	// Netns is the named namespace the container's processes run in; ""
	// for host.
	Netns string `json:"netns"`
	// Networks are the networks and addresses the container answers on:
	// NAME's for network_mode container:NAME.
	Networks []Address `json:"networks"`
	// Links are the container's ends of point-to-point links.
	Links   []LinkEnd `json:"links,omitempty"`
	Ports   []Port    `json:"ports"`
	Command []string  `json:"command"`
	// PID is the command's process while it runs, else 0.
	PID int `json:"pid"`
	// Health is the running command's healthcheck; absent without one.
	Health *state.Health `json:"health,omitempty"`
	// Exit is the status an exited command ended with, when topo saw it
	// end (a one-shot in its start window, a command topo stop killed);
	// absent otherwise.
	Exit *int `json:"exit_code,omitempty"`
}

// Status is the state as the table shows it: "exited (CODE)" when the
// status is known, "running (healthy)" with a healthcheck, as docker ps.
func (c Container) Status() string {
	switch {
	case c.State == StateExited && c.Exit != nil:
		return fmt.Sprintf("%s (%d)", c.State, *c.Exit)
	case c.Health != nil:
		return c.State + " (" + c.Health.Status + ")"
	}
	return c.State
}

// Address is a container's address on one network.
type Address struct {
	Network   string `json:"network"`
	Interface string `json:"interface"`
	// Address is in CIDR form, as the kernel holds it; "" while down.
	Address string `json:"address"`
	// Address6 is its IPv6 address, on a network with IPv6.
	Address6 string `json:"address6,omitempty"`
}

// BuildPS lists the file's containers, in file order, as the kernel shows
// them.
func BuildPS(in *Input) *PS {
	out := &PS{FormatVersion: FormatVersion, Project: in.Model.Project, Containers: []Container{}}
	for _, sc := range in.File.Containers {
		out.Containers = append(out.Containers, in.psContainer(sc))
	}
	return out
}

func (in *Input) psContainer(sc *spec.Container) Container {
	mc := in.container(sc.Name)
	c := Container{
		Name: sc.Name, Host: mc.Host, NetworkMode: modeString(sc), Netns: mc.NS,
		Networks: []Address{}, Ports: in.ports(sc), Command: nonNil(sc.Command),
	}
	if in.remote(mc) {
		// Its addresses are the file's, as every host allocates them.
		c.State = StateRemote
		for _, e := range mc.Endpoints {
			c.Networks = append(c.Networks, Address{Network: e.Network, Interface: e.IfName, Address: prefixText(e.Addr), Address6: prefixText(e.Addr6)})
		}
		return c
	}
	up := in.nsUp(mc)
	if owner := in.container(addressOwner(sc)); owner != nil && sc.Mode != spec.ModeHost {
		for _, e := range owner.Endpoints {
			a := Address{Network: e.Network, Interface: e.IfName}
			if up {
				a.Address, a.Address6 = in.observedAddrs(mc.NS, owner.Name, e.Network)
			}
			c.Networks = append(c.Networks, a)
		}
		for _, ca := range owner.CNI {
			a := Address{Network: ca.Network, Interface: ca.IfName}
			a.Address, a.Address6, _, _ = cniAddrs(in.cniResult(owner, ca))
			c.Networks = append(c.Networks, a)
		}
		sortByAttach(in.File.Container(owner.Name), c.Networks, func(a Address) string { return a.Network })
	}
	if mc.OwnsNamespace() {
		c.Links = in.linkEnds(mc)
	}
	pr := in.Obs.Process(sc.Name)
	switch {
	case !up:
		c.State = StateDown
	case len(sc.Command) == 0:
		c.State = StateUp
	case pr != nil && pr.Running:
		c.State = StateRunning
	default:
		c.State = StateExited
		if pr != nil {
			c.Exit = pr.Exit
		}
	}
	if pr != nil && pr.Running {
		c.PID, c.Health = pr.PID, pr.Health
	}
	return c
}

// RenderJSON writes v as indented JSON with a trailing newline.
func RenderJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Render writes ps as a table, as docker ps does.
func (p *PS) Render(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	hosts := len(p.Containers) > 0 && p.Containers[0].Host != ""
	if hosts {
		fmt.Fprint(tw, "HOST\t")
	}
	fmt.Fprintln(tw, "NAME\tSTATE\tNETNS\tADDRESSES\tPORTS\tPID\tCOMMAND")
	for _, c := range p.Containers {
		if hosts {
			fmt.Fprint(tw, c.Host+"\t")
		}
		var addrs, ports []string
		for _, a := range c.Networks {
			addr := a.Address
			switch {
			case addr == "" && a.Address6 != "":
				addr = a.Address6 // an IPv6-only network
			case addr == "":
				addr = "-"
			case a.Address6 != "":
				addr += "+" + a.Address6
			}
			addrs = append(addrs, a.Network+"="+addr)
		}
		for _, l := range c.Links {
			addrs = append(addrs, l.Interface+"="+dash(l.Address, "-")+" to "+l.Peer)
		}
		for _, pt := range c.Ports {
			ports = append(ports, pt.String())
		}
		pid := "-"
		if c.PID != 0 {
			pid = fmt.Sprint(c.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Status(), dash(c.Netns, "(host)"),
			dash(strings.Join(addrs, ","), "-"), dash(strings.Join(ports, ","), "-"), pid, dash(op.ShellJoin(c.Command), "-"))
	}
	return tw.Flush()
}

func dash(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}

// Package fake composes the in-memory fakes of package machine's
// mechanisms into a Machine: the same composition, dispatch, batching and
// observation as the real one (package machine/linux), over fakes that
// refuse what the kernel refuses and dump their state as deterministic
// text. Planner, applier, transaction and CLI tests run on it without
// root; the same scenarios run against the real machine in a sandbox,
// which keeps the fakes honest.
package fake

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/cni"
	"github.com/topolab/topo/machine/files"
	"github.com/topolab/topo/machine/iptables"
	"github.com/topolab/topo/machine/links"
	"github.com/topolab/topo/machine/process"
	"github.com/topolab/topo/machine/sysctl"
	"github.com/topolab/topo/machine/uts"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/state"
)

// Machine is the fake machine, with each mechanism's fake at hand for
// tests to seed, break or inspect.
type Machine struct {
	*machine.Mechanisms
	Links *links.Fake
	// Firewall is IPv4's, Firewall6 IPv6's.
	Firewall  *iptables.Fake
	Firewall6 *iptables.Fake
	Sysctls   *sysctl.Fake
	Files     *files.Fake
	Processes *process.Fake
	CNI       *cni.Fake
	UTS       *uts.Fake
}

// New returns a fake machine holding initial (which may be nil), its
// runtime files under names.DefaultRuntime.
func New(initial *state.Snapshot) *Machine { return NewAt(names.DefaultRuntime, initial) }

// NewAt is New with the runtime files under rt.
func NewAt(rt names.Runtime, initial *state.Snapshot) *Machine {
	if initial == nil {
		initial = &state.Snapshot{}
	}
	m := &Machine{
		Links:     links.NewFake(initial),
		Firewall:  iptables.NewFake(initial.Firewall),
		Firewall6: iptables.NewFake(initial.Firewall6),
		Sysctls:   sysctl.NewFake(initial.Sysctls),
		Files:     files.NewFake(rt, initial.Nameservers),
		Processes: process.NewFake(rt, initial.Processes),
		CNI:       cni.NewFake(rt),
		UTS:       uts.NewFake(rt, initial.UTS),
	}
	m.CNI.HasNamespace = m.Links.HasNamespace
	m.Sysctls.HasLink = m.Links.HasLink
	m.Processes.HasNamespace = m.Links.HasNamespace
	m.Processes.HasUTS = m.UTS.Has
	m.Links.OnLinkGone = m.Sysctls.LinkGone
	m.Links.OnNetnsGone = func(ns string) {
		m.Processes.NetnsGone(ns)
		m.Sysctls.NetnsGone(ns)
	}
	m.Mechanisms = &machine.Mechanisms{Links: m.Links, Firewall: m.Firewall, Firewall6: m.Firewall6, Sysctls: m.Sysctls, Files: m.Files, Processes: m.Processes, CNI: m.CNI, UTS: m.UTS}
	if initial.Ports != nil {
		m.SetPorts(initial.Ports)
	}
	return m
}

// SetPorts makes the host's ports hp: its ephemeral and reserved ranges
// (sysctls) and the sockets that hold ports.
func (m *Machine) SetPorts(hp *state.HostPorts) {
	if hp.EphemeralLow > 0 {
		_ = m.Sysctls.Set("", names.EphemeralPorts, strconv.Itoa(hp.EphemeralLow)+"\t"+strconv.Itoa(hp.EphemeralHigh))
	}
	var rs []string
	for _, r := range hp.Reserved {
		if r.Low == r.High {
			rs = append(rs, strconv.Itoa(r.Low))
		} else {
			rs = append(rs, fmt.Sprintf("%d-%d", r.Low, r.High))
		}
	}
	_ = m.Sysctls.Set("", names.ReservedPorts, strings.Join(rs, ","))
	m.Links.SetSockets(hp.Sockets)
	m.Firewall.Support = hp.SCTP
}

// Dump renders the whole machine as sorted text, one object per line, for
// comparing machines in tests.
func (m *Machine) Dump() string {
	var b strings.Builder
	m.Sysctls.Dump(&b)
	m.Links.Dump(&b)
	m.Processes.Dump(&b)
	m.UTS.Dump(&b)
	for _, fw := range []struct {
		prog string
		f    *iptables.Fake
	}{{"iptables", m.Firewall}, {"ip6tables", m.Firewall6}} {
		for _, line := range strings.Split(strings.TrimSuffix(fw.f.Save(), "\n"), "\n") {
			fmt.Fprintf(&b, "%s %s\n", fw.prog, line)
		}
	}
	m.Files.Dump(&b)
	for _, line := range m.CNI.Dump() {
		fmt.Fprintln(&b, line)
	}
	return b.String()
}

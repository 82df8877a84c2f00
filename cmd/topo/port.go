package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

func newPortCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:         "port CONTAINER [PORT[/PROTO]]",
		Annotations: map[string]string{readsAnnotation: ""},
		Short:       "Print the host addresses a container's ports are published on, as docker port",
		Long: `port reads the publishes of a container from the kernel (and those on
[::1] from the project's resolver process, which forwards them). With PORT (and
/tcp, the default, /udp or /sctp) it prints one HOST_IP:HOST_PORT line per
publish of that port; without, one "PORT/PROTO -> HOST_IP:HOST_PORT" line
per publish.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			project, err := g.projectName()
			if err != nil {
				return err
			}
			want, proto := 0, "tcp"
			if len(args) == 2 {
				p, pr, found := strings.Cut(args[1], "/")
				n, err := strconv.Atoi(p)
				if err != nil || n < 1 || n > 65535 || found && !slices.Contains(spec.Protocols, pr) {
					return fmt.Errorf("port %q: write PORT, PORT/tcp, PORT/udp or PORT/sctp, PORT from 1 to 65535", args[1])
				}
				want = n
				if found {
					proto = pr
				}
			}
			k, err := g.openMachine("port")
			if err != nil {
				return err
			}
			obs, err := k.Observe(ctx(), project)
			if err != nil {
				return err
			}
			name := args[0]
			owner, host, err := g.owner(project, name)
			if err != nil {
				return err
			}
			if host {
				return fmt.Errorf("container %s uses the host's network (network_mode: host): nothing is published for it; its ports are the host's own", name)
			}
			if _, err := upNamespace(project, obs, name, owner); err != nil {
				return err
			}
			if owner != name {
				// Its ports are owner's, as with Docker: say so, then print them.
				fmt.Fprintf(g.stderr, "container %s shares %s's network namespace (network_mode: container:%s): these are %s's publishes\n", name, owner, owner, owner)
			}
			found := false
			published := append(firewall.ReadPublished(project, obs.Firewall), firewall.ReadPublished(project, obs.Firewall6)...)
			// Those on [::1] are the resolver process's proxies.
			for _, p := range append(published, planner.ProxiesServed(project, obs.Resolver)...) {
				if p.Container != owner {
					continue
				}
				switch {
				case want == 0:
					fmt.Fprintf(g.stdout, "%d/%s -> %s\n", p.Port, p.Proto, p)
				case int(p.Port) == want && p.Proto == proto:
					fmt.Fprintln(g.stdout, p)
				default:
					continue
				}
				found = true
			}
			if !found && want != 0 {
				return fmt.Errorf("container %s publishes no port %d/%s", owner, want, proto)
			}
			return nil
		},
	}
}

// firewallPreflight fails, before any step, when the plan has firewall
// steps and the iptables programs are missing; with verbose it says which
// iptables backend topo uses.
func (g *globals) firewallPreflight(m machine.Machine, p *planner.Plan) error {
	needs := false
	for _, s := range p.Steps {
		_, fw := s.Op.(op.FirewallBatch)
		needs = needs || fw
	}
	if !needs && !g.verbose {
		return nil
	}
	backend, err := m.FirewallBackend(ctx())
	if err != nil {
		if needs || !errors.Is(err, machine.ErrNoFirewall) {
			return fmt.Errorf("project %s: %w", p.Project, err)
		}
		return nil
	}
	if g.verbose {
		fmt.Fprintf(g.stderr, "firewall: using iptables-%s (the backend the host's rules are in)\n", backend)
	}
	return nil
}

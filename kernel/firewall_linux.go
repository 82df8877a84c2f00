package kernel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/state"
)

// iptablesExec is the real Iptables: one backend's save and restore.
type iptablesExec struct {
	backend       string
	save, restore string
}

func (x *iptablesExec) Backend() string { return x.backend }

func (x *iptablesExec) Save(ctx context.Context, table string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, x.save, "-t", table)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s -t %s: %w: %s", x.save, table, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (x *iptablesExec) Restore(ctx context.Context, input []byte) error {
	// -w waits for the xtables lock that other programs may hold.
	cmd := exec.CommandContext(ctx, x.restore, "--noflush", "-w")
	cmd.Stdin = bytes.NewReader(input)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --noflush: %w: %s", x.restore, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// DetectIptables finds the iptables backend the host's rules live in:
// iptables-nft or iptables-legacy, whichever has rules; when both or
// neither have, the one the `iptables` command is. Rules are never split
// across both. A host without iptables gets ErrNoIptables.
func DetectIptables(ctx context.Context) (Iptables, error) {
	look := func(name string) string {
		p, err := exec.LookPath(name)
		if err != nil {
			return ""
		}
		return p
	}
	flavours := map[string]*iptablesExec{}
	for _, b := range []string{"nft", "legacy"} {
		save, restore := look("iptables-"+b+"-save"), look("iptables-"+b+"-restore")
		if save != "" && restore != "" {
			flavours[b] = &iptablesExec{backend: b, save: save, restore: restore}
		}
	}
	def := ""
	if ipt := look("iptables"); ipt != "" {
		if out, err := exec.CommandContext(ctx, ipt, "--version").Output(); err == nil {
			switch {
			case bytes.Contains(out, []byte("nf_tables")):
				def = "nft"
			case bytes.Contains(out, []byte("legacy")):
				def = "legacy"
			}
		}
	}
	var withRules []string
	for _, b := range []string{"nft", "legacy"} {
		if x := flavours[b]; x != nil && hasRules(ctx, x.save) {
			withRules = append(withRules, b)
		}
	}
	if len(withRules) == 1 {
		return flavours[withRules[0]], nil
	}
	if x := flavours[def]; x != nil {
		return x, nil
	}
	// No suffixed programs: the plain ones, whatever they are.
	save, restore := look("iptables-save"), look("iptables-restore")
	if save == "" || restore == "" {
		if x := flavours["nft"]; x != nil {
			return x, nil
		}
		if x := flavours["legacy"]; x != nil {
			return x, nil
		}
		return nil, ErrNoIptables
	}
	if def == "" {
		def = "unknown"
	}
	return &iptablesExec{backend: def, save: save, restore: restore}, nil
}

// hasRules reports whether an iptables-save prints any rule or chain of
// its own: more than the empty built-in tables.
func hasRules(ctx context.Context, save string) bool {
	out, err := exec.CommandContext(ctx, save).Output()
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-A ") {
			return true
		}
		if strings.HasPrefix(line, ":") && strings.Contains(line, " - ") {
			return true // a user chain
		}
	}
	return false
}

// fwState holds the Netlink kernel's iptables, found on first use.
type fwState struct {
	once sync.Once
	ipt  Iptables
	err  error
}

func (k *Netlink) iptables(ctx context.Context) (Iptables, error) {
	k.fw.once.Do(func() {
		if k.fw.ipt == nil {
			k.fw.ipt, k.fw.err = DetectIptables(ctx)
		}
	})
	return k.fw.ipt, k.fw.err
}

// SetIptables makes the kernel use ipt instead of the detected iptables.
func (k *Netlink) SetIptables(ipt Iptables) { k.fw.ipt = ipt }

// FirewallBackend detects the iptables backend and names it ("nft",
// "legacy"), or returns ErrNoIptables.
func (k *Netlink) FirewallBackend(ctx context.Context) (string, error) {
	ipt, err := k.iptables(ctx)
	if err != nil {
		return "", err
	}
	return ipt.Backend(), nil
}

// observeFirewall reads topo's chains, one iptables-save per table. A host
// without iptables has no rules of topo's: the firewall is left nil.
//
// Equivalent to: `iptables-save -t filter; iptables-save -t nat`
func (k *Netlink) observeFirewall(ctx context.Context, snap *state.Snapshot) error {
	ipt, err := k.iptables(ctx)
	if errors.Is(err, ErrNoIptables) {
		return nil
	}
	if err != nil {
		return err
	}
	fw := &state.Firewall{Backend: ipt.Backend()}
	for _, table := range []string{firewall.TableFilter, firewall.TableNat} {
		out, err := ipt.Save(ctx, table)
		if err != nil {
			return fmt.Errorf("read iptables table %s: %w", table, err)
		}
		ts, err := firewall.ParseSave(out)
		if err != nil {
			return fmt.Errorf("read iptables table %s: %w", table, err)
		}
		for _, t := range ts {
			if t.Name == table && len(t.Chains) > 0 {
				fw.Tables = append(fw.Tables, t)
			}
		}
	}
	snap.Firewall = fw
	return nil
}

// applyFirewall runs one firewall step as one iptables-restore.
//
// Equivalent to: `iptables-restore --noflush` fed "*TABLE", the changes and
// "COMMIT".
func (k *Netlink) applyFirewall(ctx context.Context, s planner.Step) error {
	ipt, err := k.iptables(ctx)
	if err != nil {
		return err
	}
	return ipt.Restore(ctx, firewall.RestoreInput(s.Table, s.Rules))
}

// observeHostPorts reads the ephemeral port range and the ports bound on
// the host, from which publishes without a host port are given one.
//
// Equivalent to: `sysctl net.ipv4.ip_local_port_range; ss -ltnu`
func observeHostPorts() (*state.HostPorts, error) {
	hp := &state.HostPorts{}
	if v, err := readSysctl("net.ipv4.ip_local_port_range"); err == nil {
		f := strings.Fields(v)
		if len(f) == 2 {
			hp.EphemeralLow, _ = strconv.Atoi(f[0])
			hp.EphemeralHigh, _ = strconv.Atoi(f[1])
		}
	}
	var err error
	if hp.TCP, err = boundPorts(true, "/proc/self/net/tcp", "/proc/self/net/tcp6"); err != nil {
		return nil, err
	}
	if hp.UDP, err = boundPorts(false, "/proc/self/net/udp", "/proc/self/net/udp6"); err != nil {
		return nil, err
	}
	return hp, nil
}

// boundPorts lists the local ports of the sockets in /proc/net files:
// listening ones only for TCP (state 0A), all for UDP.
func boundPorts(listenOnly bool, files ...string) ([]int, error) {
	seen := map[int]bool{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		lines := strings.Split(string(b), "\n")
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) < 4 {
				continue
			}
			if listenOnly && f[3] != "0A" {
				continue
			}
			_, hexPort, ok := strings.Cut(f[1], ":")
			if !ok {
				continue
			}
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				seen[int(p)] = true
			}
		}
	}
	var out []int
	for p := range seen {
		out = append(out, p)
	}
	sort.Ints(out)
	return out, nil
}

// observeProjectFirewall adds to snap what the firewall part of planning
// needs: topo's rules, the host's ports, and route_localnet of the
// project's bridges.
func observeProjectFirewall(ctx context.Context, k *Netlink, snap *state.Snapshot, project string) error {
	if err := k.observeFirewall(ctx, snap); err != nil {
		return err
	}
	hp, err := observeHostPorts()
	if err != nil {
		return fmt.Errorf("read host ports: %w", err)
	}
	snap.Ports = hp
	for _, l := range snap.Host.Links {
		mk, ok := state.ParseMark(l.Alias)
		if !ok || mk.Project != project || mk.Kind != state.KindNetwork {
			continue
		}
		key := planner.RouteLocalnet(l.Name)
		v, err := readSysctl(key)
		if err != nil {
			continue // the link went away since the listing
		}
		if snap.Sysctls == nil {
			snap.Sysctls = map[string]string{}
		}
		snap.Sysctls[key] = v
	}
	return nil
}

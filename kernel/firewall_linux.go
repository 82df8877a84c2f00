package kernel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"

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

func (x *iptablesExec) Save(ctx context.Context) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, x.save)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", x.save, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (x *iptablesExec) Restore(ctx context.Context, input []byte) error {
	// -w waits for the xtables lock that other programs may hold.
	cmd := exec.CommandContext(ctx, x.restore, "--noflush", "-w")
	// A process group of its own: the Ctrl-C that a terminal sends to
	// topo's group must not kill the batch between its commit and its
	// exit, which would leave it done but reported as failed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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
// across both. A host without iptables gets ErrNoIptables. It also returns
// the chosen backend's save output when it read one, so that the first
// observation does not run the same save again.
func DetectIptables(ctx context.Context) (Iptables, []byte, error) {
	look := func(name string) string {
		p, err := exec.LookPath(name)
		if err != nil {
			return ""
		}
		return p
	}
	backends := []string{"nft", "legacy"}
	flavours := map[string]*iptablesExec{}
	for _, b := range backends {
		save, restore := look("iptables-"+b+"-save"), look("iptables-"+b+"-restore")
		if save != "" && restore != "" {
			flavours[b] = &iptablesExec{backend: b, save: save, restore: restore}
		}
	}
	// Both saves at once: each is a process that mostly waits on the
	// kernel, and this runs in every command that reads the firewall.
	saved := make([][]byte, len(backends))
	var wg sync.WaitGroup
	for i, b := range backends {
		if x := flavours[b]; x != nil {
			wg.Go(func() {
				if out, err := x.Save(ctx); err == nil {
					saved[i] = out
				}
			})
		}
	}
	wg.Wait()
	var withRules []int
	for i := range backends {
		if hasRules(saved[i]) {
			withRules = append(withRules, i)
		}
	}
	if len(withRules) == 1 {
		i := withRules[0]
		return flavours[backends[i]], saved[i], nil
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
	if i := slices.Index(backends, def); i >= 0 && flavours[def] != nil {
		return flavours[def], saved[i], nil
	}
	// No suffixed programs: the plain ones, whatever they are.
	save, restore := look("iptables-save"), look("iptables-restore")
	if save == "" || restore == "" {
		for i, b := range backends {
			if x := flavours[b]; x != nil {
				return x, saved[i], nil
			}
		}
		return nil, nil, ErrNoIptables
	}
	if def == "" {
		def = "unknown"
	}
	return &iptablesExec{backend: def, save: save, restore: restore}, nil, nil
}

// hasRules reports whether an iptables-save output holds any rule or
// chain of its own: more than the empty built-in tables.
func hasRules(saved []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(saved))
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

// fwState holds the Netlink kernel's iptables, found on first use, and
// the save output detection read, until an observation uses it or a
// restore makes it stale.
type fwState struct {
	once     sync.Once
	ipt      Iptables
	err      error
	mu       sync.Mutex
	detected []byte
	// early says detection may have run before the caller took the
	// project's lock (PrefetchFirewall); gen is nf_tables' generation
	// read before detection's saves, if genOK.
	early bool
	gen   uint32
	genOK bool
}

func (k *Netlink) iptables(ctx context.Context) (Iptables, error) {
	k.fw.once.Do(func() {
		if k.fw.ipt == nil {
			// Only where iptables-nft is, whose save during detection
			// loads nf_tables anyway: on a host without it, the request
			// could make the kernel load the module.
			var gen uint32
			genOK := false
			if _, err := exec.LookPath("iptables-nft-save"); err == nil {
				g, err := nftGeneration()
				gen, genOK = g, err == nil
			}
			ipt, saved, err := DetectIptables(ctx)
			k.fw.mu.Lock()
			k.fw.ipt, k.fw.err = ipt, err
			k.fw.detected = saved
			k.fw.gen, k.fw.genOK = gen, genOK
			k.fw.mu.Unlock()
		}
	})
	return k.fw.ipt, k.fw.err
}

// PrefetchFirewall starts detecting the iptables backend, which reads the
// firewall, in the background: plan, up and down call it before they parse
// the file and take the lock, and the read (two iptables-save processes,
// about 20 ms of CPU at N=500) overlaps the parse, which leaves the second
// CPU idle. Read before the lock, the rules may have changed since: the
// next observation uses the read only if nf_tables' generation is still
// the one read before it (see save).
func (k *Netlink) PrefetchFirewall(ctx context.Context) {
	k.fw.mu.Lock()
	k.fw.early = true
	k.fw.mu.Unlock()
	go k.iptables(ctx)
}

// save returns the tables as iptables-save prints them: the output
// detection read if nothing was restored since, or a fresh one. Output
// read early is used only if the rules cannot have changed since: with
// iptables-nft, nf_tables' generation is unchanged; iptables-legacy has
// no generation to compare, so it is read again.
func (k *Netlink) save(ctx context.Context, ipt Iptables) ([]byte, error) {
	k.fw.mu.Lock()
	out := k.fw.detected
	k.fw.detected = nil
	early, gen, genOK := k.fw.early, k.fw.gen, k.fw.genOK
	k.fw.mu.Unlock()
	if out != nil && early && !(ipt.Backend() == "nft" && genOK && nftUnchanged(gen)) {
		out = nil
	}
	if out != nil {
		return out, nil
	}
	return ipt.Save(ctx)
}

// nftUnchanged says whether nf_tables' generation is still gen.
func nftUnchanged(gen uint32) bool {
	now, err := nftGeneration()
	return err == nil && now == gen
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

// observeFirewall reads topo's chains of the filter and nat tables, from
// one iptables-save. A host without iptables has no rules of topo's: the
// firewall is nil.
//
// Equivalent to: `iptables-save`
func (k *Netlink) observeFirewall(ctx context.Context) (*state.Firewall, error) {
	ipt, err := k.iptables(ctx)
	if errors.Is(err, ErrNoIptables) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out, err := k.save(ctx, ipt)
	if err != nil {
		return nil, fmt.Errorf("read iptables: %w", err)
	}
	ts, err := firewall.ParseSave(out)
	if err != nil {
		return nil, fmt.Errorf("read iptables: %w", err)
	}
	fw := &state.Firewall{Backend: ipt.Backend()}
	for _, table := range []string{firewall.TableFilter, firewall.TableNat} {
		for _, t := range ts {
			if t.Name == table && len(t.Chains) > 0 {
				fw.Tables = append(fw.Tables, t)
			}
		}
	}
	return fw, nil
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
	k.fw.mu.Lock()
	k.fw.detected = nil
	k.fw.mu.Unlock()
	return ipt.Restore(ctx, firewall.RestoreInput(s.Table, s.Rules))
}

// observeProjectFirewall adds to snap what the firewall part of planning
// needs besides topo's rules (fw, observed meanwhile): the host's ports,
// and route_localnet and disable_ipv6 of the project's bridges (1 where
// the kernel has no IPv6).
func observeProjectFirewall(snap *state.Snapshot, fw *state.Firewall, project string) error {
	snap.Firewall = fw
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
		for _, key := range []string{planner.RouteLocalnet(l.Name), planner.BridgeIPv6Off(l.Name)} {
			v, err := readSysctl(key)
			if errors.Is(err, os.ErrNotExist) && key == planner.BridgeIPv6Off(l.Name) && !ipv6() {
				v, err = "1", nil
			}
			if err != nil {
				continue // the link went away since the listing
			}
			if snap.Sysctls == nil {
				snap.Sysctls = map[string]string{}
			}
			snap.Sysctls[key] = v
		}
	}
	return nil
}

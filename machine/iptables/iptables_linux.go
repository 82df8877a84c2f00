package iptables

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// iptablesExec is the real Tables: one backend's save and restore.
type iptablesExec struct {
	backend       string
	save, restore string
	// version is the backend's, as go-iptables read it ("1.8.9").
	version string
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

// program is the name of an iptables program of the family: "iptables",
// "ip6tables-nft-save".
func program(proto goipt.Protocol, backend, suffix string) string {
	name := "iptables"
	if proto == goipt.ProtocolIPv6 {
		name = "ip6tables"
	}
	if backend != "" {
		name += "-" + backend
	}
	return name + suffix
}

// backendOf finds one backend's programs of the family; nil when they are
// not installed or do not run.
func backendOf(proto goipt.Protocol, backend string) *iptablesExec {
	ipt, err := goipt.New(goipt.IPFamily(proto), goipt.Path(program(proto, backend, "")))
	if err != nil {
		return nil
	}
	save, serr := exec.LookPath(program(proto, backend, "-save"))
	restore, rerr := exec.LookPath(program(proto, backend, "-restore"))
	if serr != nil || rerr != nil {
		return nil
	}
	v1, v2, v3 := ipt.GetIptablesVersion()
	return &iptablesExec{backend: backend, save: save, restore: restore, version: fmt.Sprintf("%d.%d.%d", v1, v2, v3)}
}

// detect finds the iptables backend the host's rules live in:
// iptables-nft or iptables-legacy, whichever has rules; when both or
// neither have, the one the `iptables` command is. Rules are never split
// across both. A host without iptables gets machine.ErrNoFirewall. It
// also returns the chosen backend's save output when it read one, so that
// the first observation does not run the same save again.
func detect(ctx context.Context, proto goipt.Protocol) (Tables, []byte, error) {
	backends := []string{"nft", "legacy"}
	flavours := map[string]*iptablesExec{}
	found := make([]*iptablesExec, len(backends))
	var wg sync.WaitGroup
	for i, b := range backends {
		wg.Go(func() { found[i] = backendOf(proto, b) })
	}
	wg.Wait()
	for i, b := range backends {
		if found[i] != nil {
			flavours[b] = found[i]
		}
	}
	// Both saves at once: each is a process that mostly waits on the
	// kernel, and this runs in every command that reads the firewall.
	saved := make([][]byte, len(backends))
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
	def := plainBackend(proto)
	if i := slices.Index(backends, def); i >= 0 && flavours[def] != nil {
		return flavours[def], saved[i], nil
	}
	// No suffixed programs: the plain ones, whatever they are.
	plain := backendOf(proto, "")
	if plain == nil {
		for i, b := range backends {
			if x := flavours[b]; x != nil {
				return x, saved[i], nil
			}
		}
		return nil, nil, machine.ErrNoFirewall
	}
	plain.backend = cmp.Or(def, "unknown")
	return plain, nil, nil
}

// plainBackend is the backend the plain `iptables` (or `ip6tables`) is:
// the program it links to, as Debian's alternatives make it
// (iptables-nft, xtables-legacy-multi); "" when that does not say.
func plainBackend(proto goipt.Protocol) string {
	p, err := exec.LookPath(program(proto, "", ""))
	if err != nil {
		return ""
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return ""
	}
	switch base := filepath.Base(real); {
	case strings.Contains(base, "nft"):
		return "nft"
	case strings.Contains(base, "legacy"):
		return "legacy"
	}
	return ""
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

// Kernel is the real machine.Firewall of one family: the iptables backend,
// found on first use, and the save output detection read, until an
// observation uses it or a restore makes it stale.
type Kernel struct {
	proto    goipt.Protocol
	once     sync.Once
	ipt      Tables
	err      error
	mu       sync.Mutex
	detected []byte
	// early says detection may have run before the caller took the
	// project's lock (New with prefetch); gen is nf_tables' generation
	// read before detection's saves, if genOK.
	early bool
	gen   uint32
	genOK bool
}

var _ machine.Firewall = (*Kernel)(nil)

// New returns the iptables mechanism of the family (goipt.ProtocolIPv4
// for iptables, goipt.ProtocolIPv6 for ip6tables). With prefetch it starts
// detecting the backend, which reads the firewall, in the background:
// plan, up and down do it before they parse the file and take the lock,
// and the read (two iptables-save processes, about 20 ms of CPU at N=500)
// overlaps the parse, which leaves the second CPU idle. Read before the
// lock, the rules may have changed since: the next observation uses the
// read only if nf_tables' generation is still the one read before it
// (see save).
func New(ctx context.Context, proto goipt.Protocol, prefetch bool) *Kernel {
	k := &Kernel{proto: proto, early: prefetch}
	if prefetch {
		go k.iptables(ctx)
	}
	return k
}

func (k *Kernel) iptables(ctx context.Context) (Tables, error) {
	k.once.Do(func() {
		if k.ipt == nil {
			// Only where iptables-nft is, whose save during detection
			// loads nf_tables anyway: on a host without it, the request
			// could make the kernel load the module.
			var gen uint32
			genOK := false
			if _, err := exec.LookPath(program(k.proto, "nft", "-save")); err == nil {
				g, err := nftGeneration()
				gen, genOK = g, err == nil
			}
			ipt, saved, err := detect(ctx, k.proto)
			k.mu.Lock()
			k.ipt, k.err = ipt, err
			k.detected = saved
			k.gen, k.genOK = gen, genOK
			k.mu.Unlock()
		}
	})
	return k.ipt, k.err
}

// save returns the tables as iptables-save prints them: the output
// detection read if nothing was restored since, or a fresh one. Output
// read early is used only if the rules cannot have changed since: with
// iptables-nft, nf_tables' generation is unchanged; iptables-legacy has
// no generation to compare, so it is read again.
func (k *Kernel) save(ctx context.Context, ipt Tables) ([]byte, error) {
	k.mu.Lock()
	out := k.detected
	k.detected = nil
	early, gen, genOK := k.early, k.gen, k.genOK
	k.mu.Unlock()
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

// Backend detects the iptables backend and names it ("nft", "legacy"),
// or returns machine.ErrNoFirewall.
func (k *Kernel) Backend(ctx context.Context) (string, error) {
	ipt, err := k.iptables(ctx)
	if err != nil {
		return "", err
	}
	return ipt.Backend(), nil
}

// Observe reads topo's chains of the filter and nat tables, from one
// iptables-save. A host without iptables has no rules of topo's: the
// firewall is nil.
//
// Equivalent to: `iptables-save`
func (k *Kernel) Observe(ctx context.Context) (*state.Firewall, error) {
	if k.proto == goipt.ProtocolIPv6 && !kernelHasIPv6() {
		return nil, nil
	}
	ipt, err := k.iptables(ctx)
	if errors.Is(err, machine.ErrNoFirewall) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out, err := k.save(ctx, ipt)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", program(k.proto, "", ""), err)
	}
	ts, err := firewall.ParseSave(out)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", program(k.proto, "", ""), err)
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

// kernelHasIPv6 says the kernel has IPv6, without which ip6tables has no
// tables to read.
func kernelHasIPv6() bool {
	_, err := os.Stat("/proc/sys/net/ipv6")
	return err == nil
}

// Apply runs one firewall batch as one iptables-restore.
//
// Equivalent to: `iptables-restore --noflush` fed "*TABLE", the changes and
// "COMMIT".
func (k *Kernel) Apply(ctx context.Context, o op.FirewallBatch) error {
	ipt, err := k.iptables(ctx)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.detected = nil
	k.mu.Unlock()
	return applyClamping(o.Table, o.Changes,
		func(cs []firewall.Change) error { return ipt.Restore(ctx, firewall.RestoreInput(o.Table, cs)) },
		func() ([]byte, error) { return ipt.Save(ctx) })
}

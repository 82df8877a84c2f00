package iptables

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// backends returns the iptables backends installed here; tests run on each.
func backends(t testing.TB) []*iptablesExec {
	t.Helper()
	var out []*iptablesExec
	for _, b := range []string{"nft", "legacy"} {
		save, err1 := exec.LookPath("iptables-" + b + "-save")
		restore, err2 := exec.LookPath("iptables-" + b + "-restore")
		if err1 == nil && err2 == nil {
			out = append(out, &iptablesExec{backend: b, save: save, restore: restore})
		}
	}
	if len(out) == 0 {
		t.Skip("needs iptables (Debian package iptables)")
	}
	return out
}

// flushIptables empties both tables of a backend, in the sandbox.
func flushIptables(t testing.TB, x *iptablesExec) {
	t.Helper()
	for _, table := range []string{"filter", "nat"} {
		in := fmt.Sprintf("*%s\nCOMMIT\n", table)
		cmd := exec.Command(x.restore)
		cmd.Stdin = strings.NewReader(in)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("flush %s: %v: %s", table, err, out)
		}
	}
}

func input(n int) firewall.Input {
	in := firewall.Input{Project: "bench", Networks: []firewall.Net{
		{Name: "front", Bridge: "br-front", Subnet: netip.MustParsePrefix("10.42.0.0/16")},
		{Name: "back", Bridge: "br-back", Subnet: netip.MustParsePrefix("10.43.0.0/24"), Internal: true},
	}}
	for i := range n {
		in.Publishes = append(in.Publishes, firewall.Publish{
			Container: fmt.Sprintf("c%d", i), Network: "front", Bridge: "br-front",
			Addr:   netip.AddrFrom4([4]byte{10, 42, byte((i + 2) >> 8), byte(i + 2)}),
			HostIP: netip.IPv4Unspecified(), HostPort: uint16(20000 + i), Port: 80, Proto: []string{"tcp", "udp"}[i%2],
		})
	}
	in.Publishes = append(in.Publishes, firewall.Publish{Container: "lb", Network: "front", Bridge: "br-front",
		Addr: netip.MustParseAddr("10.42.9.9"), HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8081, Port: 80, Proto: "tcp"})
	return in
}

// firewallSteps plans the changes from an empty firewall to in's rules.
func firewallSteps(in firewall.Input, have *state.Firewall) []op.Step {
	var steps []op.Step
	for _, tc := range firewall.Diff(in.Project, firewall.Generate(in), have) {
		undo := op.Step{Op: op.FirewallBatch{Table: tc.Table, Changes: firewall.Invert(tc.Changes)}}
		steps = append(steps, op.Step{Undo: &undo, Op: op.FirewallBatch{Table: tc.Table, Changes: tc.Changes}})
	}
	return steps
}

// TestFirewallRoundTrip applies generated rules with the real iptables of
// each backend and reads them back: the kernel prints them exactly as
// Generate wrote them, so plans after up are empty; the undo leaves
// nothing.
func TestFirewallRoundTrip(t *testing.T) {
	sandbox.Require(t)
	for _, x := range backends(t) {
		t.Run(x.backend, func(t *testing.T) {
			k := newKernel(t)
			k.ipt = x
			t.Cleanup(func() { flushIptables(t, x) })
			in := input(4)
			steps := firewallSteps(in, nil)
			apply(t, k, steps...)
			obs := observe(t, k, in.Project)
			if obs.Firewall.Backend != x.backend {
				t.Errorf("backend %q, want %q", obs.Firewall.Backend, x.backend)
			}
			if again := firewall.Diff(in.Project, firewall.Generate(in), obs.Firewall); len(again) != 0 {
				t.Errorf("rules read back differ from those written: %+v", again)
			}
			undo(t, k, steps)
			if obs := observe(t, k, in.Project); len(obs.Firewall.Tables) != 0 {
				t.Errorf("undo left %+v", obs.Firewall.Tables)
			}
		})
	}
}

// TestFirewallBatchIsAtomic: a batch with a bad line changes nothing.
func TestFirewallBatchIsAtomic(t *testing.T) {
	sandbox.Require(t)
	for _, x := range backends(t) {
		t.Run(x.backend, func(t *testing.T) {
			k := newKernel(t)
			k.ipt = x
			t.Cleanup(func() { flushIptables(t, x) })
			err := k.Apply(context.Background(), op.FirewallBatch{Table: "filter", Changes: []firewall.Change{
				{Op: firewall.NewChain, Chain: "TOPO-X"}, {Op: firewall.Delete, Chain: "TOPO-X", Spec: "-j DROP"}}})
			if err == nil {
				t.Fatal("deleting a missing rule succeeded")
			}
			if out, _ := x.Save(context.Background()); bytes.Contains(out, []byte("TOPO-X")) {
				t.Errorf("a failed batch left a chain:\n%s", out)
			}
		})
	}
}

// BenchmarkFirewallApply1000 measures the firewall part of an up of
// 1,000 publishes (one iptables-restore per table) and of its undo, as a
// down runs it, on each backend.
func BenchmarkFirewallApply1000(b *testing.B) {
	sandbox.Require(b)
	for _, x := range backends(b) {
		b.Run(x.backend, func(b *testing.B) {
			k := newKernel(b)
			k.ipt = x
			in := input(1000)
			steps := firewallSteps(in, nil)
			rules := 0
			for _, s := range steps {
				rules += len(s.Op.(op.FirewallBatch).Changes)
			}
			var up, down time.Duration
			for b.Loop() {
				start := time.Now()
				apply(b, k, steps...)
				up += time.Since(start)
				b.StopTimer()
				// down: planned from what is observed, as topo down does.
				obs, err := k.observe(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				start = time.Now()
				apply(b, k, firewallSteps(firewall.Input{Project: in.Project}, obs.Firewall)...)
				down += time.Since(start)
				if obs, _ := k.observe(context.Background()); len(obs.Firewall.Tables) != 0 {
					b.Fatalf("down left %+v", obs.Firewall.Tables)
				}
				b.StartTimer()
			}
			b.ReportMetric(up.Seconds()/float64(b.N), "s/apply")
			b.ReportMetric(down.Seconds()/float64(b.N), "s/down")
			b.ReportMetric(float64(rules), "changes")
		})
	}
}

// addChain makes an empty filter chain with x, outside any kernel: as
// another program would.
func addChain(t *testing.T, x *iptablesExec, name string) {
	t.Helper()
	if err := x.Restore(context.Background(), []byte("*filter\n:"+name+" - [0:0]\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
}

// wantChains fails unless an observation of k finds every chain named.
func wantChains(t *testing.T, k *Kernel, names ...string) {
	t.Helper()
	var chains []string
	for _, tb := range observe(t, k, "any").Firewall.Tables {
		for _, c := range tb.Chains {
			chains = append(chains, c.Name)
		}
	}
	for _, n := range names {
		if !slices.Contains(chains, n) {
			t.Errorf("observed chains %q, want %q among them", chains, n)
		}
	}
}

// TestDetectionSaveIsNotStale: the save that detection reads serves the
// first observation, but never one after a restore.
func TestDetectionSaveIsNotStale(t *testing.T) {
	sandbox.Require(t)
	x := backends(t)[0]
	t.Cleanup(func() { flushIptables(t, x) })
	addChain(t, x, "TOPO-DETECT")
	k := newKernel(t)
	if b, err := k.Backend(context.Background()); err != nil || b != x.backend {
		t.Fatalf("backend %q, %v; want %q, the one with rules", b, err, x.backend)
	}
	if err := k.Apply(context.Background(), op.FirewallBatch{Table: "filter", Changes: []firewall.Change{{Op: firewall.NewChain, Chain: "TOPO-LATER"}}}); err != nil {
		t.Fatal(err)
	}
	wantChains(t, k, "TOPO-DETECT", "TOPO-LATER")
}

// TestPrefetchIsNotStale: a firewall read ahead of the lock serves the
// observation only while nf_tables' generation is the one read before it.
// A change committed by another process in between (here, a restore
// outside the kernel) makes the observation read again.
func TestPrefetchIsNotStale(t *testing.T) {
	sandbox.Require(t)
	for _, x := range backends(t) {
		t.Run(x.backend, func(t *testing.T) {
			t.Cleanup(func() { flushIptables(t, x) })
			addChain(t, x, "TOPO-EARLY")
			prefetched := func(t *testing.T) (*Kernel, []byte) {
				k := New(context.Background(), goipt.ProtocolIPv4, true)
				if b, err := k.Backend(context.Background()); err != nil || b != x.backend {
					t.Fatalf("backend %q, %v; want %q, the one with rules", b, err, x.backend)
				}
				k.mu.Lock()
				defer k.mu.Unlock()
				if k.detected == nil {
					t.Fatal("detection kept no save")
				}
				return k, k.detected
			}

			// Unchanged since: the early read serves (nft), or is read
			// again (legacy has no generation).
			k, early := prefetched(t)
			out, err := k.save(context.Background(), k.ipt)
			if err != nil {
				t.Fatal(err)
			}
			if reused := &out[0] == &early[0]; reused != (x.backend == "nft") {
				t.Errorf("early read reused: %v, want %v", reused, x.backend == "nft")
			}

			// Changed since: read again, with the change.
			k, _ = prefetched(t)
			addChain(t, x, "TOPO-AFTER")
			wantChains(t, k, "TOPO-EARLY", "TOPO-AFTER")
		})
	}
}

// TestNftGeneration: every committed change moves the generation.
func TestNftGeneration(t *testing.T) {
	sandbox.Require(t)
	i := slices.IndexFunc(backends(t), func(x *iptablesExec) bool { return x.backend == "nft" })
	if i < 0 {
		t.Skip("needs iptables-nft")
	}
	x := backends(t)[i]
	t.Cleanup(func() { flushIptables(t, x) })
	g1, err := nftGeneration()
	if err != nil {
		t.Fatal(err)
	}
	if g2, err := nftGeneration(); err != nil || g2 != g1 {
		t.Fatalf("generation %d then %d (%v) with no change", g1, g2, err)
	}
	addChain(t, x, "TOPO-GEN")
	if g3, err := nftGeneration(); err != nil || g3 == g1 {
		t.Errorf("generation %d after a change, %d before (%v)", g3, g1, err)
	}
}

func newKernel(t testing.TB) *Kernel {
	t.Helper()
	return New(context.Background(), goipt.ProtocolIPv4, false)
}

// observe is a snapshot of k's firewall alone.
func (k *Kernel) observe(ctx context.Context) (*state.Snapshot, error) {
	fw, err := k.Observe(ctx)
	if fw == nil {
		fw = &state.Firewall{}
	}
	return &state.Snapshot{Firewall: fw}, err
}

func observe(t testing.TB, k *Kernel, _ string) *state.Snapshot {
	t.Helper()
	s, err := k.observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func apply(t testing.TB, k *Kernel, steps ...op.Step) {
	t.Helper()
	for _, s := range steps {
		if err := k.Apply(context.Background(), s.Op.(op.FirewallBatch)); err != nil {
			t.Fatalf("%s: %v", s.Headline(), err)
		}
	}
}

// undo applies the inverses of steps in reverse order.
func undo(t testing.TB, k *Kernel, steps []op.Step) {
	t.Helper()
	for _, s := range slices.Backward(steps) {
		apply(t, k, *s.Undo)
	}
}

// TestIPv6Family: the same mechanism, switched to ip6tables through
// go-iptables' family, finds its backend, applies a batch and reads it
// back from ip6tables-save, and leaves iptables alone.
func TestIPv6Family(t *testing.T) {
	sandbox.Require(t)
	if _, err := exec.LookPath("ip6tables-save"); err != nil {
		t.Skip("needs ip6tables (Debian package iptables)")
	}
	ctx := context.Background()
	k6 := New(ctx, goipt.ProtocolIPv6, false)
	if _, err := k6.Backend(ctx); err != nil {
		t.Fatal(err)
	}
	add := op.FirewallBatch{Table: firewall.TableFilter, Changes: []firewall.Change{{Op: firewall.NewChain, Chain: "TOPO-SIX"}, {Op: firewall.Append, Chain: "TOPO-SIX", Spec: "-s 2001:db8::/64 -j RETURN"}}}
	if err := k6.Apply(ctx, add); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k6.Apply(ctx, op.FirewallBatch{Table: firewall.TableFilter, Changes: firewall.Invert(add.Changes)})
	})
	fw, err := k6.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := fw.Table(firewall.TableFilter).Chain("TOPO-SIX"); c == nil || len(c.Rules) != 1 || c.Rules[0].Spec != "-s 2001:db8::/64 -j RETURN" {
		t.Errorf("ip6tables holds %+v", fw)
	}
	fw4, err := newKernel(t).Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fw4.Table(firewall.TableFilter).Chain("TOPO-SIX") != nil {
		t.Error("the IPv6 chain is in iptables too")
	}
}

// TestInsertPastTheEndGoesToTheEnd: putting back a rule whose position
// is past its chain's end, because others' rules before it went since (as
// the CNI bridge plugin's go with a down's DELs), lands it at the end,
// in the real tables of each backend and in the fake alike, instead of
// failing the rollback with "Index of insertion too big".
func TestInsertPastTheEndGoesToTheEnd(t *testing.T) {
	sandbox.Require(t)
	const jump = `-m comment --comment "topo:p" -j TOPO-P-POST`
	batch := op.FirewallBatch{Table: "nat", Changes: []firewall.Change{
		{Op: firewall.NewChain, Chain: "TOPO-P-POST"},
		{Op: firewall.Insert, Chain: "POSTROUTING", Pos: 3, Spec: jump},
		{Op: firewall.Insert, Chain: "POSTROUTING", Pos: 1, Spec: "-s 10.9.0.1/32 -j RETURN"},
	}}
	want := []string{"-A POSTROUTING -s 10.9.0.1/32 -j RETURN", "-A POSTROUTING -s 10.8.0.0/24 -j MASQUERADE", "-A POSTROUTING " + jump}
	postrouting := func(saved []byte) []string {
		var out []string
		for line := range strings.Lines(string(saved)) {
			if strings.HasPrefix(line, "-A POSTROUTING ") {
				out = append(out, strings.TrimSpace(line))
			}
		}
		return out
	}
	for _, x := range backends(t) {
		t.Run(x.backend, func(t *testing.T) {
			k := newKernel(t)
			k.ipt = x
			t.Cleanup(func() { flushIptables(t, x) })
			// One foreign rule where there were two before topo's jump.
			if err := x.Restore(context.Background(), []byte("*nat\n-A POSTROUTING -s 10.8.0.0/24 -j MASQUERADE\nCOMMIT\n")); err != nil {
				t.Fatal(err)
			}
			if err := k.Apply(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			saved, err := x.Save(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := postrouting(saved); !slices.Equal(got, want) {
				t.Errorf("POSTROUTING %q, want %q", got, want)
			}
		})
	}
	t.Run("fake", func(t *testing.T) {
		f := NewFake(nil)
		f.AddForeignRule("nat", "POSTROUTING", "-s 10.8.0.0/24 -j MASQUERADE")
		if err := f.Apply(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		if got := postrouting([]byte(f.Save())); !slices.Equal(got, want) {
			t.Errorf("POSTROUTING %q, want %q", got, want)
		}
	})
}

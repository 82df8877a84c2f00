package fake_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
)

func TestFakeRefusesToDeleteWhatIsNotMarked(t *testing.T) {
	ctx := context.Background()
	f := fake.New(nil)
	for _, o := range []op.Operation{
		op.NetnsAdd{NS: "p-a", Mark: names.NewMark("p", names.KindNamespace, "a")},
		op.BridgeAdd{Link: "br0"},
	} {
		if err := f.Apply(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	before := f.Dump()
	for _, o := range []op.Operation{
		op.NetnsDel{NS: "p-a", Mark: names.NewMark("q", names.KindNamespace, "a")},
		op.LinkDel{Link: "br0", Mark: names.NewMark("p", names.KindNetwork, "n")},
	} {
		if err := f.Apply(ctx, o); err == nil || !strings.Contains(err.Error(), "not topo's to delete") {
			t.Errorf("%s: err = %v", o.Command(), err)
		}
	}
	if f.Dump() != before {
		t.Error("a refused delete changed the fake")
	}
	// Missing objects are already deleted.
	if err := f.Apply(ctx, op.LinkDel{Link: "nope", Mark: names.NewMark("p", names.KindNetwork, "x")}); err != nil {
		t.Error(err)
	}
	if err := f.Apply(ctx, op.BridgeAdd{Link: "br0"}); !machine.IsExist(err) {
		t.Errorf("creating an existing link: %v", err)
	}
}

// TestFakeBatchesAsTheMachine: the fake runs the machine's batching, so
// that a down's namespace deletions run as one batch on it too.
func TestFakeBatchesAsTheMachine(t *testing.T) {
	f := fake.New(nil)
	ops := []op.Operation{
		op.NetnsDel{NS: "a"}, op.NetnsDel{NS: "b"},
		op.LinkDel{Link: "br-x", Mark: names.NewMark("p", names.KindNetwork, "x")},
		op.FileDel{NS: "a", Path: names.NetnsFile("a", names.Hosts)},
		op.NetnsAdd{NS: "c"},
	}
	if n := f.Batch(ops); n != 4 {
		t.Errorf("Batch = %d, want the namespaces, the bridge and the file (4)", n)
	}
	for i, err := range f.ApplyBatch(context.Background(), ops[:4]) {
		if err != nil {
			t.Errorf("%d: %v", i, err)
		}
	}
}

// TestNamespaceAdditionsBatch: a run of namespace additions is one batch,
// made side by side; each says whether it was done, one that fails takes
// none of the others with it.
func TestNamespaceAdditionsBatch(t *testing.T) {
	f := fake.New(nil)
	ctx := context.Background()
	if err := f.Apply(ctx, op.NetnsAdd{NS: "b"}); err != nil {
		t.Fatal(err)
	}
	ops := []op.Operation{op.NetnsAdd{NS: "a"}, op.NetnsAdd{NS: "b"}, op.NetnsAdd{NS: "c"}, op.NetnsAdd{NS: "d"}, op.BridgeAdd{Link: "br0"}}
	if n := f.Batch(ops); n != 4 {
		t.Fatalf("Batch = %d, want the namespaces (4)", n)
	}
	errs := f.ApplyBatch(ctx, ops[:4])
	for i, err := range errs {
		if want := i == 1; machine.IsExist(err) != want || (err != nil) != want {
			t.Errorf("%s: %v", ops[i].Command(), err)
		}
	}
	snap, err := f.Observe(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ns := range snap.Namespaces {
		got = append(got, ns.Name)
	}
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("namespaces %q, want %q", got, want)
	}
}

// TestFakeBatchesUpsLinksWithWhatNeedsNone: a run of veths, addresses and
// routes is one batch with the rules, files and sysctls after it, up to
// a sysctl of one of its links, which needs them.
func TestFakeBatchesUpsLinksWithWhatNeedsNone(t *testing.T) {
	f := fake.New(nil)
	ops := []op.Operation{
		op.VethAdd{Link: "va", Peer: "eth0", PeerNS: "p-a"},
		op.AddrAdd{NS: "p-a", Link: "eth0"},
		op.RouteAdd{NS: "p-a", Link: "eth0"},
		op.FirewallBatch{Table: "nat"},
		op.Sysctl{Key: names.RouteLocalnet("br0"), Value: "1"},
		op.FileWrite{NS: "p-a", Path: names.NetnsFile("p-a", names.Hosts)},
		op.Sysctl{Key: names.RouteLocalnet("va"), Value: "1"},
		op.FileWrite{NS: "p-a", Path: names.NetnsFile("p-a", names.Hosts)},
	}
	if n := f.Batch(ops); n != 6 {
		t.Errorf("Batch = %d, want up to the sysctl of the batch's own veth (6)", n)
	}
	if n := f.Batch(ops[3:]); n != 1 {
		t.Errorf("Batch without links first = %d, want 1", n)
	}
}

// TestFakeUpBatchStopsAtAFailure: once an operation of an up's batch
// fails, the links after it are not run (their errors say so, as
// op.ErrNotRun), and what ran beside them ran or was not run, never half.
func TestFakeUpBatchStopsAtAFailure(t *testing.T) {
	ctx := context.Background()
	f := fake.New(nil)
	if err := f.Apply(ctx, op.NetnsAdd{NS: "p-a", Mark: names.NewMark("p", names.KindNamespace, "a")}); err != nil {
		t.Fatal(err)
	}
	hosts := names.NetnsFile("p-a", names.Hosts)
	ops := []op.Operation{
		op.VethAdd{Link: "va", Peer: "eth0", PeerNS: "p-a"},
		op.VethAdd{Link: "vb", Peer: "eth0", PeerNS: "p-gone"}, // no such namespace
		op.VethAdd{Link: "vc", Peer: "eth1", PeerNS: "p-a"},
		op.FileWrite{NS: "p-a", Path: hosts, Content: "x\n"},
	}
	if n := f.Batch(ops); n != len(ops) {
		t.Fatalf("Batch = %d, want %d", n, len(ops))
	}
	errs := f.ApplyBatch(ctx, ops)
	if errs[0] != nil {
		t.Errorf("first veth: %v", errs[0])
	}
	if errs[1] == nil || errors.Is(errs[1], op.ErrNotRun) {
		t.Errorf("veth into a missing namespace: err = %v, want its own failure", errs[1])
	}
	if !errors.Is(errs[2], op.ErrNotRun) {
		t.Errorf("veth after the failure: err = %v, want not run", errs[2])
	}
	if f.Links.HasLink("", "vc") {
		t.Error("the veth after the failure was made")
	}
	files, _ := f.Files.ReadNetns("p-a")
	switch {
	case errs[3] == nil && files[hosts] != "x\n":
		t.Errorf("file said written, reads %q", files[hosts])
	case errs[3] != nil && (!errors.Is(errs[3], op.ErrNotRun) || files != nil):
		t.Errorf("file: err = %v, files = %v", errs[3], files)
	}
}

// TestFakeBatchesUTSDeletions: a down's run of UTS namespace deletions is
// one batch, and each goes.
func TestFakeBatchesUTSDeletions(t *testing.T) {
	ctx := context.Background()
	f := fake.New(nil)
	var ops []op.Operation
	for _, c := range []string{"a", "b", "c"} {
		p := names.DefaultRuntime.UTS("p", c)
		if err := f.Apply(ctx, op.UTSAdd{Path: p, Hostname: c}); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op.UTSDel{Path: p})
	}
	ops = append(ops, op.NetnsDel{NS: "p-a"})
	if n := f.Batch(ops); n != 3 {
		t.Fatalf("Batch = %d, want the 3 UTS deletions", n)
	}
	for i, err := range f.ApplyBatch(ctx, ops[:3]) {
		if err != nil {
			t.Errorf("%s: %v", ops[i].Command(), err)
		}
	}
	for _, o := range ops[:3] {
		if p := o.(op.UTSDel).Path; f.UTS.Has(p) {
			t.Errorf("%s still there", p)
		}
	}
}

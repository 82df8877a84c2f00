package fake_test

import (
	"context"
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

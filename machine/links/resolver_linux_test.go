package links

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/resolver/records"
)

func TestDNSFilesAndRecords(t *testing.T) {
	k := newKernel(t)
	ctx := context.Background()
	apply := func(s op.Step) error { return k.Apply(ctx, s) }
	if err := apply(op.Step{Op: op.NetnsAdd{NS: "p-a", Mark: mustMark("topo:p:ns:a")}}); err != nil {
		t.Fatal(err)
	}
	rc := names.NetnsFile("p-a", "resolv.conf")
	if err := apply(op.Step{Op: op.FileWrite{NS: "p-a", Path: rc, Content: "nameserver 127.0.0.11\n"}}); err != nil {
		t.Fatal(err)
	}
	// Only resolv.conf and hosts of the step's own namespace folder. (The
	// paths stay under /etc/netns, the sandbox's own tmpfs, should the
	// check ever fail.)
	for _, p := range []string{"/etc/netns/p-b/hosts", "/etc/netns/p-a/passwd", "/etc/netns/p-a/x/hosts", "/etc/netns/p-a/../p-b/hosts"} {
		if err := apply(op.Step{Op: op.FileWrite{NS: "p-a", Path: p, Content: "x"}}); err == nil {
			t.Errorf("wrote %s", p)
		}
		if _, err := os.Stat(filepath.Clean(p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists", p)
		}
	}
	doc := records.Encode(&records.Document{Project: "p", Namespaces: []records.Namespace{{Name: "p-a", Containers: []string{"a"}}}})
	if err := apply(op.Step{Op: op.RecordsWrite{Project: "p", Content: string(doc)}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(op.Step{Op: op.RecordsWrite{Project: "p", Content: "{not json"}}); err == nil {
		t.Error("wrote a records document that does not decode")
	}
	obs, err := k.Observe(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if obs.Files[rc] != "nameserver 127.0.0.11\n" || len(obs.Files) != 1 {
		t.Errorf("observed files %v", obs.Files)
	}
	if r := obs.Resolver; r == nil || r.Records != string(doc) || r.Alive || r.PID != 0 {
		t.Errorf("observed resolver %+v, want the records and no process", r)
	}
	// A reload needs a running resolver.
	if err := apply(op.Step{Op: op.ResolverReload{Project: "p"}}); err == nil {
		t.Error("reloaded a resolver that does not run")
	}

	if err := apply(op.Step{Op: op.FileDel{NS: "p-a", Path: rc}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/etc/netns/p-a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/etc/netns/p-a left: %v", err)
	}
	if err := apply(op.Step{Op: op.RecordsDel{Project: "p"}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(op.Step{Op: op.ResolverStop{Project: "p"}}); err != nil {
		t.Errorf("stopping a resolver that does not run: %v", err)
	}
	obs, _ = k.Observe(ctx, "p")
	if obs.Resolver != nil || len(obs.Files) != 0 {
		t.Errorf("after removal: resolver %+v, files %v", obs.Resolver, obs.Files)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("TOPO_STATE_DIR"), "p")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("runtime folder left: %v", err)
	}
}

// TestResolverStopBatch stops a running resolver in one batch with its
// records' removal and the deletion of the namespaces it listens in, as a
// down's first steps are: every step is done, the resolver's process ends,
// and its files and the namespaces are gone.
func TestResolverStopBatch(t *testing.T) {
	k := newKernel(t)
	ctx := context.Background()
	apply := func(s op.Step) {
		t.Helper()
		if err := k.Apply(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	doc := records.Document{Project: "p"}
	steps := []op.Step{
		{Action: op.Destroy, Op: op.ResolverStop{Project: "p"}},
		{Action: op.Destroy, Op: op.RecordsDel{Project: "p"}},
	}
	for _, name := range []string{"a", "b"} {
		ns, alias := "p-"+name, "topo:p:ns:"+name
		apply(op.Step{Op: op.NetnsAdd{NS: ns, Mark: mustMark(alias)}})
		doc.Namespaces = append(doc.Namespaces, records.Namespace{Name: ns, Containers: []string{name}})
		steps = append(steps, op.Step{Action: op.Destroy, Op: op.NetnsDel{NS: ns, Mark: mustMark(alias)}})
	}
	apply(op.Step{Op: op.RecordsWrite{Project: "p", Content: string(records.Encode(&doc))}})
	apply(op.Step{Op: op.ResolverStart{Project: "p"}})
	obs, err := k.Observe(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	r := obs.Resolver
	if r == nil || !r.Alive || len(r.Listening) != 2 {
		t.Fatalf("resolver before the batch: %+v, want one alive in 2 namespaces", r)
	}

	if n := k.Batch(steps); n != len(steps) {
		t.Fatalf("Batch = %d, want %d", n, len(steps))
	}
	for i, err := range k.ApplyBatch(ctx, steps) {
		if err != nil {
			t.Errorf("step %s: %v", steps[i].Command(), err)
		}
	}
	k.Settle(ctx)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.PID)); err == nil {
		// A zombie is an ended process its parent has not reaped yet.
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) == 0 || f[0] != "Z" {
			t.Errorf("resolver %d still runs: %s", r.PID, b)
		}
	}
	obs, err = k.Observe(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if obs.Resolver != nil {
		t.Errorf("resolver after the batch: %+v", obs.Resolver)
	}
	for _, n := range obs.Namespaces {
		t.Errorf("namespace %s is still there", n.Name)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("TOPO_STATE_DIR"), "p")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("runtime folder left: %v", err)
	}
	// Without namespace deletions after them, the resolver's steps run
	// alone.
	if n := k.Batch(steps[:2]); n != 1 {
		t.Errorf("Batch of the resolver's steps alone = %d, want 1", n)
	}
}

package journal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/topolab/topo/planner"
)

func step(ns string) planner.Step {
	undo := planner.Step{Action: planner.Destroy, Op: planner.OpNetnsDel, Resource: "container " + ns, NS: ns}
	return planner.Step{Action: planner.Create, Op: planner.OpNetnsAdd, Resource: "container " + ns, NS: ns, Alias: "topo:p:ns:" + ns, Undo: &undo}
}

func TestPendingStates(t *testing.T) {
	dir := t.TempDir()
	if p, err := Read(dir); p != nil || err != nil {
		t.Fatalf("no journal: %v, %v", p, err)
	}
	w, err := Begin(dir, "up", 6)
	if err != nil {
		t.Fatal(err)
	}
	for i, ns := range []string{"a", "b", "c", "d", "e"} {
		if err := w.Start(i, step(ns)); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0, 1, 2:
			w.Finish(i, nil)
		case 3:
			w.Finish(i, errors.New("boom"))
		}
	}
	// e (4) is in flight; the rollback has begun: c undone, b undoing.
	w.Undo(2)
	w.Undone(2, nil)
	w.Undo(1)
	w.Close()
	p, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &Pending{Verb: "up", Pid: os.Getpid(), Steps: 6, Entries: []Entry{
		{0, step("a"), Done, ""},
		{1, step("b"), Undoing, ""},
		{2, step("c"), Undone, ""},
		{3, step("d"), Failed, "boom"},
		{4, step("e"), Started, ""},
	}}
	if d := cmp.Diff(want, p, cmpopts.IgnoreFields(Pending{}, "Time")); d != "" {
		t.Errorf("pending (-want +got):\n%s", d)
	}
	if p.Done() != 3 || !strings.Contains(p.Summary(), "started 5 of 6 steps, 3 of them still in effect") {
		t.Errorf("Done %d, Summary %q", p.Done(), p.Summary())
	}

	// Recovery appends to the same journal and ends it.
	w, err = Append(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Undone(1, nil)
	if p, _ := Read(dir); p == nil || p.Entries[1].State != Undone {
		t.Fatalf("after appending: %+v", p)
	}
	if err := w.End(RecRecovered); err != nil {
		t.Fatal(err)
	}
	if p, err := Read(dir); p != nil || err != nil {
		t.Fatalf("after the end record: %+v, %v", p, err)
	}
	// A new transaction replaces the old one.
	w, _ = Begin(dir, "down", 1)
	w.Close()
	if p, _ := Read(dir); p == nil || p.Verb != "down" || len(p.Entries) != 0 {
		t.Fatalf("new transaction: %+v", p)
	}
}

// TestStartRun: a run's start records, written at once, number its steps
// from the first; each then finishes on its own.
func TestStartRun(t *testing.T) {
	dir := t.TempDir()
	w, err := Begin(dir, "down", 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(0, step("a")); err != nil {
		t.Fatal(err)
	}
	w.Finish(0, nil)
	if err := w.Start(1, step("b"), step("c"), step("d")); err != nil {
		t.Fatal(err)
	}
	w.Finish(2, nil)
	w.Close()
	p, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{0, step("a"), Done, ""},
		{1, step("b"), Started, ""},
		{2, step("c"), Done, ""},
		{3, step("d"), Started, ""},
	}
	if d := cmp.Diff(want, p.Entries); d != "" {
		t.Errorf("entries (-want +got):\n%s", d)
	}
}

// TestTornLastLine: a crash in the middle of a write leaves half a record;
// it is ignored, and recovery's records follow on a line of their own.
func TestTornLastLine(t *testing.T) {
	dir := t.TempDir()
	w, _ := Begin(dir, "up", 2)
	w.Start(0, step("a"))
	w.Finish(0, nil)
	w.Close()
	f, _ := os.OpenFile(filepath.Join(dir, FileName), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"rec":"start","i":1,"step":{"act`)
	f.Close()
	p, err := Read(dir)
	if err != nil || p == nil || len(p.Entries) != 1 || p.Entries[0].State != Done {
		t.Fatalf("torn journal: %+v, %v", p, err)
	}
	w, err = Append(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Undo(0)
	w.Undone(0, nil)
	w.Close()
	p, err = Read(dir)
	if err != nil || p == nil || p.Entries[0].State != Undone {
		t.Fatalf("after append: %+v, %v", p, err)
	}
	// Damage anywhere else is reported, not skipped.
	os.WriteFile(filepath.Join(dir, FileName), []byte("{\"rec\":\"begin\"}\nnot json\n{\"rec\":\"commit\"}\n"), 0o644)
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), ":2:") {
		t.Errorf("damaged journal: %v, want an error at line 2", err)
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	w, _ := Begin(dir, "up", 0)
	w.End(RecCommit)
	if err := Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

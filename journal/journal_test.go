package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
)

func step(ns string) op.Step {
	undo := op.Step{Action: op.Destroy, Ref: op.Container(ns), Op: op.NetnsDel{NS: ns}}
	return op.Step{Action: op.Create, Ref: op.Container(ns), Op: op.NetnsAdd{NS: ns, Mark: names.NewMark("p", names.KindNamespace, ns)}, Undo: &undo}
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
	want := &Pending{Format: Format, Verb: "up", Pid: os.Getpid(), Steps: 6, Entries: []Entry{
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

// TestReadsEarlierJournals reads the journals of an interrupted up and
// down that topo wrote before journals had a format (e2e/testdata/journal,
// kept as that binary wrote them): format 0, every step typed, each with
// the command and undo it had.
func TestReadsEarlierJournals(t *testing.T) {
	for _, c := range []struct {
		file, verb   string
		steps, count int
		last         string
	}{
		{"up.journal", "up", 29, 29, "ip netns exec jfix-web sleep 3600 >>/run/topo/jfix/containers/web.log 2>&1 &"},
		{"down.journal", "down", 18, 12, "rm -f /etc/netns/jfix-tools/resolv.conf"},
	} {
		t.Run(c.verb, func(t *testing.T) {
			dir := t.TempDir()
			b, err := os.ReadFile(filepath.Join("..", "e2e", "testdata", "journal", c.file))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			if p == nil || p.Format != 0 || p.Verb != c.verb || p.Steps != c.steps || len(p.Entries) != c.count {
				t.Fatalf("pending = %+v", p)
			}
			last := p.Entries[len(p.Entries)-1]
			if last.State != Started || last.Step.Command() != c.last || last.Step.Undo == nil {
				t.Errorf("last entry: %s %q, undo %v", last.State, last.Step.Command(), last.Step.Undo)
			}
			for _, e := range p.Entries {
				if e.Step.Undo == nil {
					t.Errorf("step %d (%s) has no undo", e.Index, e.Step.Command())
				}
			}
			// Written again in today's format, each step reads back the same.
			w, err := Begin(dir, c.verb, p.Steps)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Entries {
				if err := w.Start(e.Index, e.Step); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			again, err := Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			if again.Format != Format {
				t.Errorf("format %d, want %d", again.Format, Format)
			}
			for i := range p.Entries {
				if a, b := p.Entries[i].Step.Command(), again.Entries[i].Step.Command(); a != b {
					t.Errorf("step %d: %q read back as %q", i, a, b)
				}
			}
		})
	}
}

// TestRefusesLaterFormat: a journal of a later topo is not misread.
func TestRefusesLaterFormat(t *testing.T) {
	dir := t.TempDir()
	line := `{"rec":"begin","format":99,"verb":"up","pid":1,"steps":1,"i":0}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "format 99, written by a later topo") {
		t.Errorf("err = %v", err)
	}
}

// TestStartRounds: a run longer than a write's round is recorded whole,
// every record the line json.Marshal makes of it (the step spliced in from
// its own encoding), in order.
func TestStartRounds(t *testing.T) {
	dir := t.TempDir()
	w, err := Begin(dir, "down", 2*writeRound+3)
	if err != nil {
		t.Fatal(err)
	}
	var steps []op.Step
	for i := range 2*writeRound + 3 {
		steps = append(steps, step(fmt.Sprintf("n<%d>&", i))) // <, > and & as json.Marshal escapes them
	}
	if err := w.Start(0, steps...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 1+len(steps) {
		t.Fatalf("%d lines, want the begin record and %d starts", len(lines), len(steps))
	}
	for i, line := range lines[1:] {
		want, err := json.Marshal(record{Rec: recStart, I: i, Step: &steps[i]})
		if err != nil {
			t.Fatal(err)
		}
		if line != string(want) {
			t.Fatalf("record %d:\n%s\nwant\n%s", i, line, want)
		}
	}
	p, err := Read(dir)
	if err != nil || len(p.Entries) != len(steps) || !cmp.Equal(p.Entries[len(steps)-1].Step, steps[len(steps)-1]) {
		t.Fatalf("read back: %v, %d entries", err, len(p.Entries))
	}
}

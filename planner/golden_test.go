package planner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/topolab/topo/internal/golden"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/view"
)

// TestGolden plans each testdata/<case>/topo.yaml against the case's
// observed.json (an empty host when absent) and compares the human and JSON
// renderings with plan.golden and plan.json.golden.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/topo.yaml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, file := range dirs {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			f, err := spec.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			obs := &state.Snapshot{}
			if b, err := os.ReadFile(filepath.Join(dir, "observed.json")); err == nil {
				if err := json.Unmarshal(b, obs); err != nil {
					t.Fatal(err)
				}
			}
			var human, js bytes.Buffer
			p, _, err := planner.Up(f, obs, planner.Options{})
			if err != nil {
				human.WriteString("error: " + err.Error() + "\n")
			} else {
				if err := view.NewPlanView(&human, false).Plan(p); err != nil {
					t.Fatal(err)
				}
				if err := view.NewPlanView(&js, true).Plan(p); err != nil {
					t.Fatal(err)
				}
			}
			golden.Compare(t, filepath.Join(dir, "plan.golden"), human.Bytes())
			if js.Len() > 0 {
				golden.Compare(t, filepath.Join(dir, "plan.json.golden"), js.Bytes())
			}
			// The same inputs give the same bytes.
			if p != nil {
				p2, _, _ := planner.Up(f, obs, planner.Options{})
				var again bytes.Buffer
				view.NewPlanView(&again, false).Plan(p2)
				if !bytes.Equal(again.Bytes(), human.Bytes()) {
					t.Error("a second plan of the same inputs differs")
				}
			}
		})
	}
}

// TestGoldenSeeds regenerates observed.json, with -update, for the cases
// that have a seed.yaml: the seed is brought up on a fake kernel, then the
// links named in seed-drop.txt (one "NS LINK" per line, "-" for the host)
// are deleted by hand, as drift.
func TestGoldenSeeds(t *testing.T) {
	seeds, _ := filepath.Glob("testdata/*/seed.yaml")
	for _, seed := range seeds {
		dir := filepath.Dir(seed)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			f, err := spec.Load(seed)
			if err != nil {
				t.Fatal(err)
			}
			k := fake.New(nil)
			up(t, k, f)
			if b, err := os.ReadFile(filepath.Join(dir, "seed-drop.txt")); err == nil {
				for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
					ns, link, _ := strings.Cut(line, " ")
					if ns == "-" {
						ns = ""
					}
					if err := k.Apply(context.Background(), op.LinkDel{NS: ns, Link: link}); err != nil {
						t.Fatal(err)
					}
				}
			}
			obs, _ := k.Observe(context.Background(), f.Project)
			got, err := json.MarshalIndent(obs, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Compare(t, filepath.Join(dir, "observed.json"), append(got, '\n'))
		})
	}
}

package planner_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

func TestTmpFixtures(t *testing.T) {
	goldens, _ := filepath.Glob("testdata/*/topo.yaml")
	for _, file := range goldens {
		dir := filepath.Dir(file)
		f, err := spec.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, verb := range []string{"up", "down"} {
			obs := &state.Snapshot{}
			if b, err := os.ReadFile(filepath.Join(dir, "observed.json")); err == nil {
				json.Unmarshal(b, obs)
			}
			var p *planner.Plan
			if verb == "up" {
				p, _, err = planner.Up(f, obs, planner.Options{})
			} else {
				p = planner.Down(f.Project, obs, planner.Options{})
			}
			fd := filepath.Join("testdata/before", "golden-"+filepath.Base(dir)+"-"+verb)
			if err != nil {
				want, _ := os.ReadFile(fd + "/error.txt")
				if string(want) != err.Error()+"\n" {
					t.Errorf("%s: %v", fd, err)
				}
				continue
			}
			var h, j bytes.Buffer
			p.Render(&h)
			p.RenderJSON(&j)
			for name, got := range map[string][]byte{"plan.txt": h.Bytes(), "plan.json": j.Bytes()} {
				want, _ := os.ReadFile(fd + "/" + name)
				if !bytes.Equal(want, got) {
					t.Errorf("%s/%s:\n%s", fd, name, cmp.Diff(string(want), string(got)))
				}
			}
		}
	}
}

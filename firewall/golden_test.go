package firewall_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/internal/golden"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/view"
)

// TestGolden brings up, on a fake kernel, testdata/<case>/other.yaml when
// there is one (another project already on the host), then topo.yaml, and
// compares the whole rule set with rules.golden. hostports.json, when
// present, is the host's ports. Each case also checks that what was
// applied is what Generate asked for, that a second plan is empty, and
// that down restores the rules as they were before.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*/topo.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, file := range files {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			k := fake.New(nil)
			if b, err := os.ReadFile(filepath.Join(dir, "hostports.json")); err == nil {
				ports := &state.HostPorts{}
				if err := json.Unmarshal(b, ports); err != nil {
					t.Fatal(err)
				}
				k.SetPorts(ports)
			}
			k.Firewall.AddForeignRule("filter", "FORWARD", `-s 198.51.100.0/24 -m comment --comment "not topo" -j DROP`)
			k.Firewall.AddForeignRule("nat", "POSTROUTING", `-s 192.0.2.0/24 -j MASQUERADE`)
			if other := filepath.Join(dir, "other.yaml"); exists(other) {
				up(t, k, load(t, other))
			}
			before := k.Firewall.Save()
			f := load(t, file)
			m := up(t, k, f)
			got := k.Firewall.Save()
			golden.Compare(t, filepath.Join(dir, "rules.golden"), []byte(got))

			// The project's chains hold exactly what Generate asked for.
			obs, _ := k.Observe(context.Background(), f.Project)
			want := firewall.Generate(planner.FirewallInput(m, firewall.IPv4))
			for _, wt := range want.Tables {
				for _, wc := range wt.Chains {
					if wc.Builtin || wc.Name == names.ChainUser || !strings.HasPrefix(wc.Name, names.ChainPrefixOf(f.Project)) {
						continue
					}
					hc := obs.Firewall.Table(wt.Name).Chain(wc.Name)
					if hc == nil {
						t.Fatalf("chain %s missing", wc.Name)
					}
					if d := cmp.Diff(wc.Rules, hc.Rules); d != "" {
						t.Errorf("chain %s (-want +got):\n%s", wc.Name, d)
					}
				}
			}
			if p, _, err := planner.Up(f, obs, planner.Options{}); err != nil || !p.Empty() {
				var b strings.Builder
				if p != nil {
					view.NewPlanView(&b, false).Plan(p)
				}
				t.Errorf("second plan is not empty (%v):\n%s", err, b.String())
			}
			obs, _ = k.Observe(context.Background(), f.Project)
			if err := (&applier.Applier{Machine: k}).Apply(context.Background(), planner.Down(f.Project, obs, planner.Options{})); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(before, k.Firewall.Save()); d != "" {
				t.Errorf("down left rules (-before +after):\n%s", d)
			}
		})
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func load(t *testing.T, path string) *spec.File {
	t.Helper()
	f, err := spec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func up(t *testing.T, k *fake.Machine, f *spec.File) *planner.Model {
	t.Helper()
	obs, _ := k.Observe(context.Background(), f.Project)
	p, m, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return m
}

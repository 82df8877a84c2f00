package view_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/internal/golden"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/view"
)

func init() {
	// Views name runtime files; goldens assume the default root.
	os.Unsetenv("TOPO_STATE_DIR")
}

const modes = `name: modes
networks:
  lan: {subnet: 10.77.0.0/24}
containers:
  main:
    networks:
      lan: {aliases: [primary]}
    command: [sleep, infinity]
  side:
    network_mode: container:main
    command: [python3, -m, http.server, "8000"]
  iso:
    network_mode: none
    command: [sh, -c, "echo 'it\"s'; sleep 1"]
  agent:
    network_mode: host
  quiet:
    networks: [lan]
`

// cases are projects in a known state: the file, and what to do on the
// fake kernel before looking.
var cases = []struct {
	name, file string
	prepare    func(t *testing.T, k *fake.Machine, f *spec.File)
	inspect    []string
}{
	{"shop-up", "../examples/shop/topo.yaml", upOn, []string{"front", "back", "web", "probe", "tools"}},
	{"shop-down", "../examples/shop/topo.yaml", func(*testing.T, *fake.Machine, *spec.File) {}, []string{"front", "web"}},
	{"modes", "", func(t *testing.T, k *fake.Machine, f *spec.File) {
		upOn(t, k, f)
		k.Processes.Exit(names.DefaultRuntime.PidFile("modes", "iso")) // iso's command has ended
	}, []string{"lan", "main", "side", "iso", "agent"}},
	{"health", "", func(t *testing.T, k *fake.Machine, f *spec.File) {
		upOn(t, k, f)
		k.Processes.SetHealth(names.DefaultRuntime.PidFile("modes", "main"), &state.Health{Status: "unhealthy", FailingStreak: 3, LastExitCode: 1, LastOutput: "connection\nrefused\n"})
		k.Processes.SetHealth(names.DefaultRuntime.PidFile("modes", "side"), &state.Health{Status: "healthy"})
	}, []string{"main", "side"}},
	// Seen from h1, the file's first host, up.
	{"overlay", "testdata/overlay/topo.yaml", upOn, []string{"mesh", "lan", "a", "b"}},
	{"dualstack-up", "../examples/dualstack/topo.yaml", upOn, []string{"front", "back", "inner", "web"}},
}

func upOn(t *testing.T, k *fake.Machine, f *spec.File) {
	t.Helper()
	obs, _ := k.Observe(context.Background(), f.Project)
	p, _, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func input(t *testing.T, file string, prepare func(*testing.T, *fake.Machine, *spec.File)) *view.Input {
	t.Helper()
	var f *spec.File
	var err error
	if file == "" {
		f, err = spec.Parse("/lab/modes/topo.yaml", []byte(modes))
	} else {
		f, err = spec.Load(file)
	}
	if err != nil {
		t.Fatal(err)
	}
	var seed *state.Snapshot
	if len(f.Hosts) > 0 {
		// The machine is the first host: it has its address.
		seed = &state.Snapshot{Host: state.Namespace{Links: []state.Link{{Name: "eth0", Kind: "veth", Up: true, MTU: 1500, Addrs: []string{f.Hosts[0].Address.String() + "/24"}}}}}
	}
	k := fake.New(seed)
	prepare(t, k, f)
	obs, _ := k.Observe(context.Background(), f.Project)
	m, err := planner.Desire(f, obs)
	if err != nil {
		t.Fatal(err)
	}
	return &view.Input{File: f, Model: m, Obs: obs}
}

// TestGolden renders ps, inspect and graph of each case, as text and JSON,
// and compares them with testdata/<case>/.
func TestGolden(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := input(t, c.file, c.prepare)
			dir := filepath.Join("testdata", c.name)
			ps := view.BuildPS(in)
			renderGolden(t, dir, "ps.json", func(b *bytes.Buffer) error { return view.RenderJSON(b, ps) })
			renderGolden(t, dir, "ps.txt", func(b *bytes.Buffer) error { return ps.Render(b) })
			for _, name := range c.inspect {
				d, err := view.Inspect(in, name, "")
				if err != nil {
					t.Fatal(err)
				}
				renderGolden(t, dir, "inspect-"+name+".json", func(b *bytes.Buffer) error { return view.RenderJSON(b, d) })
				renderGolden(t, dir, "inspect-"+name+".txt", func(b *bytes.Buffer) error {
					return d.(interface{ Render(w io.Writer) error }).Render(b)
				})
			}
			renderGolden(t, dir, "graph.dot", func(b *bytes.Buffer) error { return view.RenderGraph(b, in, view.FormatDot) })
			renderGolden(t, dir, "graph.mmd", func(b *bytes.Buffer) error { return view.RenderGraph(b, in, view.FormatMermaid) })
		})
	}
}

func renderGolden(t *testing.T, dir, name string, render func(*bytes.Buffer) error) {
	t.Helper()
	var b bytes.Buffer
	if err := render(&b); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	golden.Compare(t, filepath.Join(dir, name), b.Bytes())
}

// TestJSONShapes pins what README.md documents: field names and types of
// ps and inspect, read back from the JSON.
func TestJSONShapes(t *testing.T) {
	in := input(t, "", cases[2].prepare)
	var ps struct {
		FormatVersion string `json:"format_version"`
		Project       string `json:"project"`
		Containers    []struct {
			Name        string `json:"name"`
			State       string `json:"state"`
			NetworkMode string `json:"network_mode"`
			Netns       string `json:"netns"`
			Networks    []struct {
				Network   string `json:"network"`
				Interface string `json:"interface"`
				Address   string `json:"address"`
			} `json:"networks"`
			Ports   []view.Port `json:"ports"`
			Command []string    `json:"command"`
			PID     int         `json:"pid"`
		} `json:"containers"`
	}
	var b bytes.Buffer
	view.RenderJSON(&b, view.BuildPS(in))
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ps); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range ps.Containers {
		addr := ""
		if len(c.Networks) > 0 {
			addr = c.Networks[0].Address
		}
		got[c.Name] = c.State + " " + c.NetworkMode + " " + c.Netns + " " + addr
	}
	want := map[string]string{
		"main":  "running bridge modes-main 10.77.0.2/24",
		"side":  "running container:main modes-main 10.77.0.2/24", // main's address
		"iso":   "exited none modes-iso ",
		"agent": "up host  ",
		"quiet": "up bridge modes-quiet 10.77.0.3/24",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ps (-want +got):\n%s", d)
	}
	if _, err := view.Inspect(in, "nope", ""); err == nil || !strings.Contains(err.Error(), "no such network or container") {
		t.Errorf("inspect of an unknown name: %v", err)
	}
}

// TestDotRenders feeds each golden graph to Graphviz.
func TestDotRenders(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("needs Graphviz's dot (Debian package graphviz)")
	}
	files, _ := filepath.Glob("testdata/*/graph.dot")
	if len(files) == 0 {
		t.Fatal("no graphs")
	}
	for _, f := range files {
		out, err := exec.Command(dot, "-Tsvg", f).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("<svg")) || bytes.Contains(out, []byte("Warning")) {
			t.Errorf("dot -Tsvg %s: %v\n%.400s", f, err, out)
		}
	}
}

// TestInspectMTU: inspect shows a network's MTU, the file's while the
// network is down, the bridge's in the kernel once it is up, even when
// someone changed it by hand.
func TestInspectMTU(t *testing.T) {
	f, err := spec.Parse("/lab/mtu/topo.yaml", []byte("networks:\n  lan: {mtu: 1400}\n  plain: {}\ncontainers:\n  a: {networks: [lan, plain]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := fake.New(nil)
	mtu := func(network string) int {
		t.Helper()
		obs, _ := k.Observe(context.Background(), f.Project)
		m, err := planner.Desire(f, obs)
		if err != nil {
			t.Fatal(err)
		}
		d, err := view.Inspect(&view.Input{File: f, Model: m, Obs: obs}, network, "network")
		if err != nil {
			t.Fatal(err)
		}
		return d.(*view.NetworkDetail).MTU
	}
	if got, got2 := mtu("lan"), mtu("plain"); got != 1400 || got2 != 1500 {
		t.Errorf("down: lan's mtu %d, plain's %d; want 1400 and 1500", got, got2)
	}
	upOn(t, k, f)
	if got := mtu("lan"); got != 1400 {
		t.Errorf("up: lan's mtu %d, want 1400", got)
	}
	if err := k.Links.LinkSetMTU(op.LinkSetMTU{Link: names.Bridge(f.Project, "lan"), MTU: 1300}); err != nil {
		t.Fatal(err)
	}
	if got := mtu("lan"); got != 1300 {
		t.Errorf("after the bridge's MTU was set by hand to 1300: inspect says %d", got)
	}
}

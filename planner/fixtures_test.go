package planner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/view"
)

// The fixtures under testdata/before are plans as the code before issue
// 17's restructuring printed them, human and JSON, for every golden case
// (up and down), every example (up from nothing, the no-op plan after it,
// and down) and the transaction proofs' plans (a creation with destroys,
// its down, and each in-place change). They are not golden files: -update
// does not rewrite them, since the restructuring must print the same bytes.
// TOPO_WRITE_FIXTURES=1 writes them, which only the commit that made them
// did. A file that uses a feature added since (mtu:, IPv6, links, routes,
// sysctls…) is not among them.

// fixtureCase is one plan to compare: name is its folder under
// testdata/before.
type fixtureCase struct {
	name string
	plan func(t *testing.T) (*planner.Plan, error)
}

func TestFixtures(t *testing.T) {
	var cases []fixtureCase
	goldens, _ := filepath.Glob("testdata/*/topo.yaml")
	for _, file := range goldens {
		dir := filepath.Dir(file)
		if addedSince(t, file) || usesHosts(file) {
			continue // a feature added since: no plan of it before
		}
		load := func(t *testing.T) (*spec.File, *state.Snapshot) {
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
			return f, obs
		}
		cases = append(cases,
			fixtureCase{"golden-" + filepath.Base(dir) + "-up", func(t *testing.T) (*planner.Plan, error) {
				f, obs := load(t)
				p, _, err := planner.Up(f, obs, planner.Options{})
				return p, err
			}},
			fixtureCase{"golden-" + filepath.Base(dir) + "-down", func(t *testing.T) (*planner.Plan, error) {
				f, obs := load(t)
				return planner.Down(f.Project, obs, planner.Options{}), nil
			}})
	}
	examples, _ := filepath.Glob("../examples/*/topo.yaml")
	for _, file := range examples {
		if addedSince(t, file) || usesHosts(file) {
			continue
		}
		name := "example-" + filepath.Base(filepath.Dir(file))
		load := func(t *testing.T) *spec.File {
			f, err := spec.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		cases = append(cases,
			fixtureCase{name + "-up", func(t *testing.T) (*planner.Plan, error) {
				p, _, err := planner.Up(load(t), &state.Snapshot{}, planner.Options{})
				return p, err
			}},
			fixtureCase{name + "-noop", func(t *testing.T) (*planner.Plan, error) {
				f := load(t)
				k := fake.New(nil)
				fixtureUp(t, k, f)
				p, _, err := planner.Up(f, fixtureObserve(t, k, f.Project), planner.Options{})
				return p, err
			}},
			fixtureCase{name + "-down", func(t *testing.T) (*planner.Plan, error) {
				f := load(t)
				k := fake.New(nil)
				fixtureUp(t, k, f)
				return planner.Down(f.Project, fixtureObserve(t, k, f.Project), planner.Options{}), nil
			}})
	}
	// The Compose projects of testdata/compose, as they are with the
	// stand-ins of their test.yaml, from nothing.
	projects, _ := filepath.Glob("../testdata/compose/*/compose.yaml")
	for _, file := range projects {
		dir := filepath.Dir(file)
		files := []string{file}
		if _, err := os.Stat(filepath.Join(dir, "test.yaml")); err == nil {
			files = append(files, filepath.Join(dir, "test.yaml"))
		}
		load := func() (*spec.File, error) {
			return spec.LoadFiles(spec.Options{Files: files, Env: func(string) (string, bool) { return "", false }})
		}
		if f, err := load(); err == nil && usesLater(f) {
			continue
		}
		cases = append(cases, fixtureCase{"compose-" + filepath.Base(dir) + "-up", func(t *testing.T) (*planner.Plan, error) {
			f, err := load()
			if err != nil {
				return nil, err
			}
			if usesLabs(f) {
				t.Skip("uses sysctls, which topo reads since the fixtures were made")
			}
			p, _, err := planner.Up(f, &state.Snapshot{}, planner.Options{})
			return p, err
		}})
	}
	cases = append(cases,
		fixtureCase{"txn-create", func(t *testing.T) (*planner.Plan, error) {
			k := fake.New(nil)
			fixtureUp(t, k, parse(t, fixtureSeed))
			p, _, err := planner.Up(parse(t, fixtureBig), fixtureObserve(t, k, "rb"), planner.Options{})
			return p, err
		}},
		fixtureCase{"txn-down", func(t *testing.T) (*planner.Plan, error) {
			k := fake.New(nil)
			fixtureUp(t, k, parse(t, fixtureBig))
			return planner.Down("rb", fixtureObserve(t, k, "rb"), planner.Options{}), nil
		}},
		fixtureCase{"txn-replace", func(t *testing.T) (*planner.Plan, error) {
			// From the big file back to the seed: every kind of destroy.
			k := fake.New(nil)
			fixtureUp(t, k, parse(t, fixtureBig))
			p, _, err := planner.Up(parse(t, fixtureSeed), fixtureObserve(t, k, "rb"), planner.Options{})
			return p, err
		}})
	for _, c := range fixtureInPlace {
		cases = append(cases, fixtureCase{"txn-inplace-" + c.name, func(t *testing.T) (*planner.Plan, error) {
			k := fake.New(nil)
			fixtureUp(t, k, parse(t, fixtureBase))
			changed := strings.Replace(fixtureBase, c.old, c.new, 1)
			if c.name == "subnet" {
				changed = strings.Replace(changed, "10.99.1.10", "10.99.5.10", 1)
			}
			p, _, err := planner.Up(parse(t, changed), fixtureObserve(t, k, "rb"), planner.Options{})
			return p, err
		}})
	}

	write := os.Getenv("TOPO_WRITE_FIXTURES") == "1"
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := c.plan(t)
			files := map[string][]byte{}
			if err != nil {
				files["error.txt"] = []byte(err.Error() + "\n")
			} else {
				var human, js bytes.Buffer
				if err := view.NewPlanView(&human, false).Plan(p); err != nil {
					t.Fatal(err)
				}
				if err := view.NewPlanView(&js, true).Plan(p); err != nil {
					t.Fatal(err)
				}
				files["plan.txt"], files["plan.json"] = human.Bytes(), js.Bytes()
			}
			dir := filepath.Join("testdata", "before", c.name)
			if write {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for name, b := range files {
					if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatalf("no fixture for %s: %v", c.name, err)
			}
			if len(entries) != len(files) {
				t.Errorf("fixture %s has %d files, the plan gives %d", dir, len(entries), len(files))
			}
			for name, got := range files {
				want, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Errorf("%v", err)
					continue
				}
				if !bytes.Equal(want, got) {
					t.Errorf("%s/%s differs from the plan before the restructuring (-before +now):\n%s", dir, name, cmp.Diff(string(want), string(got)))
				}
			}
		})
	}
}

// addedSince reports whether the file at path uses a feature added since
// the fixtures: a network's mtu:, IPv6, or a driver other than the bridge
// (macvlan, external), or what labs have (usesLabs).
func addedSince(t *testing.T, path string) bool {
	f, err := spec.Load(path)
	return err == nil && usesLater(f)
}

// usesLater reports whether f uses a feature added since the fixtures:
// mtu:, or what a command and its namespace's files take from the file
// (environment, working_dir, dns, extra_hosts, domainname, depends_on,
// healthcheck).
func usesLater(f *spec.File) bool {
	for _, n := range f.Networks {
		if n.MTU != 0 || n.IPv6() || n.External || (n.Driver != "" && n.Driver != "bridge") {
			return true
		}
	}
	for _, c := range f.Containers {
		if len(c.Env) > 0 || c.WorkingDir != "" || len(c.DNS)+len(c.DNSSearch)+len(c.DNSOptions)+len(c.ExtraHosts)+len(c.DependsOn) > 0 ||
			c.Domainname != "" || c.Healthcheck != nil {
			return true
		}
	}
	return usesLabs(f)
}

// usesLabs says whether f uses what network labs added since: links,
// routes, sysctls, interface names, MACs, impairment.
func usesLabs(f *spec.File) bool {
	if len(f.Links) > 0 {
		return true
	}
	for _, c := range f.Containers {
		if len(c.Routes) > 0 || len(c.Sysctls) > 0 {
			return true
		}
		for _, a := range c.Networks {
			if a.IfName != "" || a.MAC != nil || a.Impairment != nil {
				return true
			}
		}
	}
	return false
}

// usesHosts reports whether the file at path spans hosts (hosts:), as
// no file did before.
func usesHosts(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte("\nhosts:"))
}

// fixtureUp plans f on k and applies it.
func fixtureUp(t *testing.T, k *fake.Machine, f *spec.File) {
	t.Helper()
	p, _, err := planner.Up(f, fixtureObserve(t, k, f.Project), planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func fixtureObserve(t *testing.T, k *fake.Machine, project string) *state.Snapshot {
	t.Helper()
	obs, err := k.Observe(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

// The transaction proofs' files (txn/scenario_test.go), as they were.
const fixtureSeed = `
name: rb
networks:
  old: {subnet: 10.99.9.0/24}
  front: {subnet: 10.99.1.0/24}
containers:
  gone: {networks: [old]}
  web: {networks: [old]}
  db: {networks: [front]}
`

const fixtureBig = `
name: rb
networks:
  front: {subnet: 10.99.1.0/24}
  back: {subnet: 10.99.2.0/24, internal: true}
  side: {subnet: 10.99.3.0/24}
containers:
  web:
    networks:
      front: {aliases: [www]}
      back: {}
    ports: ["18080:80", "127.0.0.1:18443:443", "15353:53/udp"]
    command: ["sleep", "3600"]
  db: {networks: [back]}
  cache: {networks: [back, side]}
  api: {networks: [front, side], ports: ["19000:9000"]}
  worker: {networks: [side], command: ["sleep", "3600"]}
  batch: {networks: [side, back]}
  probe: {networks: [front]}
  edge: {networks: [front, back, side]}
  tools: {network_mode: none}
  shadow: {network_mode: "container:web"}
`

const fixtureBase = `
name: rb
networks:
  front: {subnet: 10.99.1.0/24}
  back: {subnet: 10.99.2.0/24, internal: true}
containers:
  web:
    networks:
      front: {aliases: [www], ipv4_address: 10.99.1.10}
    ports: ["18080:80"]
    command: ["sleep", "3600"]
  db: {networks: [back, front], command: ["sleep", "3600"]}
  probe: {network_mode: "container:web", command: ["sleep", "3600"]}
  tools: {networks: [front]}
`

var fixtureInPlace = []struct{ name, old, new string }{
	{"address", "ipv4_address: 10.99.1.10", "ipv4_address: 10.99.1.20"},
	{"connect", "front: {aliases: [www], ipv4_address: 10.99.1.10}\n", "front: {aliases: [www], ipv4_address: 10.99.1.10}\n      back: {}\n"},
	{"disconnect", "db: {networks: [back, front]", "db: {networks: [back]"},
	{"mode", `probe: {network_mode: "container:web"`, "probe: {networks: [back]"},
	{"subnet", "front: {subnet: 10.99.1.0/24}", "front: {subnet: 10.99.5.0/24}"},
	{"alias", "aliases: [www]", "aliases: [www2, www3]"},
	{"port", `ports: ["18080:80"]`, `ports: ["18081:80", "127.0.0.1:18443:443"]`},
}

package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// compile compiles the embedded schema; it also checks the schema against
// the draft 2020-12 meta-schema.
func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSON))
	if err != nil {
		t.Fatalf("topo.schema.json is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("topo.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("topo.schema.json")
	if err != nil {
		t.Fatalf("compile topo.schema.json: %v", err)
	}
	return sch
}

// instance reads a YAML file as the JSON value an editor would validate.
func instance(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// Round-trip through encoding/json so numbers and maps take the types
	// the validator expects.
	js, err := json.Marshal(jsonable(v))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// jsonable turns the map[any]any that yaml.v3 makes for non-string keys
// into map[string]any.
func jsonable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonable(e)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = jsonable(e)
		}
		return v
	}
	return v
}

func TestExamplesValidate(t *testing.T) {
	sch := compile(t)
	files, err := filepath.Glob("../examples/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no examples in ../examples/*/*.yaml")
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			if err := sch.Validate(instance(t, file)); err != nil {
				t.Errorf("schema rejects %s: %v", file, err)
			}
			if _, err := spec.Load(file); err != nil {
				t.Errorf("spec rejects %s:\n%v", file, err)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			const modeline = "# yaml-language-server: $schema=../../schema/topo.schema.json\n"
			if !bytes.HasPrefix(data, []byte(modeline)) {
				t.Errorf("%s does not start with %q", file, modeline)
			}
		})
	}
}

// TestKeysMatchSpec holds the schema's properties to the keys spec accepts,
// so that neither can gain or lose a key without the other.
func TestKeysMatchSpec(t *testing.T) {
	var doc struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(JSON, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{"file": keys(doc.Properties)}
	for name, def := range doc.Defs {
		if def.Properties != nil {
			got[name] = keys(def.Properties)
		}
	}
	want := spec.ValidKeys()
	for kind := range want {
		slices.Sort(want[kind])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema properties differ from spec.ValidKeys (-spec +schema):\n%s", diff)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestDescriptions checks that every property has a description, since
// editors show them on hover.
func TestDescriptions(t *testing.T) {
	var doc any
	if err := json.Unmarshal(JSON, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				for name, p := range props {
					if d, _ := p.(map[string]any)["description"].(string); d == "" {
						t.Errorf("%s.properties.%s has no description", path, name)
					}
				}
			}
			for k, e := range v {
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("$", doc)
}

// TestBadFilesRejected checks that files spec rejects for reasons a schema
// can see are rejected by the schema too, so that editors flag them.
func TestBadFilesRejected(t *testing.T) {
	sch := compile(t)
	cases := map[string]string{
		"unknown top key":        "netwroks: {}\n",
		"unknown network key":    "networks: {a: {subnett: 10.0.0.0/24}}\n",
		"unknown container key":  "containers: {a: {image: nginx}}\n",
		"unknown attachment key": "networks: {n: {}}\ncontainers: {a: {networks: {n: {link_local_ips: [\"fe80::1\"]}}}}\n",
		"bad driver":             "networks: {a: {driver: weave}}\n",
		"macvlan without parent": "networks: {a: {driver: macvlan, subnet: 192.168.50.0/24}}\n",
		"external with mtu":      "networks: {a: {external: true, mtu: 1400}}\n",
		"name without external":  "networks: {a: {name: br-a}}\n",
		"internal not boolean":   "networks: {a: {internal: \"yes\"}}\n",
		"subnet without prefix":  "networks: {a: {subnet: 10.0.0.0}}\n",
		"bad port syntax":        "containers: {a: {ports: [\"80:\"]}}\n",
		"port protocol":          "containers: {a: {ports: [\"80/icmp\"]}}\n",
		"port number range":      "containers: {a: {ports: [0]}}\n",
		"ports not a list":       "containers: {a: {ports: \"8080:80\"}}\n",
		"bad network_mode":       "containers: {a: {network_mode: bridged}}\n",
		"service mode":           "containers: {a: {network_mode: \"service:b\"}}\n",
		"empty command":          "containers: {a: {command: []}}\n",
		"blank command":          "containers: {a: {command: \"  \"}}\n",
		"bad container name":     "containers: {_web: {}}\n",
		"bad network name":       "networks: {back end: {}}\n",
		"bad project name":       "name: My Shop\n",
		"bad alias":              "networks: {n: {}}\ncontainers: {a: {networks: {n: {aliases: [\"a..b\"]}}}}\n",
		"bad hostname":           "containers: {a: {hostname: -web}}\n",
		"network listed twice":   "networks: {n: {}}\ncontainers: {a: {networks: [n, n]}}\n",
		"container not mapping":  "containers: {a: [sleep]}\n",
		"host address not an IP": "hosts: {h1: {address: h1.example}}\n",
	}
	dir := t.TempDir()
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(instance(t, path)); err == nil {
				t.Errorf("schema accepts %q", src)
			}
			// What validate runs: the spec, then the planner's checks.
			if f, err := spec.Load(path); err == nil && planner.Check(f) == nil {
				t.Errorf("validate accepts %q", src)
			}
		})
	}
}

// TestGoodFilesAccepted checks the other way: what spec accepts, the schema
// must not flag, or editors would underline valid files.
func TestGoodFilesAccepted(t *testing.T) {
	sch := compile(t)
	cases := map[string]string{
		"null network and container": "networks: {n: }\ncontainers: {a: }\n",
		"extensions everywhere":      "x-top: 1\nnetworks: {n: {x-a: 1}}\ncontainers: {a: {x-b: 2, networks: {n: {x-c: 3}}}}\n",
		"null attachment":            "networks: {n: }\ncontainers: {a: {networks: {n: }}}\n",
		"integer ports":              "containers: {a: {ports: [80, 65535]}}\n",
		"every port form":            "containers: {a: {ports: [\"80\", \"8080:80\", \"127.0.0.1:8081:80\", \"127.0.0.1::80\", \"8000-8002:80-82\", \"90-92\", \"53/udp\", \"5353:53/udp\", \"1234/UDP\", \"8090:80/Tcp\", \"3456/sctp\", \"192.168.1.100::6000/SCTP\", \":8070:6000/tcp\", \"::6000\", \":81\", \"1234/\", \"80-82/\", \"[127.0.0.1]:8082:80\"]}}\n",
		"string command":             "containers: {a: {command: \"sh -c 'sleep 1'\"}}\n",
		"command with numbers":       "containers: {a: {command: [sleep, 10]}}\n",
		"explicit bridge mode":       "containers: {a: {network_mode: bridge, networks: [default]}}\n",
		"container mode":             "containers: {a: {}, b: {network_mode: \"container:a\"}}\n",
		"mixed-case names":           "networks: {n: }\ncontainers: {a: {hostname: Web.Example, networks: {n: {aliases: [WWW]}}}}\n",
		"anchors and merge keys":     "x-base: &base {networks: [n]}\nnetworks: {n: }\ncontainers: {a: {<<: *base}}\n",
		"full network":               "networks: {n: {driver: bridge, subnet: 10.1.0.0/16, internal: true}}\n",
		"macvlan network":            "networks: {n: {driver: macvlan, driver_opts: {parent: eth1, macvlan_mode: private, host_link: true}, subnet: 192.168.50.0/24, gateway: 192.168.50.254, ip_range: 192.168.50.128/25}}\n",
		"external network":           "networks: {n: {external: true, name: br-lab}, docker0: {external: true}}\n",
		"project name":               "name: my_lab-2\n",
		"IPv6 overlay":               "name: ov6\nhosts: {h1: {address: \"2001:db8::11\"}, h2: {address: \"2001:db8::12\"}}\nnetworks: {mesh: {driver: overlay, subnet: 10.80.0.0/24, enable_ipv6: true}, s: {driver: overlay, enable_ipv4: false, subnet: \"fd82::/64\"}}\ncontainers: {a: {networks: {mesh: {ipv6_address: \"fd76:50a:e876:8e79::9\"}, s: {}}}, b: {host: h2, networks: [mesh]}}\n",
		"Compose names":              "networks: {back_end: , c1.net1: }\ncontainers: {Web_1: {networks: [back_end, c1.net1]}, b: {network_mode: \"container:Web_1\"}}\n",
	}
	dir := t.TempDir()
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := spec.Load(path); err != nil {
				t.Fatalf("spec rejects %q: %v", src, err)
			}
			if err := sch.Validate(instance(t, path)); err != nil {
				t.Errorf("schema rejects %q: %v", src, err)
			}
		})
	}
}

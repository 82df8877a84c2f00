package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/names"
)

const hostsFile = `name: ov
hosts:
  h1: { address: 192.0.2.11 }
  h2: { address: 192.0.2.12 }
networks:
  mesh: { driver: overlay, subnet: 10.80.0.0/24 }
containers:
  a: { networks: [mesh] }
  b: { host: h2, networks: [mesh] }
`

// TestHostsOnAMachineOfNone: on a machine with none of the hosts'
// addresses, validate and graph (which needs no root) work, plan and up
// say to name the host, plan --host plans it, and the --all-hosts and
// --host flags refuse each other and files without hosts.
func TestHostsOnAMachineOfNone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ov")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "topo.yaml")
	if err := os.WriteFile(file, []byte(hostsFile), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := names.Runtime{Root: filepath.Join(t.TempDir(), "run")}
	m := fake.NewAt(rt, nil)
	if out, _, err := cli(t, m, rt, "validate", "-f", file); err != nil || !strings.Contains(out, "valid") {
		t.Errorf("validate: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	root := newRootCmd(&stdout, &stderr, env{runtime: rt})
	root.SetArgs([]string{"graph", "-f", file})
	if err := root.Execute(); err != nil || !strings.Contains(stdout.String(), "subgraph cluster_h2") {
		t.Errorf("graph without root: %v\n%s", err, stdout.String())
	}
	if _, _, err := cli(t, m, rt, "plan", "-f", file); err == nil || !strings.Contains(err.Error(), "none of the hosts' addresses (h1 192.0.2.11, h2 192.0.2.12)") {
		t.Errorf("plan: %v", err)
	}
	if out, _, err := cli(t, m, rt, "plan", "-f", file, "--host", "h2"); err != nil || !strings.Contains(out, "ip netns add ov-b") || strings.Contains(out, "ov-a") {
		t.Errorf("plan --host h2: %v\n%s", err, out)
	}
	if _, _, err := cli(t, m, rt, "up", "-f", file, "--host", "h2"); err == nil || !strings.Contains(err.Error(), "does not have host h2's address 192.0.2.12") {
		t.Errorf("up --host h2: %v", err)
	}
	if _, _, err := cli(t, m, rt, "up", "-f", file, "--all-hosts", "--host", "h1"); err == nil || !strings.Contains(err.Error(), "leave --host out") {
		t.Errorf("up --all-hosts --host: %v", err)
	}
	if _, _, err := cli(t, m, rt, "plan", "-f", file, "--host", "h9"); err == nil || !strings.Contains(err.Error(), "the file's hosts are h1 192.0.2.11, h2 192.0.2.12") {
		t.Errorf("plan --host h9: %v", err)
	}
	if err := os.WriteFile(file, []byte("name: one\ncontainers: {a: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, m, rt, "down", "-f", file, "--all-hosts"); err == nil || !strings.Contains(err.Error(), "has no hosts:") {
		t.Errorf("down --all-hosts of a file without hosts: %v", err)
	}
}

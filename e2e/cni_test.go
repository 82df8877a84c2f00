package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/topolab/topo/view"
)

// needCNI skips a test when Debian's CNI plugins are not installed.
func needCNI(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skip("the CNI plugins are not installed (Debian: apt-get install containernetworking-plugins; scripts/deps installs it)")
		}
	}
}

// cniBridgeFile is a CNI network of Debian's bridge and host-local
// plugins, with NAT (ipMasq), and two containers on it.
const cniBridgeFile = `name: cn
networks:
  plug:
    driver: cni
    cni:
      cniVersion: 1.0.0
      plugins:
        - { type: bridge, bridge: cni-plug0, isGateway: true, ipMasq: true,
            ipam: { type: host-local, ranges: [[{ subnet: 10.88.0.0/24 }]] } }
containers:
  a: {networks: [plug], command: ["sleep", "3600"]}
  b:
    networks:
      plug: {aliases: [bee]}
`

// TestCNIBridge: a CNI network of the bridge and host-local plugins
// gives each container an interface with an address of the chain's
// range, on the plugin's bridge; they reach each other by name and
// alias through topo's resolver, and by the hosts file; ps, inspect and
// graph show the chain's addresses; plan after up has nothing to do;
// down runs DEL for each, and leaves no CNI cache, bridge or rule.
func TestCNIBridge(t *testing.T) {
	needCNI(t)
	h := newHost(t)
	file := writeFile(t, "cn", cniBridgeFile)
	plan := h.mustTopo("plan", "-f", file)
	for _, want := range []string{"+ cni add plug a  # endpoint a/plug", "+ cni add plug b  # endpoint b/plug", "+ ip link add cni-plug0 type bridge"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	h.mustTopo("up", "-f", file)
	addr := map[string]string{}
	for _, ns := range []string{"cn-a", "cn-b"} {
		addr[ns] = h.eth0(ns)
		if !strings.HasPrefix(addr[ns], "10.88.0.") || !strings.HasSuffix(addr[ns], "/24") {
			t.Errorf("%s eth0: %q, want an address of 10.88.0.0/24", ns, addr[ns])
		}
	}
	if addr["cn-a"] == addr["cn-b"] {
		t.Errorf("a and b have one address, %s", addr["cn-a"])
	}
	if out := h.mustSh("ip -o link show master cni-plug0 | wc -l"); strings.TrimSpace(out) != "2" {
		t.Errorf("cni-plug0 has %s ports, want 2", out)
	}
	bAddr := strings.Split(addr["cn-b"], "/")[0]
	for _, name := range []string{"b", "bee"} {
		if out, ok := h.sh(in("cn-a", "ping -c1 -W2 "+name)); !ok || !strings.Contains(out, bAddr) {
			t.Errorf("ping %s from a (want %s): %s", name, bAddr, out)
		}
	}
	if out, ok := h.sh(in("cn-b", "ping -c1 -W2 a")); !ok {
		t.Errorf("ping a from b: %s", out)
	}
	if out := h.mustSh(in("cn-a", "getent hosts a")); !strings.Contains(out, strings.Split(addr["cn-a"], "/")[0]) {
		t.Errorf("a's hosts file does not give a its address %s: %q", addr["cn-a"], out)
	}
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after up: exit %d, want no changes:\n%s", code, out)
	}
	if ps := h.mustTopo("ps", "-f", file); !strings.Contains(ps, addr["cn-a"]) || !strings.Contains(ps, addr["cn-b"]) {
		t.Errorf("ps does not show the chain's addresses %v:\n%s", addr, ps)
	}
	var plug view.NetworkDetail
	if err := json.Unmarshal([]byte(h.mustTopo("inspect", "-f", file, "plug", "--json")), &plug); err != nil {
		t.Fatal(err)
	}
	if plug.Driver != "cni" || len(plug.Members) != 2 || plug.Members[0].Address != addr["cn-a"] || plug.Members[1].Address != addr["cn-b"] {
		t.Errorf("inspect plug: %+v", plug)
	}
	if g := h.mustTopo("graph", "-f", file); !strings.Contains(g, addr["cn-a"]) || !strings.Contains(g, "cni") {
		t.Errorf("graph does not show the chain's address of a:\n%s", g)
	}

	h.mustTopo("down", "-f", file)
	if out, _ := h.sh("ls -A /run/topo/cn/cni /run/topo/cn 2>&1"); !strings.Contains(out, "No such file") {
		t.Errorf("down left the CNI cache:\n%s", out)
	}
	if out, ok := h.sh("ip link show cni-plug0"); ok {
		t.Errorf("down left the chain's bridge:\n%s", out)
	}
	if out := h.mustSh("iptables-save; ip netns list"); strings.Contains(out, "CNI") || strings.Contains(out, "10.88.0") || strings.Contains(out, "cn-") {
		t.Errorf("down left rules or namespaces:\n%s", out)
	}
}

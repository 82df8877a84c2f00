package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestMACsStayWhatTheyWere: a network's gateway keeps one hardware
// address, derived from its address as a container's is, while
// containers come and go; up puts it back, and a port's hairpin mode,
// when they were changed; and a rolled-back down rebuilds the bridge and
// the containers with the addresses they had. A bridge left to choose
// takes the lowest of its ports' addresses, so removing a container could
// change the gateway's under the ARP caches of the others, cutting their
// traffic through it until the caches expire (Docker sets the address of
// its bridges for the same reason).
func TestMACsStayWhatTheyWere(t *testing.T) {
	h := newHost(t)
	three := "name: macs\nnetworks:\n  lan:\n    subnet: 172.31.5.0/24\ncontainers:\n  a:\n    networks: [lan]\n  b:\n    networks: [lan]\n  c:\n    networks: [lan]\n"
	file := writeFile(t, "macs", three)
	h.mustTopo("up", "-f", file)
	br := h.bridgeWith("172.31.5.1/24").Name
	const gwMAC, aMAC = "02:42:ac:1f:05:01", "02:42:ac:1f:05:02"
	check := func(when string) {
		t.Helper()
		if got := strings.TrimSpace(h.mustSh("cat /sys/class/net/" + br + "/address /sys/class/net/" + br + "/addr_assign_type")); got != gwMAC+"\n3" {
			t.Errorf("%s: bridge address and its assign type %q, want %s set (3)", when, got, gwMAC)
		}
		if got := strings.TrimSpace(h.mustSh("ip netns exec macs-a cat /sys/class/net/eth0/address")); got != aMAC {
			t.Errorf("%s: a's eth0 is %s, want %s", when, got, aMAC)
		}
		// The gateway answers, at the address a has cached (-w10: the
		// first reply waited for up to 10 s, for a loaded machine).
		h.mustSh("ip netns exec macs-a ping -c1 -w10 172.31.5.1")
		if got := h.mustSh("ip -n macs-a neigh show 172.31.5.1"); !strings.Contains(got, "lladdr "+gwMAC) {
			t.Errorf("%s: a's neighbour entry for the gateway: %q, want lladdr %s", when, got, gwMAC)
		}
	}
	check("after up")

	// b and c leave: the bridge loses the ports whose addresses a bridge
	// left to choose would take.
	if err := os.WriteFile(file, []byte(strings.Split(three, "  b:")[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	check("after b and c left")

	// Changed by hand (or made by an earlier topo, which set neither):
	// plan shows the repairs, up makes them.
	port := h.mustSh("ip -o link show master " + br + " | cut -d: -f2 | cut -d@ -f1")
	port = strings.TrimSpace(port)
	h.mustSh("ip link set " + br + " address 02:00:00:00:00:09 && ip link set " + port + " type bridge_slave hairpin off")
	out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "~ ip link set "+br+" address "+gwMAC) || !strings.Contains(out, "~ ip link set "+port+" type bridge_slave hairpin on") {
		t.Errorf("plan after changing the bridge's address and the port's hairpin mode: exit %d\n%s", code, out)
	}
	h.mustTopo("up", "-f", file)
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the repair: exit %d, want 0", code)
	}
	if out := h.mustSh("ip -d link show " + port); !strings.Contains(out, "hairpin on") {
		t.Errorf("%s after the repair:\n%s", port, out)
	}
	check("after the repair")

	// A down that fails at its first file removal (step 5: the resolver's
	// stop and records, the namespace, the bridge, then the files) rolls
	// back the bridge and the namespace.
	cmd := h.Command(topoBin, "down", "-f", file)
	cmd.Env = append(os.Environ(), "TOPO_FAULT_AT=5")
	fault, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(fault), "rolled back 4 steps") {
		t.Fatalf("down with a fault at step 5: %v\n%s", err, fault)
	}
	check("after a rolled-back down")

	h.mustTopo("down", "-f", file)
	assertClean(t, h, "macs")
}

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/topolab/topo/view"
)

// TestNetworkMTU: a network's mtu: is the MTU of its bridge and of both
// ends of every veth on it, and so the largest packet that goes through
// unfragmented: `ping -M do` (don't fragment) with a payload 28 bytes
// under the MTU (20 of IP header, 8 of ICMP) crosses, one byte more does
// not, between two containers and from the host through the bridge. A
// change of mtu: applies in place (the plan changes MTUs only, the
// command keeps its pid), and without mtu: the network is 1500 again.
func TestNetworkMTU(t *testing.T) {
	h := newHost(t)
	src := func(mtu string) string {
		return "name: mtu\nnetworks:\n  lan: {subnet: 10.81.0.0/24" + mtu + "}\ncontainers:\n" +
			"  a:\n    networks: [lan]\n    command: [\"sleep\", \"3600\"]\n  b: {networks: [lan]}\n"
	}
	file := writeFile(t, "mtu", src(", mtu: 1400"))
	h.mustTopo("up", "-f", file)
	br := h.bridgeWith("10.81.0.1/24").Name

	// mtus are the MTUs of the bridge, its ports and the containers' eth0.
	mtus := func() string {
		t.Helper()
		return strings.Join(strings.Fields(h.mustSh(
			"cat /sys/class/net/"+br+"/mtu; for p in /sys/class/net/"+br+"/brif/*; do cat /sys/class/net/$(basename $p)/mtu; done; "+
				"ip netns exec mtu-a cat /sys/class/net/eth0/mtu; ip netns exec mtu-b cat /sys/class/net/eth0/mtu")), " ")
	}
	// fits checks that a payload of size crosses unfragmented, from a to
	// b and from the host to b, and that one byte more does not.
	fits := func(mtu int) {
		t.Helper()
		size := mtu - 28
		for _, from := range []string{"mtu-a", ""} {
			ping := func(n int) (string, bool) {
				return h.sh(in(from, fmt.Sprintf("ping -c1 -w10 -M do -s %d 10.81.0.3", n)))
			}
			if out, ok := ping(size); !ok {
				t.Errorf("MTU %d: ping from %q with %d bytes of payload and don't-fragment did not cross:\n%s", mtu, from, size, out)
			}
			if out, ok := h.sh(in(from, fmt.Sprintf("ping -c1 -W1 -M do -s %d 10.81.0.3", size+1))); ok {
				t.Errorf("MTU %d: ping from %q with %d bytes crossed, one more than the MTU holds:\n%s", mtu, from, size+1, out)
			}
		}
	}
	// inspected is the MTU `topo inspect lan` shows.
	inspected := func() int {
		t.Helper()
		var d view.NetworkDetail
		if err := json.Unmarshal([]byte(h.mustTopo("inspect", "-f", file, "lan", "--json")), &d); err != nil {
			t.Fatal(err)
		}
		if text := h.mustTopo("inspect", "-f", file, "lan"); !strings.Contains(text, fmt.Sprintf("\n  mtu       %d\n", d.MTU)) {
			t.Errorf("inspect lan says mtu %d in JSON, and as text:\n%s", d.MTU, text)
		}
		return d.MTU
	}
	if got := mtus(); got != "1400 1400 1400 1400 1400" {
		t.Errorf("MTUs of the bridge, its ports, a's and b's eth0: %s, want 1400 each", got)
	}
	if got := inspected(); got != 1400 {
		t.Errorf("inspect lan: mtu %d, want 1400", got)
	}
	fits(1400)
	pid := func() string {
		return strings.TrimSpace(h.mustSh("jq .pid /run/topo/mtu/containers/a.pid"))
	}
	before := pid()

	// Changed in place: only MTUs, and the command keeps running.
	if err := os.WriteFile(file, []byte(src(", mtu: 9000")), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || strings.Count(plan, " mtu 9000  # ") != 5 || !strings.Contains(plan, "Plan: 0 to add, 5 to change, 0 to destroy.") {
		t.Errorf("plan of mtu 1400 to 9000: exit %d, want the 5 MTUs changed and nothing else:\n%s", code, plan)
	}
	h.mustTopo("up", "-f", file)
	if got := mtus(); got != "9000 9000 9000 9000 9000" {
		t.Errorf("MTUs after the change: %s, want 9000 each", got)
	}
	if got := inspected(); got != 9000 {
		t.Errorf("inspect lan after the change: mtu %d, want 9000", got)
	}
	fits(9000)
	if after := pid(); after != before {
		t.Errorf("a's command restarted: pid %s, was %s", after, before)
	}

	// Drift: an MTU changed by hand is put back. inspect shows the
	// kernel's.
	h.mustSh("ip -n mtu-b link set eth0 mtu 1280")
	h.mustSh("ip link set " + br + " mtu 8000")
	if got := inspected(); got != 8000 {
		t.Errorf("inspect lan after the bridge's MTU was set to 8000 by hand: mtu %d", got)
	}
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 2 || !strings.Contains(out, "~ ip -n mtu-b link set eth0 mtu 9000  # endpoint b/lan") {
		t.Errorf("plan after b's MTU changed by hand: exit %d\n%s", code, out)
	}
	h.mustTopo("up", "-f", file)

	// Without mtu: the default, 1500.
	if err := os.WriteFile(file, []byte(src("")), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mustTopo("up", "-f", file)
	if got := mtus(); got != "1500 1500 1500 1500 1500" {
		t.Errorf("MTUs without mtu: %s, want 1500 each", got)
	}
	fits(1500)
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after up: exit %d, want no changes", code)
	}
	h.mustTopo("down", "-f", file)
	if left := h.leftovers("mtu"); strings.TrimSpace(left) != "" {
		t.Errorf("down left:\n%s", left)
	}
}

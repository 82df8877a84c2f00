package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topolab/topo/view"
)

// Probe timeouts: long where an answer is expected, so that a loaded
// machine does not fail the test, and short where none is, since a
// dropped probe waits for all of it.
const (
	answerTimeout = 5 * time.Second
	dropTimeout   = time.Second
)

// check is one expected outcome: from namespace From ("" for the host),
// Proto to Addr answers with a line that starts with Want, or, when Want
// is "", with nothing.
type check struct {
	From, Proto, Addr, Send, Want string
}

func (c check) String() string {
	from := c.From
	if from == "" {
		from = "host"
	}
	return fmt.Sprintf("%s -> %s/%s", from, c.Addr, c.Proto)
}

// probeAll runs every probe, those of one namespace in one agent and the
// namespaces at once, and returns the answers in the order of cs.
func (h *host) probeAll(cs []check) []string {
	h.t.Helper()
	byNS := map[string][]probe{}
	for i, c := range cs {
		timeout := dropTimeout
		if c.Want != "" {
			timeout = answerTimeout
		}
		byNS[c.From] = append(byNS[c.From], probe{ID: fmt.Sprint(i), Proto: c.Proto, Addr: c.Addr, Send: c.Send, Timeout: timeout})
	}
	answers := make([]string, len(cs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for ns, ps := range byNS {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := h.agentProbe(ns, ps)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for _, p := range ps {
				i, _ := strconv.Atoi(p.ID)
				answers[i] = got[p.ID]
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		h.t.Error(err)
	}
	if len(errs) > 0 {
		h.t.FailNow()
	}
	return answers
}

// expect runs the checks and reports each that came out otherwise.
func (h *host) expect(cs []check) {
	h.t.Helper()
	for i, got := range h.probeAll(cs) {
		c := cs[i]
		if reached := got != "" && strings.HasPrefix(got, c.Want); reached != (c.Want != "") {
			want := "nothing"
			if c.Want != "" {
				want = fmt.Sprintf("%q", c.Want)
			}
			h.t.Errorf("%s: answered %q, want %s", c, got, want)
		}
	}
}

// network is `topo inspect NAME --json` of a network.
func (h *host) network(file, name string) view.NetworkDetail {
	h.t.Helper()
	out := h.mustTopo("inspect", "-f", file, name, "--json", "--type", "network")
	var d view.NetworkDetail
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		h.t.Fatalf("inspect %s: %v\n%s", name, err, out)
	}
	return d
}

// member is the address, without its length, of container c on network d.
func member(t *testing.T, d view.NetworkDetail, c string) string {
	t.Helper()
	return memberOf(t, d, c, false)
}

// memberOf is member's IPv4 address, or with v6 its IPv6 one.
func memberOf(t *testing.T, d view.NetworkDetail, c string, v6 bool) string {
	t.Helper()
	for _, m := range d.Members {
		if m.Container == c {
			addr := m.Address
			if v6 {
				addr = m.Address6
			}
			a, _, _ := strings.Cut(addr, "/")
			return a
		}
	}
	t.Fatalf("%s is not on network %s", c, d.Name)
	return ""
}

// bridgeNetfilter makes bridged packets pass iptables and conntrack, where
// the br_netfilter module is loaded (Docker hosts have it): whatever this
// namespace was given, isolation tests run that way, the harder case, in
// which an answer can take the short way across a bridge and still be
// un-NATed.
func (h *host) bridgeNetfilter() {
	h.t.Helper()
	h.mustSh("for f in /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/bridge/bridge-nf-call-ip6tables; do if [ -e $f ]; then echo 1 >$f; fi; done")
}

// link is the host's link name.
func (h *host) link(name string) ipLink {
	h.t.Helper()
	for _, l := range h.links("") {
		if l.Name == name {
			return l
		}
	}
	h.t.Fatalf("no host link %s", name)
	return ipLink{}
}

// linkLocal is the IPv6 link-local address the kernel makes from mac
// (EUI-64).
func linkLocal(t *testing.T, mac string) string {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		t.Fatalf("MAC %q: %v", mac, err)
	}
	return fmt.Sprintf("fe80::%x:%x:%x:%x", uint16(hw[0]^2)<<8|uint16(hw[1]), uint16(hw[2])<<8|0xff, 0xfe00|uint16(hw[3]), uint16(hw[4])<<8|uint16(hw[5]))
}

// TestInternalNetworkReachesNothingOutside is the shop of the README: db,
// only on the internal back, reaches web over back and nothing outside
// it, even through a default route it adds itself: not web's publishes
// (at back's gateway, front's, or another address of the host), not the
// host's own services, not over IPv6 either. The host still reaches db,
// and web, on the non-internal front, the host's services at front's
// gateway, as in Docker.
func TestInternalNetworkReachesNothingOutside(t *testing.T) {
	h := newHost(t)
	h.outside()
	h.bridgeNetfilter()
	file := example("shop")
	h.mustTopo("up", "-f", file)
	back, front := h.network(file, "back"), h.network(file, "front")
	webBack, db := member(t, back, "web"), member(t, back, "db")
	h.agentServe("", "host", 7000)
	h.agentServe("shop-db", "db", 7000)
	h.waitFor("web to serve HTTP on back", func() bool { return h.httpStatus("shop-db", "http://"+webBack+"/") == "200" })
	h.mustSh("ip -n shop-db route add default via " + back.Gateway)

	const get, ok = "GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200"
	hp := func(addr string, port int) string { return fmt.Sprintf("%s:%d", addr, port) }
	var cs []check
	for _, proto := range []string{"tcp", "udp"} {
		cs = append(cs,
			check{"shop-db", proto, hp(back.Gateway, 7000), "", ""},
			check{"shop-db", proto, hp(front.Gateway, 7000), "", ""},
			check{"shop-db", proto, hp(hostAddr, 7000), "", ""},
			check{"shop-web", proto, hp(front.Gateway, 7000), "", "host"},
			check{"shop-web", proto, hp(db, 7000), "", "db"},
			check{"", proto, hp(db, 7000), "", "db"},
		)
	}
	// IPv6, which topo's networks do not have: db gives itself a
	// link-local address, and still reaches nothing of the host's over it,
	// for back's bridge has no IPv6 address (the one it would make from
	// its MAC is tried), while front's keeps its own: once that one is
	// usable (duplicate address detection done), back's would be too.
	h.mustSh("ip -n shop-db addr add fe80::99/64 dev eth0 nodad")
	h.waitFor("front's bridge to have its link-local address", func() bool {
		out := h.mustSh("ip -6 addr show dev " + front.Bridge)
		return strings.Contains(out, "inet6 fe80::") && !strings.Contains(out, "tentative")
	})
	if out := h.mustSh("ip -6 addr show dev " + back.Bridge); strings.TrimSpace(out) != "" {
		t.Errorf("the internal network's bridge has IPv6 addresses:\n%s", out)
	}
	cs = append(cs,
		check{"shop-db", "tcp", "[" + linkLocal(t, h.link(back.Bridge).MAC) + "%eth0]:7000", "", ""},
		check{"shop-db", "tcp", hp(webBack, 80), get, ok},
		check{"shop-db", "tcp", hp(back.Gateway, 8080), get, ""},
		check{"shop-db", "tcp", hp(front.Gateway, 8080), get, ""},
		check{"shop-db", "tcp", hp(hostAddr, 8080), get, ""},
		check{"outside", "tcp", hp(hostAddr, 8080), get, ok},
		check{"shop-web", "tcp", hp(front.Gateway, 8080), get, ok},
	)
	h.expect(cs)

	// IPv6 turned back on by hand is drift, which up repairs (as db's
	// default route would be: it goes first).
	key := "net.ipv6.conf." + back.Bridge + ".disable_ipv6"
	h.mustSh("ip -n shop-db route del default; sysctl -qw " + key + "=0")
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 2 || len(stepLines(out)) != 1 || !strings.Contains(out, "~ sysctl -w "+key+"=1  # network back") {
		t.Errorf("plan after IPv6 was turned on: exit %d\n%s", code, out)
	}
	h.mustTopo("up", "-f", file)
	if got := strings.TrimSpace(h.mustSh("sysctl -n " + key)); got != "1" {
		t.Errorf("after up, %s = %s", key, got)
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
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
				var i int
				fmt.Sscan(p.ID, &i)
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
		if ok := got != "" && strings.HasPrefix(got, c.Want); ok != (c.Want != "") || c.Want == "" && got != "" {
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
	for _, m := range d.Members {
		if m.Container == c {
			a, _, _ := strings.Cut(m.Address, "/")
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
	h.mustSh("f=/proc/sys/net/bridge/bridge-nf-call-iptables; if [ -e $f ]; then echo 1 >$f; fi")
}

// TestInternalNetworkReachesNothingOutside is the shop of the README: db,
// only on the internal back, reaches web over back and nothing outside
// it, even through a default route it adds itself: not web's publishes
// (at back's gateway, front's, or another address of the host), not the
// host's own services. The host still reaches db, and web, on the
// non-internal front, the host's services at front's gateway, as in
// Docker.
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
	cs = append(cs,
		check{"shop-db", "tcp", hp(webBack, 80), get, ok},
		check{"shop-db", "tcp", hp(back.Gateway, 8080), get, ""},
		check{"shop-db", "tcp", hp(front.Gateway, 8080), get, ""},
		check{"shop-db", "tcp", hp(hostAddr, 8080), get, ""},
		check{"outside", "tcp", hp(hostAddr, 8080), get, ok},
		check{"shop-web", "tcp", hp(front.Gateway, 8080), get, ok},
	)
	h.expect(cs)
}

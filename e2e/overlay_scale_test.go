package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topolab/topo/internal/benchtopo"
	"github.com/topolab/topo/internal/hosts"
	"github.com/topolab/topo/names"
)

// pingTimeout is how long one ping of the scale test may take, retries
// included: generous, for a loaded machine; a ping that gets through is
// answered in milliseconds.
const pingTimeout = 20 * time.Second

// overlayMTU is an overlay's MTU on the hosts' underlay (eth0, 1500).
const overlayMTU = names.DefaultMTU - names.VXLANOverhead

// TestOverlayAtScale: three hosts with 100 containers each on one overlay
// (benchtopo.Mesh, the file the bench program times). Each host's up
// makes its 100 containers and a VXLAN device with an entry for every
// remote container (200 neighbours, 200 forwarding entries and one
// all-zeros entry per other host); every host gives every container the
// same address; every container pings the container of its index on
// each other host (600 pings, each answered; those to the next host
// fill the overlay's MTU, with Don't Fragment, and one byte more fails)
// and resolves a remote name; plan then has nothing to do on any host,
// and down on each leaves it clean. Then the same with up --all-hosts
// and down --all-hosts from h1, over the ssh stand-in.
func TestOverlayAtScale(t *testing.T) {
	need(t, "getent")
	m := benchtopo.Mesh{Project: "sc", Groups: 3, PerGroup: 100, Overlay: true}
	var addrs []string
	for g := range m.Groups {
		addrs = append(addrs, m.Host(g)+"="+m.HostAddr(g).String())
	}
	w, byName := newWorldAt(t, addrs...)
	hs := make([]*host, m.Groups)
	for g := range hs {
		hs[g] = byName[m.Host(g)]
	}
	file := writeFile(t, m.Project, string(m.YAML()))
	vx := names.VXLAN(m.Project, benchtopo.MeshNetwork)

	for g, h := range hs {
		// Each host finds itself by its address.
		start := time.Now()
		h.mustTopo("up", "-f", file)
		t.Logf("up on %s: %s", m.Host(g), time.Since(start).Round(time.Millisecond))
	}
	for g, h := range hs {
		if n := strings.Count(h.mustSh("ip netns list"), m.Project+"-c"); n != m.PerGroup {
			t.Errorf("%s has %d of the project's namespaces, want %d", m.Host(g), n, m.PerGroup)
		}
		remote := (m.Groups - 1) * m.PerGroup
		fdb := h.mustSh("bridge fdb show dev " + vx)
		if n := strings.Count(fdb, " dst "); n != remote+m.Groups-1 {
			t.Errorf("%s's %s has %d forwarding entries with a destination, want %d:\n%s", m.Host(g), vx, n, remote+m.Groups-1, fdb)
		}
		if n := strings.Count(fdb, "00:00:00:00:00:00 dst "); n != m.Groups-1 {
			t.Errorf("%s's %s has %d all-zeros entries, want %d (one per other host)", m.Host(g), vx, n, m.Groups-1)
		}
		if n := strings.Count(h.mustSh("ip neigh show nud permanent dev "+vx), "lladdr"); n != remote {
			t.Errorf("%s's %s has %d permanent neighbours, want %d", m.Host(g), vx, n, remote)
		}
		// The same allocation on every host, from the file alone.
		d := h.network(file, benchtopo.MeshNetwork)
		if d.MTU != overlayMTU {
			t.Errorf("inspect on %s: MTU %d, want %d", m.Host(g), d.MTU, overlayMTU)
		}
		if len(d.Members) != m.Groups*m.PerGroup {
			t.Fatalf("inspect on %s: %d members, want %d", m.Host(g), len(d.Members), m.Groups*m.PerGroup)
		}
		for o := range m.Groups {
			for i := range m.PerGroup {
				if a := member(t, d, m.Container(o, i)); a != m.Addr(o, i).String() {
					t.Errorf("inspect on %s: %s has %s, want %s", m.Host(g), m.Container(o, i), a, m.Addr(o, i))
				}
			}
		}
	}
	pingMesh(t, w, m)
	// One byte more than the MTU leaves no container.
	big := hosts.Ping{From: m.Namespace(0, 0), To: m.Addr(1, 0), Size: overlayMTU - hosts.PingOverhead + 1}
	if es, err := w.Host(m.Host(0)).Ping([]hosts.Ping{big}, pingTimeout, 1); err != nil {
		t.Error(err)
	} else if !strings.Contains(es[0].Err, "message too long") {
		t.Errorf("%s: %+v, want the send refused (message too long)", big, es[0])
	}
	// A remote container's name, from each host.
	for g, h := range hs {
		o := (g + 1) % m.Groups
		out := h.mustSh(in(m.Namespace(g, 0), "getent hosts "+m.Container(o, m.PerGroup-1)))
		if f := strings.Fields(out); len(f) == 0 || f[0] != m.Addr(o, m.PerGroup-1).String() {
			t.Errorf("on %s, %s resolves %s to %q, want %s", m.Host(g), m.Container(g, 0), m.Container(o, m.PerGroup-1), out, m.Addr(o, m.PerGroup-1))
		}
	}
	for g, h := range hs {
		if out, errOut, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
			t.Errorf("plan on %s after up: exit %d, want 0\n%s%s", m.Host(g), code, out, errOut)
		}
	}
	for g, h := range hs {
		start := time.Now()
		h.mustTopo("down", "-f", file)
		t.Logf("down on %s: %s", m.Host(g), time.Since(start).Round(time.Millisecond))
		assertClean(t, h, m.Project)
	}
	if t.Failed() {
		return
	}

	// All hosts at once, from h1.
	all := func(args ...string) string {
		t.Helper()
		start := time.Now()
		out, code := allHosts(t, w, args...) // from h1, m.Host(0)
		if code != 0 {
			t.Fatalf("topo %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		t.Logf("topo %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		return out
	}
	out := all("up", "--all-hosts", "-f", file)
	for g := range m.Groups {
		if want := fmt.Sprintf("== %s (%s): up", m.Host(g), m.HostAddr(g).Addr()); !strings.Contains(out, want) {
			t.Errorf("up --all-hosts says no %q:\n%s", want, out)
		}
	}
	pingMesh(t, w, m)
	all("down", "--all-hosts", "-f", file)
	for _, h := range hs {
		assertClean(t, h, m.Project)
	}
}

// pingMesh sends every container's pings of m, from each host at once,
// and fails t for each that no reply answered. The pings to the next
// group's container fill the overlay's MTU.
func pingMesh(t *testing.T, w *hosts.World, m benchtopo.Mesh) {
	t.Helper()
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var sent, slow, lost int
	var slowest time.Duration
	for g := range m.Groups {
		var pings []hosts.Ping
		for i := range m.PerGroup {
			for _, p := range m.Peers(g, i) {
				ping := hosts.Ping{From: m.Namespace(g, i), To: m.Addr(p[0], p[1])}
				if p[0] == (g+1)%m.Groups {
					ping.Size = overlayMTU - hosts.PingOverhead
				}
				pings = append(pings, ping)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			echoes, err := w.Host(m.Host(g)).Ping(pings, pingTimeout, 50)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			for _, e := range echoes {
				sent++
				if e.Err != "" {
					t.Errorf("on %s: %s", m.Host(g), e.Err)
				} else if e.Reply > 1 {
					lost++
				} else if e.Sent > 1 {
					slow++
				}
				slowest = max(slowest, e.RTT)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d pings in %s (slowest %s; %d answered after the next request was sent, %d only on a later request)",
		sent, time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond), slow, lost)
}

package resolver

import (
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/resolver/records"
)

// addNamespaces makes named namespaces with lo up, as topo's own do.
func addNamespaces(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if out, err := exec.Command("sh", "-c", fmt.Sprintf("ip netns add %s && ip -n %s link set lo up", n, n)).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v\n%s", n, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
	}
}

// query asks addr, from inside the namespace at path ("" is this one), over
// network ("udp" or "tcp").
func query(path, network, addr, name string, qtype uint16) (*dns.Msg, error) {
	var conn net.Conn
	var err error
	if path == "" {
		conn, err = net.DialTimeout(network, addr, time.Second)
	} else {
		conn, err = sandbox.DialIn(path, network, addr)
	}
	if err != nil {
		return nil, err
	}
	c := &dns.Conn{Conn: conn}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	if err := c.WriteMsg(q); err != nil {
		return nil, err
	}
	return c.ReadMsg()
}

func aRecords(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestServerListensInEachNamespace(t *testing.T) {
	sandbox.Require(t)
	addNamespaces(t, "shop-web", "shop-api2", "shop-db", "shop-lone")
	s, err := NewServer(&fakeUpstream{}, log.New(os.Stderr, "resolver: ", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := doc()
	served, errs := s.Load(d)
	// shop-none has no namespace file: a problem, the others are served.
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "shop-none") {
		t.Errorf("errors %v, want one about shop-none", errs)
	}
	if len(served) != 4 {
		t.Errorf("served %v, want 4 namespaces", served)
	}
	for _, c := range []struct{ ns, name, network string }{
		{"shop-api2", "api.", "udp"}, {"shop-api2", "api.", "tcp"}, {"shop-db", "web.", "udp"}, {"shop-web", "web.", "tcp"},
	} {
		r, err := query("/run/netns/"+c.ns, c.network, Address, c.name, dns.TypeA)
		if err != nil {
			t.Fatalf("%s %s over %s: %v", c.ns, c.name, c.network, err)
		}
		want := map[string][]string{"shop-api2": {"10.0.1.2", "10.0.1.3"}, "shop-db": {"10.0.2.2"}, "shop-web": {"10.0.1.2", "10.0.2.2"}}[c.ns]
		if d := cmp.Diff(want, aRecords(r)); d != "" {
			t.Errorf("%s asks %s over %s (-want +got):\n%s", c.ns, c.name, c.network, d)
		}
	}
	// Nothing listens in the resolver's own namespace.
	if _, err := query("", "udp", Address, "web.", dns.TypeA); err == nil {
		t.Error("the resolver answers in its own namespace")
	}
	if _, err := query("", "tcp", Address, "web.", dns.TypeA); err == nil {
		t.Error("the resolver accepts TCP in its own namespace")
	}

	// Reload under load: a new member, shop-lone gone, shop-new added. No
	// query to a namespace that stays may fail meanwhile.
	var failures, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			total.Add(1)
			r, err := query("/run/netns/shop-api2", "udp", Address, "web.", dns.TypeA)
			if err != nil || len(r.Answer) != 1 {
				failures.Add(1)
			}
		}
	}()
	addNamespaces(t, "shop-new")
	d2 := doc()
	d2.Namespaces = append(d2.Namespaces[:3], records.Namespace{Name: "shop-new", Containers: []string{"new"}, Networks: []string{"front"}})
	d2.Networks[0].Members = append(d2.Networks[0].Members, records.Member{Container: "new", Addr: netip.MustParseAddr("10.0.1.4"), Names: []string{"new"}})
	for range 20 {
		if _, errs := s.Load(d2); len(errs) != 0 {
			t.Fatal(errs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// At least ten queries, however slow the machine.
	for deadline := time.Now().Add(10 * time.Second); total.Load() < 10 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || total.Load() < 10 {
		t.Errorf("%d of %d queries failed during reloads", failures.Load(), total.Load())
	}
	r, err := query("/run/netns/shop-api2", "udp", Address, "new.", dns.TypeA)
	if err != nil || cmp.Diff([]string{"10.0.1.4"}, aRecords(r)) != "" {
		t.Errorf("new from api2: %v, %v", r, err)
	}
	if r, err := query("/run/netns/shop-new", "tcp", Address, "web.", dns.TypeA); err != nil || cmp.Diff([]string{"10.0.1.2"}, aRecords(r)) != "" {
		t.Errorf("web from the new namespace: %v, %v", r, err)
	}
	if _, err := query("/run/netns/shop-lone", "tcp", Address, "lone.", dns.TypeA); err == nil {
		t.Error("a removed namespace still has a listener")
	}

	// A namespace made again under the same name gets new sockets.
	before, _ := records.NamespaceIDOf("/run/netns/shop-new")
	exec.Command("ip", "netns", "del", "shop-new").Run()
	addNamespaces(t, "shop-new")
	served, errs = s.Load(d2)
	if len(errs) != 0 || served["shop-new"] == before {
		t.Errorf("after re-making shop-new: served %v (was %v), errors %v", served["shop-new"], before, errs)
	}
	if r, err := query("/run/netns/shop-new", "udp", Address, "api2.", dns.TypeA); err != nil || cmp.Diff([]string{"10.0.1.3"}, aRecords(r)) != "" {
		t.Errorf("api2 from the re-made namespace: %v, %v", r, err)
	}
}

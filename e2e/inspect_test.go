package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/view"
)

// TestLookingInside checks ps, inspect and graph against the real kernel:
// what they show is what ip shows.
func TestLookingInside(t *testing.T) {
	h := newHost(t)
	file := example("shop")
	// Before up: everything is down; graph works without the kernel state.
	for _, c := range h.ps(file).Containers {
		if c.State != "down" || c.PID != 0 {
			t.Errorf("before up, ps shows %s as %s", c.Name, c.State)
		}
	}
	h.mustTopo("up", "-f", file)

	ps := h.ps(file)
	if ps.FormatVersion != "1" || ps.Project != "shop" || len(ps.Containers) != 4 {
		t.Fatalf("ps --json: %+v", ps)
	}
	for _, c := range ps.Containers {
		// Every address ps shows is on the interface it names, in the
		// namespace it names.
		for _, a := range c.Networks {
			got := ""
			for _, l := range h.links(c.Netns) {
				if l.Name == a.Interface && len(l.ipv4()) == 1 {
					got = l.ipv4()[0]
				}
			}
			if got == "" || got != a.Address {
				t.Errorf("ps: %s %s %s=%s, ip shows %q", c.Name, c.Netns, a.Interface, a.Address, got)
			}
		}
	}
	table := h.mustTopo("ps", "-f", file)
	if !strings.HasPrefix(table, "NAME ") || !strings.Contains(table, "0.0.0.0:8080->80/tcp") || !strings.Contains(table, "front=10.42.1.10/24") {
		t.Errorf("ps:\n%s", table)
	}

	var front view.NetworkDetail
	if err := json.Unmarshal([]byte(h.mustTopo("inspect", "-f", file, "front", "--json")), &front); err != nil {
		t.Fatal(err)
	}
	br := h.bridgeWith("10.42.1.1/24")
	want := view.NetworkDetail{FormatVersion: "1", Type: "network", Name: "front", Project: "shop", State: "up", Driver: "bridge", Bridge: br.Name,
		Subnet: "10.42.1.0/24", Gateway: "10.42.1.1", MTU: 1500, Members: []view.Member{{Container: "web", Interface: "eth0",
			HostLink: front.Members[0].HostLink, Address: "10.42.1.10/24", Aliases: []string{"www"}}}}
	if d := cmp.Diff(want, front); d != "" {
		t.Errorf("inspect front (-want +got):\n%s", d)
	}
	if out := h.mustSh("ip -o link show master " + br.Name); !strings.Contains(out, front.Members[0].HostLink+"@") {
		t.Errorf("%s is not on %s:\n%s", front.Members[0].HostLink, br.Name, out)
	}

	var web view.ContainerDetail
	if err := json.Unmarshal([]byte(h.mustTopo("inspect", "-f", file, "web", "--json")), &web); err != nil {
		t.Fatal(err)
	}
	if web.Type != "container" || web.PID != h.pidOf("shop", "web") || !h.alive(web.PID) || web.Log != "/run/topo/shop/containers/web.log" ||
		len(web.SharedBy) != 1 || web.SharedBy[0] != "probe" || len(web.Endpoints) != 2 || len(web.Routes) == 0 {
		t.Errorf("inspect web: %+v", web)
	}
	if mac := h.mustSh("ip -n shop-web -o link show eth0"); !strings.Contains(mac, web.Endpoints[0].MAC) {
		t.Errorf("inspect web: mac %s, ip shows:\n%s", web.Endpoints[0].MAC, mac)
	}
	if _, errOut, code := h.topo("inspect", "-f", file, "nope"); code != 1 || !strings.Contains(errOut, "no such network or container") {
		t.Errorf("inspect nope: exit %d, %s", code, errOut)
	}

	dot := h.mustTopo("graph", "-f", file)
	if _, err := exec.LookPath("dot"); err == nil {
		cmd := exec.Command("dot", "-Tsvg")
		cmd.Stdin = strings.NewReader(dot)
		if svg, err := cmd.Output(); err != nil || !strings.Contains(string(svg), "<svg") {
			t.Errorf("dot -Tsvg: %v\n%s", err, dot)
		}
	}
	if mm := h.mustTopo("graph", "-f", file, "--format", "mermaid"); !strings.HasPrefix(mm, "flowchart LR\n") || !strings.Contains(mm, "ctr_probe -.-|\"shares netns\"| ctr_web") {
		t.Errorf("graph --format mermaid:\n%s", mm)
	}
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "shop")
}

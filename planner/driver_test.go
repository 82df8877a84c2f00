package planner_test

import (
	"testing"

	"github.com/topolab/topo/planner"
)

// A driver topo does not have, or an option its driver does not take, is
// refused at its line by Check (and so by validate), before any kernel.
func TestUnknownDriverAndOptions(t *testing.T) {
	f := parse(t, `name: d
networks:
  a:
    driver: weave
  b:
    driver: bridge
    driver_opts: {com.docker.network.bridge.name: docker1}
  c: {}
`)
	want := `/lab/topo.yaml:4:13: network "a": driver "weave" is not supported: topo has bridge, cni, macvlan, overlay; write one of them or leave driver out
/lab/topo.yaml:7:5: network "b": driver_opts "com.docker.network.bridge.name": the bridge driver takes no options`
	if err := planner.Check(f); err == nil || err.Error() != want {
		t.Errorf("Check:\n%v\nwant:\n%s", err, want)
	}
}

// What the macvlan and external drivers refuse of a file, before any
// kernel, at the lines.
func TestDriverChecks(t *testing.T) {
	f := parse(t, `name: d
networks:
  a:
    driver: macvlan
  b:
    driver: macvlan
    driver_opts: {parent: eth1, macvlan_mode: loud, vlan: "5"}
    subnet: 192.168.50.0/24
  c:
    driver: macvlan
    driver_opts: {parent: eth1, macvlan_mode: passthru}
    subnet: 192.168.51.0/24
  e1:
    external: true
    driver: macvlan
  e2: {external: true, name: br-x, mtu: 1400, driver_opts: {a: b}}
  e3: {external: true, name: br-x}
containers:
  x: {networks: [a, c, e1, e2]}
  y:
    networks: [c, b]
    ports: ["80"]
`)
	want := `/lab/topo.yaml:4:13: network "a": the macvlan driver needs driver_opts parent: the host's link on the LAN (ip link lists them), as in driver_opts: {parent: eth1}
/lab/topo.yaml:3:3: network "a": a macvlan network needs the LAN's subnet: add subnet (and gateway, the LAN's router, if it is not the subnet's first address)
/lab/topo.yaml:7:5: network "b": driver_opts "vlan": the macvlan driver takes parent, macvlan_mode, host_link
/lab/topo.yaml:7:5: network "b": driver_opts macvlan_mode "loud" is not a macvlan mode: use one of bridge, private, vepa, passthru
/lab/topo.yaml:11:5: network "c": macvlan_mode passthru gives the parent to one container, and 2 join the network (x, y): use another mode, or one container
/lab/topo.yaml:15:13: network "e1": an external network is a host bridge topo joins: driver "macvlan" cannot be external; remove driver or external
/lab/topo.yaml:16:47: network "e2": an external network takes no driver_opts: its bridge is as the host has it
/lab/topo.yaml:16:41: network "e2": an external network takes no mtu: its bridge's is its own, and topo's links on it take it
/lab/topo.yaml:17:18: network "e3": its bridge br-x is network "e2"'s too (line 16): name it in one network
/lab/topo.yaml:22:13: container "y": ports: its publishes would go to network "c", a macvlan network, whose containers are reached at their own address on the LAN, not through the host's: remove ports, or attach the container to a bridge network first`
	if err := planner.Check(f); err == nil || err.Error() != want {
		t.Errorf("Check:\n%v\nwant:\n%s", err, want)
	}
}

// host_link needs bridge mode (the host's macvlan reaches the
// containers' only then) and ip_range (what the host routes through it).
func TestHostLinkChecks(t *testing.T) {
	f := parse(t, `name: d
networks:
  a:
    driver: macvlan
    driver_opts: {parent: eth1, host_link: "true"}
    subnet: 192.168.50.0/24
  b:
    driver: macvlan
    driver_opts: {parent: eth1, host_link: "true", macvlan_mode: private}
    subnet: 192.168.51.0/24
    ip_range: 192.168.51.128/25
  c:
    driver: macvlan
    driver_opts: {parent: eth1, host_link: "yes"}
    subnet: 192.168.52.0/24
`)
	want := `/lab/topo.yaml:5:5: network "a": driver_opts host_link needs ip_range: the host routes it to the containers through its macvlan, and the rest of the subnet through the parent
/lab/topo.yaml:9:5: network "b": driver_opts host_link needs macvlan_mode bridge: the host's macvlan reaches the containers' only in bridge mode
/lab/topo.yaml:14:5: network "c": driver_opts host_link "yes": write true or false`
	if err := planner.Check(f); err == nil || err.Error() != want {
		t.Errorf("Check:\n%v\nwant:\n%s", err, want)
	}
}

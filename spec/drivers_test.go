package spec

import (
	"strings"
	"testing"
)

// TestDriverKeys: a network's gateway, ip_range, external and name, read
// and checked where one network's keys are enough.
func TestDriverKeys(t *testing.T) {
	f, err := Parse("t.yaml", []byte(`networks:
  lan:
    driver: macvlan
    driver_opts: {parent: eth1}
    subnet: 192.168.50.0/24
    gateway: 192.168.50.254
    ip_range: 192.168.50.128/25
  lab: {external: true, name: br-lab}
  docker0: {external: true}
containers:
  a:
    networks:
      lan: {ipv4_address: 192.168.50.1}
`))
	if err != nil {
		t.Fatal(err)
	}
	lan := f.Network("lan")
	if lan.Gateway.String() != "192.168.50.254" || lan.IPRange.String() != "192.168.50.128/25" || lan.DriverOpts["parent"] != "eth1" {
		t.Errorf("lan: %+v", lan)
	}
	if lab := f.Network("lab"); !lab.External || lab.ExternalName != "br-lab" {
		t.Errorf("lab: %+v", lab)
	}
	if d := f.Network("docker0"); !d.External || d.ExternalName != "docker0" {
		t.Errorf("docker0: name defaults to the network's: %+v", d)
	}

	_, err = Parse("t.yaml", []byte(`networks:
  a: {subnet: 10.0.0.0/24, gateway: 10.0.0.9}
  b: {subnet: 10.0.1.0/24, gateway: 10.0.2.1, ip_range: 10.0.3.0/25}
  c: {gateway: 10.0.4.1}
  d: {name: br-d}
  e: {external: true, name: a-name-far-too-long}
  f: {driver: macvlan, subnet: 10.0.5.0/24, gateway: 10.0.5.7}
containers:
  x:
    networks:
      f: {ipv4_address: 10.0.5.7}
`))
	for _, want := range []string{
		`t.yaml:2:37: network "a": gateway 10.0.0.9 is not supported yet: topo's bridge holds the subnet's first address, 10.0.0.1; write that or leave gateway out`,
		`t.yaml:3:57: network "b": ip_range 10.0.3.0/25 is not inside subnet 10.0.1.0/24`,
		`t.yaml:3:37: network "b": gateway 10.0.2.1 is not an address of subnet 10.0.1.0/24: use one from 10.0.1.1 to 10.0.1.254`,
		`t.yaml:4:16: network "c": gateway and ip_range need the network's subnet: add subnet`,
		`t.yaml:5:7: network "d": name: is the host bridge of an external network: add external: true, or remove name (topo names its own bridges br-<hash>)`,
		`t.yaml:6:29: network "e": name "a-name-far-too-long" is 19 bytes long: a Linux interface name has at most 15`,
		`t.yaml:11:25: container "x": ipv4_address 10.0.5.7 is the gateway of network "f" (line 7): pick another`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %s\nin:\n%v", want, err)
		}
	}
}

package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCNIChain: an inline chain and a .conf file both become a
// conflist in JSON, numbers kept whole; a .conf's one plugin is the
// chain; a config path is the topology file's folder's.
func TestCNIChain(t *testing.T) {
	dir := t.TempDir()
	conf := `{"cniVersion": "1.0.0", "name": "mynet", "type": "ptp", "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}}`
	if err := os.WriteFile(filepath.Join(dir, "20-mynet.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "topo.yaml")
	src := `name: c
networks:
  plug:
    driver: cni
    cni:
      cniVersion: 1.0.0
      plugins:
        - { type: bridge, ipam: { type: host-local, ranges: [[{ subnet: 10.88.0.0/24 }]] } }
        - { type: bandwidth, ingressRate: 10000000, ingressBurst: 100000 }
  plug2:
    driver: cni
    cni: { config: 20-mynet.conf }
containers:
  a: { networks: [plug, plug2] }
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"plug":  `{"cniVersion":"1.0.0","plugins":[{"ipam":{"ranges":[[{"subnet":"10.88.0.0/24"}]],"type":"host-local"},"type":"bridge"},{"ingressBurst":100000,"ingressRate":10000000,"type":"bandwidth"}]}`,
		"plug2": `{"cniVersion":"1.0.0","name":"mynet","plugins":[{"ipam":{"subnet":"10.1.0.0/24","type":"host-local"},"type":"ptp"}]}`,
	} {
		n := f.Network(name)
		if n == nil || n.CNI == nil {
			t.Fatalf("network %s has no chain: %+v", name, n)
		}
		if got := string(n.CNI.Config); got != want {
			t.Errorf("%s's chain:\n%s\nwant\n%s", name, got, want)
		}
	}
	if got := f.Network("plug2").CNI.File; got != filepath.Join(dir, "20-mynet.conf") {
		t.Errorf("plug2's file: %s", got)
	}
}

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
    driver: overlay
  b:
    driver: bridge
    driver_opts: {com.docker.network.bridge.name: docker1}
  c: {}
`)
	want := `/lab/topo.yaml:4:13: network "a": driver "overlay" is not supported: topo has bridge; write one of them or leave driver out
/lab/topo.yaml:7:5: network "b": driver_opts "com.docker.network.bridge.name": the bridge driver takes no options`
	if err := planner.Check(f); err == nil || err.Error() != want {
		t.Errorf("Check:\n%v\nwant:\n%s", err, want)
	}
}

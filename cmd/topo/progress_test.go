package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/kernel"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// run applies the plan of src on a fake kernel whose step failAt (1-based;
// 0 for none) fails, and returns what progress printed, durations hidden.
func runProgress(t *testing.T, tty bool, failAt int) string {
	t.Helper()
	f, err := spec.Parse("/lab/topo.yaml", []byte("name: lab\nnetworks:\n  lan: {subnet: 10.1.0.0/24}\ncontainers:\n  a: {networks: [lan]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := kernel.NewFake(nil)
	obs, _ := k.Observe(context.Background(), "lab")
	p, _, err := planner.Up(f, obs)
	if err != nil {
		t.Fatal(err)
	}
	// Firewall steps span many lines; this test is about the frame around
	// steps, which single-line steps show best.
	// So do DNS steps, which would only lengthen it.
	steps := p.Steps[:0]
	for _, st := range p.Steps {
		switch st.Op {
		case planner.OpFileWrite, planner.OpRecordsWrite, planner.OpResolverStart:
			continue
		}
		if st.Op != planner.OpFirewall {
			steps = append(steps, st)
		}
	}
	p.Steps = steps
	n := 0
	k.FailOn = func(planner.Step) error {
		if n++; n == failAt {
			return errors.New("injected failure")
		}
		return nil
	}
	var b strings.Builder
	pr := &progress{w: &b, tty: tty, total: len(p.Steps), begun: time.Now()}
	err = (&applier.Applier{Exec: k, Hook: pr}).Apply(context.Background(), p)
	pr.done("up", p, err)
	return regexp.MustCompile(`\d+(\.\d+)?[µnm]?s\b`).ReplaceAllString(b.String(), "T")
}

func TestProgressTerminal(t *testing.T) {
	want := `[1/7] ~ sysctl -w net.ipv4.ip_forward=1  # host ... ok T
[2/7] + ip netns add lab-a  # container a ... ok T
[3/7] + ip link add br-a6b5d089720b address 02:42:0a:01:00:01 type bridge  # network lan ... ok T
[4/7] + ip addr add 10.1.0.1/24 dev br-a6b5d089720b  # network lan ... FAILED
    injected failure
  rolled back step 3: - ip link del br-a6b5d089720b  # network lan
  rolled back step 2: - ip netns del lab-a  # container a
  rolled back step 1: ~ sysctl -w net.ipv4.ip_forward=0  # host
Project lab: up failed in T at step 4 of 7: + ip addr add 10.1.0.1/24 dev br-a6b5d089720b  # network lan
Rolled back the 3 steps done before it, in reverse: the kernel is as it was.
`
	if d := cmp.Diff(want, runProgress(t, true, 4)); d != "" {
		t.Errorf("terminal output (-want +got):\n%s", d)
	}
	if got := runProgress(t, true, 0); !strings.HasSuffix(got, "[7/7] + ip -n lab-a route add default via 10.1.0.1  # container a ... ok T\nProject lab: up done in T: 6 added, 1 changed, 0 destroyed.\n") {
		t.Errorf("terminal output of a success:\n%s", got)
	}
}

func TestProgressPiped(t *testing.T) {
	want := `~ sysctl -w net.ipv4.ip_forward=1  # host
+ ip netns add lab-a  # container a
  failed: injected failure
  rolled back step 1: ~ sysctl -w net.ipv4.ip_forward=0  # host
Project lab: up failed at step 2 of 7: + ip netns add lab-a  # container a
Rolled back the 1 steps done before it, in reverse: the kernel is as it was.
`
	if d := cmp.Diff(want, runProgress(t, false, 2)); d != "" {
		t.Errorf("piped output (-want +got):\n%s", d)
	}
	if got := runProgress(t, false, 1); !strings.HasSuffix(got, "Nothing had changed; nothing was rolled back.\n") {
		t.Errorf("failure at the first step:\n%s", got)
	}
}

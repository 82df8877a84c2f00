package view

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/applier"
	"github.com/topolab/topo/machine/fake"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// upPlan is the plan of up of project lab, whose containers are given as
// YAML, on an empty fake kernel.
func upPlan(t *testing.T, containers string) *planner.Plan {
	t.Helper()
	f, err := spec.Parse("/lab/topo.yaml", []byte("name: lab\nnetworks:\n  lan: {subnet: 10.1.0.0/24}\ncontainers:\n"+containers))
	if err != nil {
		t.Fatal(err)
	}
	obs, _ := fake.New(nil).Observe(context.Background(), "lab")
	p, _, err := planner.Up(f, obs, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run applies the plan of src on a fake kernel whose step failAt (1-based;
// 0 for none) fails, and returns what progress printed, durations hidden.
func runProgress(t *testing.T, tty bool, failAt int) string {
	t.Helper()
	k := fake.New(nil)
	p := upPlan(t, "  a: {networks: [lan]}\n")
	// Firewall steps span many lines; this test is about the frame around
	// steps, which single-line steps show best.
	// So do DNS and UTS steps, which would only lengthen it.
	steps := p.Steps[:0]
	for _, st := range p.Steps {
		switch st.Op.(type) {
		case op.FileWrite, op.RecordsWrite, op.ResolverStart, op.FirewallBatch, op.UTSAdd:
			continue
		}
		steps = append(steps, st)
	}
	p.Steps = steps
	n := 0
	m := failing{k, func(op.Operation) bool { n++; return n == failAt }}
	var b strings.Builder
	pr := &Progress{w: &b, tty: tty, begun: time.Now()}
	pr.Planned(p)
	obs, _ := k.Observe(context.Background(), "lab")
	err := (&applier.Applier{Machine: m, Hook: pr}).Apply(context.Background(), p)
	var se *applier.StepError
	if errors.As(err, &se) {
		// As package txn does: observe again and compare.
		after, _ := k.Observe(context.Background(), "lab")
		se.Compared = planner.Compare("lab", obs, after, planner.Options{})
	}
	pr.Done("up", p, err)
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
Project lab: up failed in T at step 2 of 7: + ip netns add lab-a  # container a
Rolled back the 1 steps done before it, in reverse: the kernel is as it was.
`
	if d := cmp.Diff(want, runProgress(t, false, 2)); d != "" {
		t.Errorf("piped output (-want +got):\n%s", d)
	}
	if got := runProgress(t, false, 1); !strings.HasSuffix(got, "Nothing had changed; nothing was rolled back.\n") {
		t.Errorf("failure at the first step:\n%s", got)
	}
}

// failing is the fake machine, batching as it does, where fail says an
// operation fails.
type failing struct {
	*fake.Machine
	fail func(op.Operation) bool
}

func (f failing) Apply(ctx context.Context, o op.Operation) error {
	if f.fail(o) {
		return errors.New("injected failure")
	}
	return f.Machine.Apply(ctx, o)
}

func (f failing) ApplyBatch(ctx context.Context, ops []op.Operation) []error {
	errs := make([]error, len(ops))
	for i, o := range ops {
		errs[i] = f.Apply(ctx, o)
	}
	return errs
}

// TestProgressOfBatchesAndFirewallSteps: on a terminal, the steps of a
// batch, begun together, each show with their own result; a firewall
// step shows one numbered line per command, its result on the last; the
// counter counts the commands shown, and so do the numbers of the
// summary. Piped, the summary says how long the run took.
func TestProgressOfBatchesAndFirewallSteps(t *testing.T) {
	up := upPlan(t, "  a: {networks: [lan]}\n  b: {networks: [lan]}\n")
	k := fake.New(nil)
	if err := (&applier.Applier{Machine: k}).Apply(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	obs, _ := k.Observe(context.Background(), "lab")
	down := planner.Down("lab", obs, planner.Options{})
	run := func(tty bool, fail func(op.Operation) bool) string {
		t.Helper()
		fk := fake.New(nil)
		if err := (&applier.Applier{Machine: fk}).Apply(context.Background(), up); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		pr := &Progress{w: &b, tty: tty, begun: time.Now()}
		pr.Planned(down)
		err := (&applier.Applier{Machine: failing{fk, fail}, Hook: pr}).Apply(context.Background(), down)
		pr.Done("down", down, err)
		return regexp.MustCompile(`\d+(\.\d+)?[µnm]?s\b`).ReplaceAllString(b.String(), "T")
	}
	none := func(op.Operation) bool { return false }
	got := run(true, none)
	t.Logf("terminal:\n%s", got)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	commands := 0
	for _, s := range down.Steps {
		commands += len(commandLines(s))
	}
	if len(lines) != commands+1 {
		t.Fatalf("%d lines for %d commands and a summary:\n%s", len(lines), commands, got)
	}
	counter := regexp.MustCompile(`^\[ ?(\d+)/(\d+)\] [-+~] `)
	for n, line := range lines[:commands] {
		m := counter.FindStringSubmatch(line)
		if m == nil || m[1] != fmt.Sprint(n+1) || m[2] != fmt.Sprint(commands) {
			t.Errorf("line %d has not counter [%d/%d]: %q", n+1, n+1, commands, line)
		}
	}
	// Each step's result ends its last line, and no line is a result alone.
	for i, s := range down.Steps {
		last := lines[firstLine(down, i)+len(commandLines(s))-1]
		if !strings.HasSuffix(last, commandLines(s)[len(commandLines(s))-1]+" ... ok T") {
			t.Errorf("step %d (%s): its last line is %q, want its command and its result", i+1, s.Headline(), last)
		}
	}
	// The namespaces' deletions ran as one batch.
	if !strings.Contains(got, "- ip netns del lab-a  # container a ... ok T\n[ 6/") || !strings.Contains(got, "- ip netns del lab-b  # container b ... ok T\n") {
		t.Errorf("the deletions of a and b:\n%s", got)
	}
	if sum := down.Summary(); !strings.HasSuffix(got, fmt.Sprintf("Project lab: down done in T: %d added, %d changed, %d destroyed.\n", sum.Add, sum.Change, sum.Destroy)) {
		t.Errorf("summary:\n%s", got)
	}

	// A failure in the batch: both deletions show their result, the
	// summary counts by the counter.
	got = run(true, func(o op.Operation) bool { _, ok := o.(op.NetnsDel); return ok })
	for _, want := range []string{
		"- ip netns del lab-a  # container a ... FAILED\n    injected failure\n",
		"- ip netns del lab-b  # container b ... FAILED\n    injected failure\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("failed batch: no %q in\n%s", want, got)
		}
	}
	at := firstLine(down, slices.IndexFunc(down.Steps, func(s op.Step) bool { _, ok := s.Op.(op.NetnsDel); return ok })) + 1
	if !strings.Contains(got, fmt.Sprintf("Project lab: down failed in T at step %d of %d: - ip netns del lab-a", at, commands)) {
		t.Errorf("failed batch, summary (want step %d of %d):\n%s", at, commands, got)
	}

	// Piped: the step lines as a plan shows them, and the duration.
	got = run(false, none)
	if !strings.Contains(got, "\nProject lab: down done in T: ") || strings.Count(got, "\n") != commands+1 || strings.Contains(got, "[") {
		t.Errorf("piped:\n%s", got)
	}
}

// firstLine is the index, in a terminal rendering, of step i's first line.
func firstLine(p *planner.Plan, i int) int {
	n := 0
	for _, s := range p.Steps[:i] {
		n += len(commandLines(s))
	}
	return n
}

// TestProgressSaysNotRun: a step that another's failure stopped is shown
// as not run, with why, not as failed.
func TestProgressSaysNotRun(t *testing.T) {
	s := op.Step{Action: op.Create, Ref: op.Host, Op: op.Sysctl{Key: "net.ipv4.ip_forward", Value: "1"}}
	stopped := fmt.Errorf("%w: an operation of the same batch failed", op.ErrNotRun)
	for _, tty := range []bool{true, false} {
		var b strings.Builder
		pr := &Progress{w: &b, tty: tty, begun: time.Now()}
		pr.Planned(&planner.Plan{Steps: []op.Step{s}})
		pr.BeforeStep(0, s)
		pr.AfterStep(0, s, stopped)
		if got := b.String(); !strings.Contains(got, "not run: an operation of the same batch failed\n") || strings.Contains(strings.ToLower(got), "failed:") || strings.Contains(got, "FAILED") {
			t.Errorf("tty %v: %q, want the step not run, not failed", tty, got)
		}
	}
}

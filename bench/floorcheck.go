package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/internal/benchtopo"
	"github.com/topolab/topo/state"
)

// checkFloor proves the floor makes what topo makes: it brings a topology
// of n containers up with topo, observes the kernel as topo does, takes
// it down, brings it up with the floor and observes again, then takes
// that down and observes once more. It fails with the difference if the
// floor's up leaves another state than topo's (leaving aside what the
// floor deliberately does not make, see floorView), or its down another
// than the sandbox had before.
func checkFloor(ctx context.Context, o *options, dir string, n int) error {
	t := benchtopo.Topology{Project: "bench", N: n, K: min(o.k, n)}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	yaml := filepath.Join(dir, fmt.Sprintf("topo-%d.yaml", n))
	if err := os.WriteFile(yaml, t.YAML(), 0o644); err != nil {
		return err
	}
	base, err := baseline()
	if err != nil {
		return err
	}
	before, err := observe(ctx, t.Project)
	if err != nil {
		return err
	}
	target, err := writeFloorTarget(ctx, yaml)
	if err != nil {
		return err
	}
	floorUp, err := floorCommand("up", target)
	if err != nil {
		return err
	}
	floorDown, err := floorCommand("down", target)
	if err != nil {
		return err
	}
	// up, then down, of one tool; returns the kernel after each.
	cycle := func(up, down []string) (afterUp, afterDown *state.Snapshot, err error) {
		if _, err := measure(o.timeout, up); err != nil {
			return nil, nil, fmt.Errorf("up: %w", err)
		}
		if afterUp, err = observe(ctx, t.Project); err != nil {
			return nil, nil, err
		}
		if _, err := measure(o.timeout, down); err != nil {
			return nil, nil, fmt.Errorf("down: %w", err)
		}
		if _, err := settle(base, o.timeout); err != nil {
			return nil, nil, err
		}
		afterDown, err = observe(ctx, t.Project)
		return afterUp, afterDown, err
	}
	topoUp, _, err := cycle([]string{o.topo, "-f", yaml, "up"}, []string{o.topo, "-f", yaml, "down"})
	if err != nil {
		return fmt.Errorf("topo: %w", err)
	}
	up, down, err := cycle(floorUp, floorDown)
	if err != nil {
		return fmt.Errorf("kernel floor: %w", err)
	}
	if d := cmp.Diff(floorView(topoUp), floorView(up)); d != "" {
		return fmt.Errorf("at N=%d the kernel floor's up leaves another kernel than topo's up (-topo +floor):\n%s", n, d)
	}
	if d := cmp.Diff(floorView(before), floorView(down)); d != "" {
		return fmt.Errorf("at N=%d the kernel floor's down leaves another kernel than there was before up (-before +after):\n%s", n, d)
	}
	return nil
}

// floorView is s without what the floor deliberately does not make:
// topo's processes (the resolver and its state) and topo's records of
// the sysctls it changed. The containers' UTS namespaces, kernel state
// that topo keeps in its runtime folder, are compared.
func floorView(s *state.Snapshot) *state.Snapshot {
	v := *s
	v.Processes, v.Resolver, v.SysctlsBefore = nil, nil, nil
	return &v
}

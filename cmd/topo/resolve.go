package main

import (
	"fmt"

	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// containerNS is the namespace a container's processes run in, and checks
// that it is up: its own, the one of NAME for network_mode container:NAME,
// "" (topo's own) for host. Without the file (-p alone), every container is
// taken to own its namespace.
func (g *globals) containerNS(project string, obs *state.Snapshot, container string) (string, error) {
	owner := container
	if f, err := g.load(); err == nil && f.Project == project {
		c := f.Container(container)
		if c == nil {
			return "", fmt.Errorf("container %s: no such container in %s", container, g.file)
		}
		switch c.Mode {
		case spec.ModeHost:
			return "", nil
		case spec.ModeContainer:
			owner = c.ModeTarget
		}
	}
	name := planner.NamespaceName(project, owner)
	ns := obs.Namespace(name)
	want := state.Mark{Project: project, Kind: state.KindNamespace, Name: owner}.String()
	if ns == nil || ns.Mark != want {
		return "", fmt.Errorf("container %s of project %s is not up (no namespace %s); run topo up first", container, project, name)
	}
	return name, nil
}

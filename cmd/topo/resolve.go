package main

import (
	"fmt"
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
)

// owner is the container whose namespace container runs in, by the file:
// itself, NAME for network_mode container:NAME, and host true for
// network_mode host. A name the file does not have is an error that lists
// those it has. Without the file (-p alone, or -p of another project),
// every container is taken to own its namespace.
func (g *globals) owner(project, container string) (owner string, host bool, err error) {
	f, err := g.load()
	if err != nil || f.Project != project {
		return container, false, nil
	}
	if err := g.knownContainers(f, []string{container}); err != nil {
		return "", false, err
	}
	c := f.Container(container)
	switch c.Mode {
	case spec.ModeHost:
		return "", true, nil
	case spec.ModeContainer:
		return c.ModeTarget, false, nil
	}
	return container, false, nil
}

// upNamespace is the namespace of owner, the container whose namespace
// container runs in, and checks that it is up. Without the file, a
// container with no namespace may be one that does not exist: the error
// names those of the project that are up.
func upNamespace(project string, obs *state.Snapshot, container, owner string) (string, error) {
	name := names.Namespace(project, owner)
	ns := obs.Namespace(name)
	if ns != nil && ns.Mark == names.NewMark(project, names.KindNamespace, owner).String() {
		return name, nil
	}
	var up []string
	for _, ns := range obs.Namespaces {
		if m, ok := names.ParseMark(ns.Mark); ok && m.Project == project && m.Kind == names.KindNamespace {
			up = append(up, m.Name)
		}
	}
	whose := ""
	if owner != container {
		whose = fmt.Sprintf(" (it shares %s's namespace)", owner)
	}
	upNow := "none of the project's containers is up"
	if len(up) > 0 {
		upNow = "up now: " + strings.Join(up, ", ")
	}
	return "", fmt.Errorf("container %s of project %s is not up%s: no namespace %s (%s); run topo up first", container, project, whose, name, upNow)
}

// containerNS is the namespace a container's processes run in, checked to
// be up: its own, the one of NAME for network_mode container:NAME, ""
// (topo's own) for host.
func (g *globals) containerNS(project string, obs *state.Snapshot, container string) (string, error) {
	owner, host, err := g.owner(project, container)
	if err != nil || host {
		return "", err
	}
	return upNamespace(project, obs, container, owner)
}

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/journal"
	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/registry"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/view"
)

// recorded is the project -p names as its last up recorded it, for the
// commands that only read, when no file is named (-f, COMPOSE_FILE): the
// project is read from the host, not from the folder topo runs in. nil
// when that does not apply or the project has no record.
func (g *globals) recorded() (*spec.File, error) {
	if !g.reads || g.project == "" || len(g.files) > 0 || os.Getenv("COMPOSE_FILE") != "" {
		return nil, nil
	}
	if err := spec.CheckProjectName(g.project); err != nil {
		return nil, err
	}
	return registry.Load(g.runtime, g.project)
}

// upRecord is what record keeps of an up: rendered before the up, so
// that the files' YAML tree goes before the run (see renderRecord).
type upRecord struct {
	files []string
	doc   []byte
}

// renderRecord renders the record of an up of project from the files
// read, and lets go of their YAML tree: at N=5000 the tree, and the
// garbage of rendering it after the run, were 20-30 MiB of up's peak
// memory. nil when the project was read from a record: nothing new to
// keep.
func (g *globals) renderRecord(project string) (*upRecord, error) {
	if g.doc == nil {
		return nil, nil
	}
	files, err := g.projectFiles()
	if err != nil {
		return nil, err
	}
	r := &upRecord{files: make([]string, len(files))}
	for i, f := range files {
		if r.files[i], err = filepath.Abs(f); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	if err := g.doc.Render(&b, "yaml", project); err != nil {
		return nil, err
	}
	r.doc = b.Bytes()
	g.doc = nil
	return r, nil
}

// record keeps, after an up that succeeded, where the project came from
// and what its files resolved to (package registry).
func (g *globals) record(project string, r *upRecord) error {
	if r == nil {
		return nil
	}
	return registry.Write(g.runtime, project, registry.Source{Files: r.files}, r.doc)
}

func newLsCmd(g *globals) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the projects on this host: state, containers, networks, the files they came from",
		Long: `ls lists the projects this host has, found by the ownership marks of their
bridges and veths and by their runtime folders (/run/topo/PROJECT): each
with its state (running: as its last up left it; partly up: some of it is
missing, stopped or changed; interrupted: an up or down was cut short),
its containers up out of those it has, its networks up and the files of
its last up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: use table or json", format)
			}
			k, err := g.openMachine("ls")
			if err != nil {
				return err
			}
			projects, err := hostProjects(k, g.runtime)
			if err != nil {
				return err
			}
			out := &view.LS{FormatVersion: view.FormatVersion, Projects: []view.Project{}}
			for _, p := range projects {
				lp, err := g.lsProject(k, p)
				if err != nil {
					return fmt.Errorf("project %s: %w", p, err)
				}
				out.Projects = append(out.Projects, *lp)
			}
			return g.printList(quiet, format, projects, out, out.Render)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the projects' names only")
	return cmd
}

// hostProjects are the projects with a runtime folder or a marked link in
// the host's namespace (a bridge, a veth's host end), sorted.
func hostProjects(k machine.Machine, rt names.Runtime) ([]string, error) {
	projects, err := registry.Projects(rt)
	if err != nil {
		return nil, err
	}
	obs, err := k.Observe(ctx(), "")
	if err != nil {
		return nil, err
	}
	for _, l := range obs.Host.Links {
		if m, ok := names.ParseMark(l.Alias); ok && !slices.Contains(projects, m.Project) {
			projects = append(projects, m.Project)
		}
	}
	slices.Sort(projects)
	return projects, nil
}

// lsProject is one project's line of ls.
func (g *globals) lsProject(k machine.Machine, project string) (*view.Project, error) {
	obs, err := k.Observe(ctx(), project)
	if err != nil {
		return nil, err
	}
	lp := &view.Project{Name: project, Networks: []string{}, Files: []string{}}
	for _, l := range obs.Host.Links {
		if m, ok := names.ParseMark(l.Alias); ok && m.Project == project && m.Kind == names.KindNetwork {
			lp.Networks = append(lp.Networks, m.Name)
		}
	}
	slices.Sort(lp.Networks)
	src, err := registry.ReadSource(g.runtime, project)
	if err != nil {
		return nil, err
	}
	if src != nil {
		lp.Files = src.Files
	}
	f, err := registry.Load(g.runtime, project)
	if err != nil {
		return nil, err
	}
	converged := false
	if f != nil {
		m, err := planner.Desire(f, obs)
		if err != nil {
			return nil, err
		}
		for _, c := range view.BuildPS(&view.Input{File: f, Model: m, Obs: obs, Runtime: g.runtime}).Containers {
			lp.Containers++
			if c.State != view.StateDown {
				lp.ContainersUp++
			}
		}
		plan, _, err := planner.Up(f, obs, g.plans())
		converged = err == nil && plan.Empty()
	} else {
		// A project of a topo from before records: what the marks say.
		for _, ns := range obs.Namespaces {
			if names.Owns(ns.Mark, project, names.KindNamespace) {
				lp.ContainersUp++
			}
		}
		lp.Containers = lp.ContainersUp
		converged = allRun(obs.Processes)
	}
	pending, err := journal.Read(g.runtime.Project(project))
	switch {
	case err != nil:
		return nil, err
	case pending != nil:
		lp.State = view.ProjectInterrupted
	case converged:
		lp.State = view.ProjectRunning
	default:
		lp.State = view.ProjectPartly
	}
	return lp, nil
}

// allRun says every command runs, or finished as a one-shot.
func allRun(procs []state.Process) bool {
	for _, pr := range procs {
		if !pr.Running && !pr.Finished() {
			return false
		}
	}
	return true
}

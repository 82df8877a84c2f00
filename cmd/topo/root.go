package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
)

// env is what the commands run on: injected, so that tests run them on a
// fake machine, without root.
type env struct {
	// machine opens the machine; prefetch starts reading its firewall at
	// once (plan, up and down, before they parse the file).
	machine func(ctx context.Context, prefetch bool) (machine.Machine, error)
	runtime names.Runtime
	// root says the process may read and change the machine.
	root bool
	// growFileTable grows the file table early (see
	// linux.GrowFileTable); nil does nothing.
	growFileTable func()
}

// globals are the flags every command shares, and its environment.
type globals struct {
	env
	files    []string
	profiles []string
	envFiles []string
	// found are the files discovered without -f; loaded (or loadErr) the
	// project they make, read once per command.
	found   []string
	loaded  *spec.File
	loadErr error
	// doc is the files resolved, when they were read (not a record).
	doc *spec.Document
	// reads is set for the commands that only read (and stop, start,
	// restart, which change no network): -p without a file names a
	// recorded project (see recorded).
	reads   bool
	project string
	verbose bool
	stdout  io.Writer
	stderr  io.Writer
	// bulk is set for the bulk commands, which keep a netlink socket
	// open in every namespace; growing starts the table's growth once.
	bulk    bool
	growing sync.Once
}

// bulkAnnotation marks plan, up and down, which read or change
// every namespace of the project in a run of a second or less. They grow
// the file table early (see growFileTable). They keep Go's default GC
// (GOGC=100): at GOGC=400 a down at N=500 freed its namespaces 7.5 ms
// sooner and planning took 8 ms instead of 12.6, but the heap grew to five
// times what is live, and that was most of the peak memory: at N=5000 up,
// plan and down peaked at 313 MiB (60 KiB a container above the base),
// 206 MiB at the default (issue 24).
const bulkAnnotation = "bulk"

// readsAnnotation marks the commands that take -p without a file.
const readsAnnotation = "reads"

func newRootCmd(stdout, stderr io.Writer, e env) *cobra.Command {
	g := &globals{env: e, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "topo",
		Short: "Declarative network topologies: bridges, veths, namespaces, DNS and port publishes from one YAML file",
		Long: `topo makes the kernel's networking match a topology file, the way Docker
and Compose would, without a container engine. A container is a named
network namespace (see 'ip netns'), optionally running a command.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		_, g.bulk = cmd.Annotations[bulkAnnotation]
		_, g.reads = cmd.Annotations[readsAnnotation]
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	g.fileFlags(root.PersistentFlags())
	root.PersistentFlags().StringVarP(&g.project, "project-name", "p", "", "project name (default: the file's name:, else its folder's name); without -f, ps, inspect, port, exec, logs, graph, stop, start and restart read the project as its last up recorded it")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "say more on standard error (e.g. which iptables backend is used)")
	root.AddCommand(
		newValidateCmd(g),
		newPlanCmd(g),
		newUpCmd(g),
		newDownCmd(g),
		newLifecycleCmd(g, verbStop),
		newLifecycleCmd(g, verbStart),
		newLifecycleCmd(g, verbRestart),
		newLsCmd(g),
		newExecCmd(g),
		newPsCmd(g),
		newInspectCmd(g),
		newGraphCmd(g),
		newLogsCmd(g),
		newPortCmd(g),
		newSchemaCmd(g),
		newConfigCmd(g),
		newVersionCmd(g),
		newResolverCmd(g),
	)
	g.completions(root)
	return root
}

// projectName is -p, else the file's project, read without the kernel.
func (g *globals) projectName() (string, error) {
	if g.project != "" {
		g.growFileTable()
		return g.project, spec.CheckProjectName(g.project)
	}
	f, err := g.load()
	if err != nil {
		return "", fmt.Errorf("%w (or name the project with -p)", err)
	}
	return f.Project, nil
}

// growFileTable starts, once and in the background, the growth of the
// process's file table to its final size (linux.GrowFileTable) in the
// commands that need it. It waits for an RCU grace period, and so does
// any file opened meanwhile.
func (g *globals) growFileTable() {
	if g.bulk && g.env.growFileTable != nil {
		g.growing.Do(func() { go g.env.growFileTable() })
	}
}

// openMachine checks the privileges topo needs and opens the machine.
func (g *globals) openMachine(cmd string) (machine.Machine, error) {
	if !g.root {
		return nil, fmt.Errorf("topo %s needs root: it reads and changes network namespaces (run it with sudo)", cmd)
	}
	return g.machine(ctx(), false)
}

// openMachineEarly is openMachine for plan, up and down, called before the
// file is parsed: the machine starts reading the firewall, which the
// command's observation needs, while the file is parsed.
func (g *globals) openMachineEarly(cmd string) (machine.Machine, error) {
	if !g.root {
		return g.openMachine(cmd)
	}
	return g.machine(ctx(), true)
}

// plans are the planner's options: the runtime's paths.
func (g *globals) plans() planner.Options { return planner.Options{Runtime: g.runtime} }

func ctx() context.Context { return context.Background() }

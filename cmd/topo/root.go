package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/kernel"
	"github.com/topolab/topo/spec"
)

// globals are the flags every command shares.
type globals struct {
	files    []string
	profiles []string
	envFiles []string
	// found are the files discovered without -f; loaded (or loadErr) the
	// project they make, read once per command.
	found   []string
	loaded  *spec.File
	loadErr error
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
// the file table early (see growFileTable), and collect garbage less
// often: with GOGC=400 rather than 100, a down at N=500 freed its
// namespaces 7.5 ms sooner (median of 10, A/B), planning took 8 ms
// instead of 12.6, and the heap may grow to five times what is live
// rather than twice. GOGC in the environment still wins.
const bulkAnnotation = "bulk"

// bulkGCPercent is GOGC for the bulk commands.
const bulkGCPercent = 400

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
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
		if _, set := os.LookupEnv("GOGC"); g.bulk && !set {
			debug.SetGCPercent(bulkGCPercent)
		}
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	g.fileFlags(root.PersistentFlags())
	root.PersistentFlags().StringVarP(&g.project, "project-name", "p", "", "project name (default: the file's name:, else its folder's name)")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "say more on standard error (e.g. which iptables backend is used)")
	root.AddCommand(
		newValidateCmd(g),
		newPlanCmd(g),
		newUpCmd(g),
		newDownCmd(g),
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
// process's file table to its final size (kernel.GrowFileTable) in the
// commands that need it. It waits for an RCU grace period, and so does
// any file opened meanwhile.
func (g *globals) growFileTable() {
	if g.bulk {
		g.growing.Do(func() { go kernel.GrowFileTable() })
	}
}

// openKernel checks the privileges topo needs and returns the real kernel.
func openKernel(cmd string) (kernel.Kernel, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("topo %s needs root: it reads and changes network namespaces (run it with sudo)", cmd)
	}
	return kernel.New()
}

// openKernelEarly is openKernel for plan, up and down, called before the
// file is parsed: the kernel starts reading the firewall, which the
// command's observation needs, while the file is parsed.
func openKernelEarly(cmd string) (kernel.Kernel, error) {
	k, err := openKernel(cmd)
	if p, ok := k.(interface{ PrefetchFirewall(context.Context) }); ok {
		p.PrefetchFirewall(ctx())
	}
	return k, err
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func ctx() context.Context { return context.Background() }

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/kernel"
	"github.com/topolab/topo/spec"
)

// globals are the flags every command shares.
type globals struct {
	file    string
	project string
	verbose bool
	stdout  io.Writer
	stderr  io.Writer
}

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
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.file, "file", "f", "topo.yaml", "topology file")
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
		newVersionCmd(g),
		newResolverCmd(g),
	)
	return root
}

// load reads and validates the file, applying -p.
func (g *globals) load() (*spec.File, error) {
	f, err := spec.Load(g.file)
	if err != nil {
		return nil, err
	}
	if g.project != "" {
		if err := spec.CheckProjectName(g.project); err != nil {
			return nil, err
		}
		f.Project = g.project
	}
	return f, nil
}

// projectName is -p, else the file's project, read without the kernel.
func (g *globals) projectName() (string, error) {
	if g.project != "" {
		return g.project, spec.CheckProjectName(g.project)
	}
	f, err := g.load()
	if err != nil {
		return "", fmt.Errorf("%w (or name the project with -p)", err)
	}
	return f.Project, nil
}

// openKernel checks the privileges topo needs and returns the real kernel.
func openKernel(cmd string) (kernel.Kernel, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("topo %s needs root: it reads and changes network namespaces (run it with sudo)", cmd)
	}
	return kernel.New()
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func ctx() context.Context { return context.Background() }

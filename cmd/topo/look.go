package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/state"
	"github.com/topolab/topo/view"
)

// lookInput reads the file and the live kernel into what the views show.
// With needRoot false and no root, the kernel is taken to be empty, so the
// views show the project as up would make it.
func (g *globals) lookInput(cmd string, needRoot bool) (*view.Input, error) {
	f, err := g.load()
	if err != nil {
		return nil, err
	}
	obs := &state.Snapshot{}
	if needRoot || g.root {
		k, err := g.openMachine(cmd)
		if err != nil {
			return nil, err
		}
		if obs, err = k.Observe(ctx(), f.Project); err != nil {
			return nil, err
		}
	}
	m, err := planner.Desire(f, obs)
	if err != nil {
		return nil, err
	}
	return &view.Input{File: f, Model: m, Obs: obs, Ports: publishedPorts(m), Runtime: g.runtime}, nil
}

// publishedPorts gives the host side of a container's published ports as
// the model resolved them: host ports topo picked are those the kernel's
// rules hold (or, before up, those up would pick).
func publishedPorts(m *planner.Model) func(*spec.Container) []view.Port {
	return func(c *spec.Container) []view.Port {
		out := []view.Port{}
		for _, mc := range m.Containers {
			if mc.Name != c.Name {
				continue
			}
			for _, p := range mc.Publishes {
				out = append(out, view.Port{HostIP: p.HostIP.String(), HostPort: int(p.HostPort), ContainerPort: int(p.Port), Protocol: p.Proto})
			}
		}
		return out
	}
}

func newPsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the project's containers: state, namespace, addresses, ports, command and pid",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := g.lookInput("ps", true)
			if err != nil {
				return err
			}
			ps := view.BuildPS(in)
			if asJSON {
				return view.RenderJSON(g.stdout, ps)
			}
			return ps.Render(g.stdout)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (shape in README.md)")
	return cmd
}

func newInspectCmd(g *globals) *cobra.Command {
	var asJSON bool
	var kind string
	cmd := &cobra.Command{
		Use:   "inspect NAME",
		Short: "Show a network (subnet, gateway, bridge, members) or a container in detail",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind != "" && kind != "network" && kind != "container" {
				return fmt.Errorf("--type %q: use network or container", kind)
			}
			in, err := g.lookInput("inspect", true)
			if err != nil {
				return err
			}
			d, err := view.Inspect(in, args[0], kind)
			if err != nil {
				return err
			}
			if asJSON {
				return view.RenderJSON(g.stdout, d)
			}
			return d.(interface{ Render(io.Writer) error }).Render(g.stdout)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (shape in README.md)")
	cmd.Flags().StringVar(&kind, "type", "", "network or container, when NAME is both")
	return cmd
}

func newGraphCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph",
		Short: "Draw networks, containers, aliases and published ports (Graphviz dot or Mermaid)",
		Long: `graph prints the project as a Graphviz or Mermaid graph, for example:

  topo graph | dot -Tsvg > topo.svg

As root it shows the addresses containers hold; otherwise those up would give.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != view.FormatDot && format != view.FormatMermaid {
				return fmt.Errorf("--format %q: use dot or mermaid", format)
			}
			in, err := g.lookInput("graph", false)
			if err != nil {
				return err
			}
			return view.RenderGraph(g.stdout, in, format)
		},
	}
	cmd.Flags().StringVar(&format, "format", view.FormatDot, "dot or mermaid")
	return cmd
}

// newLogsCmd parses its own flags: docker's -f (follow) meets topo's -f
// (file). Here -f follows, unless the word after it names an existing file;
// --file always names the file and --follow always follows.
func newLogsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logs [--file FILE | -p PROJECT] CONTAINER [-f|--follow]",
		Short: "Print a container command's output; -f follows it",
		Long: `logs prints what a container's command wrote to stdout and stderr, kept in
/run/topo/PROJECT/containers/CONTAINER.log. With -f or --follow it keeps
printing what is written until interrupted. In this command -f means follow,
as in docker logs, unless the word after it is an existing file: use --file
to name the topology file.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			var follow bool
			var rest []string
			for i := 0; i < len(args); i++ {
				a := args[i]
				next := func() (string, error) {
					if i+1 >= len(args) {
						return "", fmt.Errorf("flag %s needs a value", a)
					}
					i++
					return args[i], nil
				}
				var err error
				switch {
				case a == "-h" || a == "--help":
					return cmd.Help()
				case a == "--follow":
					follow = true
				case a == "-f":
					if i+1 < len(args) && isFile(args[i+1]) {
						err = g.addFile(next)
					} else {
						follow = true
					}
				case a == "--file":
					err = g.addFile(next)
				case strings.HasPrefix(a, "--file="):
					g.files = append(g.files, strings.TrimPrefix(a, "--file="))
				case a == "-p" || a == "--project-name":
					g.project, err = next()
				case strings.HasPrefix(a, "--project-name="):
					g.project = strings.TrimPrefix(a, "--project-name=")
				case strings.HasPrefix(a, "-") && a != "-":
					return fmt.Errorf("logs: unknown flag %s", a)
				default:
					rest = append(rest, a)
				}
				if err != nil {
					return err
				}
			}
			if len(rest) != 1 {
				return fmt.Errorf("logs needs one container name, got %d (usage: %s)", len(rest), cmd.Use)
			}
			project, err := g.projectName()
			if err != nil {
				return err
			}
			c := rest[0]
			if f, err := g.load(); err == nil && f.Project == project {
				sc := f.Container(c)
				if sc == nil {
					return fmt.Errorf("container %s: no such container in %s", c, g.fileNames())
				}
				if len(sc.Command) == 0 {
					return fmt.Errorf("container %s has no command, so nothing is logged", c)
				}
			}
			path := g.runtime.LogFile(project, c)
			lf, err := os.Open(path)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("container %s of project %s has no log (%s): is it up, and does it have a command?", c, project, path)
			}
			if err != nil {
				return err
			}
			if !follow {
				defer lf.Close()
				_, err = io.Copy(g.stdout, lf)
				return err
			}
			lf.Close()
			sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return followLog(sig, g.stdout, path, 200*time.Millisecond)
		},
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// followLog copies the log at path to w, then polls for growth until ctx
// ends. A log that shrinks or is replaced (after down and up) is read again
// from its start; one that is gone is waited for.
func followLog(ctx context.Context, w io.Writer, path string, every time.Duration) error {
	var lf *os.File
	defer func() {
		if lf != nil {
			lf.Close()
		}
	}()
	var off int64
	for {
		if fi, err := os.Stat(path); err == nil {
			stale := lf == nil
			if !stale {
				cur, err := lf.Stat()
				stale = err != nil || !os.SameFile(fi, cur) || fi.Size() < off
			}
			if stale {
				if nf, err := os.Open(path); err == nil {
					if lf != nil {
						lf.Close()
					}
					lf, off = nf, 0
				}
			}
		}
		if lf != nil {
			n, err := io.Copy(w, lf)
			off += n
			if err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/safedir"
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
	if errors.Is(err, planner.ErrNotAHost) && !needRoot {
		// Drawn from a machine that is none of the hosts: as the first
		// would make it.
		m, err = planner.DesireFor(f, obs, f.Hosts[0].Name)
	}
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
	var asJSON, quiet bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:         "ps [CONTAINER...]",
		Annotations: map[string]string{readsAnnotation: ""},
		Short:       "List the project's containers: state, namespace, addresses, ports, command and pid",
		Long: `ps lists the project's containers (or those named), in file order: each
one's state (running; exited, with its status when topo saw it end: a
one-shot that finished, a command topo stop killed; up: a container
without a command; down), namespace, addresses, published ports, pid and
command. --filter status=STATE keeps those in a state (repeat it for
several); -q prints their names only.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON {
				format = "json"
			}
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: use table or json", format)
			}
			keep, err := statusFilter(filters)
			if err != nil {
				return err
			}
			in, err := g.lookInput("ps", true)
			if err != nil {
				return err
			}
			if err := g.knownContainers(in.File, args); err != nil {
				return err
			}
			ps := view.BuildPS(in)
			ps.Containers = slices.DeleteFunc(ps.Containers, func(c view.Container) bool {
				return (len(args) > 0 && !slices.Contains(args, c.Name)) || (len(keep) > 0 && !slices.Contains(keep, c.State))
			})
			names := make([]string, len(ps.Containers))
			for i, c := range ps.Containers {
				names[i] = c.Name
			}
			return g.printList(quiet, format, names, ps, ps.Render)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (shape in README.md); the same as --format json")
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the containers' names only")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "status=running|exited|up|down; repeat for several")
	return cmd
}

// printList prints what ps or ls list: their names alone (quiet), as
// JSON, or as render's table.
func (g *globals) printList(quiet bool, format string, names []string, v any, render func(io.Writer) error) error {
	switch {
	case quiet:
		for _, n := range names {
			fmt.Fprintln(g.stdout, n)
		}
		return nil
	case format == "json":
		return view.RenderJSON(g.stdout, v)
	}
	return render(g.stdout)
}

// statusFilter reads ps's --filter values: the states they keep.
func statusFilter(filters []string) ([]string, error) {
	states := []string{view.StateRunning, view.StateExited, view.StateUp, view.StateDown}
	var keep []string
	for _, f := range filters {
		k, v, _ := strings.Cut(f, "=")
		if k != "status" {
			return nil, fmt.Errorf("--filter %q: topo ps filters by status only (status=%s)", f, strings.Join(states, "|"))
		}
		if !slices.Contains(states, v) {
			return nil, fmt.Errorf("--filter %q: no such status; use %s", f, strings.Join(states, ", "))
		}
		keep = append(keep, v)
	}
	return keep, nil
}

// knownContainers checks that the file has each of names, listing those
// it has otherwise.
func (g *globals) knownContainers(f *spec.File, names []string) error {
	for _, n := range names {
		if f.Container(n) == nil {
			return fmt.Errorf("no container %s in %s; its containers are: %s", n, g.describeProject(f), strings.Join(containerNames(f), ", "))
		}
	}
	return nil
}

// describeProject names where f came from in messages: its files, or the
// record of its last up.
func (g *globals) describeProject(f *spec.File) string {
	if g.doc == nil {
		return "project " + f.Project + " (as its last up recorded it)"
	}
	return g.fileNames()
}

func containerNames(f *spec.File) []string {
	out := make([]string, len(f.Containers))
	for i, c := range f.Containers {
		out[i] = c.Name
	}
	return out
}

func newInspectCmd(g *globals) *cobra.Command {
	var asJSON bool
	var kind string
	cmd := &cobra.Command{
		Use:         "inspect NAME",
		Annotations: map[string]string{readsAnnotation: ""},
		Short:       "Show a network (subnet, gateway, bridge, members) or a container in detail",
		Args:        cobra.ExactArgs(1),
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
		Use:         "graph",
		Annotations: map[string]string{readsAnnotation: ""},
		Short:       "Draw networks, containers, aliases and published ports (Graphviz dot or Mermaid)",
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
		Use:         "logs [--file FILE | -p PROJECT] [CONTAINER...] [-f|--follow] [-n|--tail N] [-t|--timestamps]",
		Annotations: map[string]string{readsAnnotation: ""},
		Short:       "Print containers' command output; -f follows it",
		Long: `logs prints what containers' commands wrote to stdout and stderr, kept in
/run/topo/PROJECT/containers/CONTAINER.log: of one container as it is, of
several (or, without a name, of every container with a command) with each
line after the container's name, as docker compose logs does. --tail N
(-n N) starts at the last N lines of each; --timestamps (-t) puts before
each line the time it was written, RFC 3339 in UTC, as docker logs does.
With -f or --follow it keeps
printing what is written until interrupted. In this command -f means
follow, as in docker logs, unless the word after it is an existing file:
use --file to name the topology file.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			o := logsOptions{tail: -1}
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
					o.follow = true
				case a == "-f":
					if i+1 < len(args) && isFile(args[i+1]) {
						err = g.addFile(next)
					} else {
						o.follow = true
					}
				case a == "--file":
					err = g.addFile(next)
				case strings.HasPrefix(a, "--file="):
					g.files = append(g.files, strings.TrimPrefix(a, "--file="))
				case a == "-p" || a == "--project-name":
					g.project, err = next()
				case strings.HasPrefix(a, "--project-name="):
					g.project = strings.TrimPrefix(a, "--project-name=")
				case a == "-n" || a == "--tail":
					var v string
					if v, err = next(); err == nil {
						o.tail, err = tailLines(v)
					}
				case strings.HasPrefix(a, "--tail="):
					o.tail, err = tailLines(strings.TrimPrefix(a, "--tail="))
				case a == "-t" || a == "--timestamps":
					o.timestamps = true
				case strings.HasPrefix(a, "-") && a != "-":
					return fmt.Errorf("logs: unknown flag %s", a)
				default:
					rest = append(rest, a)
				}
				if err != nil {
					return err
				}
			}
			project, err := g.projectName()
			if err != nil {
				return err
			}
			logs, err := g.logsOf(project, rest)
			if err != nil {
				return err
			}
			o.prefix = len(rest) != 1
			// Never through a link: topo runs as root (see package safedir).
			return printLogs(g.stdout, safedir.Runtime(g.runtime.Root), logs, o)
		},
	}
}

// tailLines reads --tail's value: a number of lines, or "all".
func tailLines(v string) (int, error) {
	if v == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--tail %q: give a number of lines, or all", v)
	}
	return n, nil
}

// containerLog is one container's log file.
type containerLog struct {
	name, path string
}

// logsOf are the logs of containers (all with a command, for none), in
// the order named or, for all, in file order. Without the file, all are
// the project's logs on the host.
func (g *globals) logsOf(project string, containers []string) ([]containerLog, error) {
	// Never through a link: topo runs as root (see package safedir).
	tree := safedir.Runtime(g.runtime.Root)
	var out []containerLog
	f, err := g.load()
	if err != nil || f.Project != project {
		f = nil
	}
	if len(containers) == 0 {
		if f != nil {
			for _, c := range f.Containers {
				if len(c.Command) > 0 {
					containers = append(containers, c.Name)
				}
			}
		} else {
			entries, _ := tree.ReadDir(g.runtime.Containers(project))
			for _, e := range entries {
				if n, ok := strings.CutSuffix(e.Name(), ".log"); ok && e.Type().IsRegular() {
					containers = append(containers, n)
				}
			}
		}
		if len(containers) == 0 {
			return nil, fmt.Errorf("project %s has no container with a command, so nothing is logged", project)
		}
	}
	for _, c := range containers {
		if f != nil {
			if err := g.knownContainers(f, []string{c}); err != nil {
				return nil, err
			}
			if len(f.Container(c).Command) == 0 {
				return nil, fmt.Errorf("container %s has no command, so nothing is logged", c)
			}
		}
		path := g.runtime.LogFile(project, c)
		if _, err := tree.Lstat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %s of project %s has no log (%s): is it up, and does it have a command?", c, project, path)
		} else if err != nil {
			return nil, err
		}
		out = append(out, containerLog{c, path})
	}
	return out, nil
}

// logsOptions are how logs prints: follow, prefix each line with its
// container's name, start at the last tail lines (-1: all).
type logsOptions struct {
	follow, prefix, timestamps bool
	tail                       int
}

// printLogs prints logs as o says; following, until interrupted.
func printLogs(w io.Writer, tree safedir.Tree, logs []containerLog, o logsOptions) error {
	width := 0
	for _, l := range logs {
		width = max(width, len(l.name))
	}
	var mu sync.Mutex // one line at a time, whole, from any log
	writers := make([]io.Writer, len(logs))
	var prefixers []*linePrefixer
	offsets := make([]int64, len(logs))
	for i, l := range logs {
		writers[i] = w
		if o.prefix {
			p := &linePrefixer{w: w, mu: &mu, prefix: fmt.Sprintf("%-*s | ", width, l.name)}
			writers[i], prefixers = p, append(prefixers, p)
		}
		b, err := tree.ReadFile(l.path)
		if err != nil {
			return err
		}
		offsets[i] = int64(len(b))
		shown := lastLines(b, o.tail)
		if o.timestamps {
			writers[i] = newStamper(writers[i], tree, l.path, int64(len(b)-len(shown)))
		}
		if _, err := writers[i].Write(shown); err != nil {
			return err
		}
	}
	if !o.follow {
		for _, p := range prefixers {
			p.flush()
		}
		return nil
	}
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	errs := make([]error, len(logs))
	for i, l := range logs {
		wg.Go(func() { errs[i] = followLog(sig, writers[i], tree, l.path, offsets[i], 200*time.Millisecond) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// lastLines is the end of b from its last n lines on (n < 0: all of it).
func lastLines(b []byte, n int) []byte {
	switch {
	case n < 0:
		return b
	case n == 0:
		return nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end-- // the last line's newline ends it, and starts none
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if n--; n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}

// linePrefixer writes whole lines to w, each after prefix; a line not yet
// ended waits for its end (or flush).
type linePrefixer struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix string
	part   []byte
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	p.part = append(p.part, b...)
	for {
		i := bytes.IndexByte(p.part, '\n')
		if i < 0 {
			return len(b), nil
		}
		if err := p.line(p.part[:i+1]); err != nil {
			return 0, err
		}
		p.part = p.part[i+1:]
	}
}

func (p *linePrefixer) line(l []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := io.WriteString(p.w, p.prefix+string(l))
	return err
}

// flush writes a last line that has no newline, with one.
func (p *linePrefixer) flush() {
	if len(p.part) > 0 {
		_ = p.line(append(p.part, '\n'))
		p.part = nil
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// followLog copies the log at path to w, then polls for growth until ctx
// ends. A log that shrinks or is replaced (after down and up) is read again
// from its start; one that is gone is waited for.
func followLog(ctx context.Context, w io.Writer, tree safedir.Tree, path string, from int64, every time.Duration) error {
	var lf *os.File
	defer func() {
		if lf != nil {
			lf.Close()
		}
	}()
	off := from
	if f, err := tree.OpenFile(path, os.O_RDONLY, 0); err == nil {
		if _, err := f.Seek(from, io.SeekStart); err == nil {
			lf = f
		} else {
			f.Close()
		}
	}
	for {
		if fi, err := os.Stat(path); err == nil {
			stale := lf == nil
			if !stale {
				cur, err := lf.Stat()
				stale = err != nil || !os.SameFile(fi, cur) || fi.Size() < off
			}
			if stale {
				if nf, err := tree.OpenFile(path, os.O_RDONLY, 0); err == nil {
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

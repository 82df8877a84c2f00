package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/daemon"
	"github.com/topolab/topo/journal"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/privilege"
	"github.com/topolab/topo/safedir"
	"github.com/topolab/topo/schema"
	"github.com/topolab/topo/view"
)

func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the file: schema, names, addresses, references and ports (no root, no kernel)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := g.load()
			if err != nil {
				return err
			}
			if err := planner.Check(f); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: valid (project %s: %d networks, %d containers)\n", g.fileNames(), f.Project, len(f.Networks), len(f.Containers))
			return nil
		},
	}
}

func newPlanCmd(g *globals) *cobra.Command {
	var asJSON, detailed bool
	var host string
	cmd := &cobra.Command{
		Use:         "plan",
		Annotations: map[string]string{bulkAnnotation: ""},
		Short:       "Show the steps that would make the kernel match the file",
		Long: `plan reads the live kernel and shows, one per line, the commands that up
would run: + creates, ~ changes, - destroys.

With --detailed-exitcode the exit status is 0 when the kernel matches the
file, 1 on error and 2 when there are changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := g.openMachineEarly("plan")
			if err != nil {
				return err
			}
			f, err := g.load()
			if err != nil {
				return err
			}
			if err := checkUsers(f); err != nil {
				return err
			}
			obs, err := k.Observe(ctx(), f.Project)
			if err != nil {
				return err
			}
			o := g.plans()
			o.Host, o.Elsewhere = host, host != ""
			p, _, err := planner.Up(f, obs, o)
			if err != nil {
				return err
			}
			if err := g.firewallPreflight(k, p); err != nil {
				return err
			}
			// An interrupted transaction is work for up even when the
			// kernel happens to match (its undo runs first).
			pending, err := journal.Read(g.runtime.Project(f.Project))
			if err != nil {
				return err
			}
			if pending != nil {
				fmt.Fprintf(g.stderr, "Project %s: %s; topo up will undo it and then converge, topo down will remove everything.\n", f.Project, pending.Summary())
			}
			if err := view.NewPlanView(g.stdout, asJSON).Plan(p); err != nil {
				return err
			}
			if detailed && (!p.Empty() || pending != nil) {
				return &exitError{code: 2}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when there are changes, 0 when there are none")
	cmd.Flags().StringVar(&host, "host", "", "in a file with hosts: plan this host's part (another host's against an empty kernel)")
	return cmd
}

func newUpCmd(g *globals) *cobra.Command {
	var lockTimeout, waitTimeout time.Duration
	var wait bool
	var host string
	var all bool
	cmd := &cobra.Command{
		Use:         "up",
		Annotations: map[string]string{bulkAnnotation: ""},
		Short:       "Make the kernel match the file; roll back if any step fails",
		Long: `up makes the kernel match the file, one journaled step at a time. If a step
fails, or the kernel does not match the file when all steps are done, up
undoes what it did. An up or down that was interrupted (killed, power loss)
is undone first. One process changes a project at a time: up waits up to
--lock-timeout for another to finish, then says which pid holds the lock.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all {
				if host != "" {
					return errors.New("--all-hosts runs every host's part: leave --host out")
				}
				return g.upAll()
			}
			k, err := g.openMachineEarly("up")
			if err != nil {
				return err
			}
			f, err := g.load()
			if err != nil {
				return err
			}
			if err := checkUsers(f); err != nil {
				return err
			}
			rec, err := g.renderRecord(f.Project)
			if err != nil {
				return err
			}
			pr := view.NewProgress(g.stdout, 0)
			p := g.txnProject(k, f.Project, pr)
			p.Host = host
			return g.underLock(p, lockTimeout, "stopping at the next step and rolling back", func(c context.Context) error {
				res, err := p.Up(c, f)
				if err = g.report(pr, res, err, "up", f.Project); err != nil {
					return err
				}
				return g.record(f.Project, rec)
			}, func(c context.Context) error {
				if !wait {
					return nil
				}
				return g.waitReady(c, k, f, waitTimeout)
			})
		},
	}
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", defaultLockTimeout, "how long to wait for another topo changing the project")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every container's command runs (a one-shot: has finished)")
	cmd.Flags().DurationVar(&waitTimeout, "wait-timeout", 0, "how long --wait waits; 0 for as long as it takes")
	cmd.Flags().StringVar(&host, "host", "", "in a file with hosts: which host this machine is (default: the one whose address it has)")
	cmd.Flags().BoolVar(&all, "all-hosts", false, "in a file with hosts: up on every host, over ssh ($TOPO_SSH, default ssh), in parallel; roll back the others if one fails")
	return cmd
}

func newDownCmd(g *globals) *cobra.Command {
	var lockTimeout time.Duration
	var all bool
	cmd := &cobra.Command{
		Use:         "down",
		Annotations: map[string]string{bulkAnnotation: ""},
		Short:       "Remove everything the project created, and nothing else",
		Long: `down removes every namespace, link, address and route that carries the
project's ownership mark, after undoing an interrupted up or down. With -p
it needs no file. It waits for the project's lock as up does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all {
				return g.downAll()
			}
			k, err := g.openMachineEarly("down")
			if err != nil {
				return err
			}
			project, err := g.projectName()
			if err != nil {
				return err
			}
			pr := view.NewProgress(g.stdout, 0)
			p := g.txnProject(k, project, pr)
			// An interrupted down finishes removing, rather than rolling
			// back: a rollback would start the stopped commands again as
			// new processes, so it could not give back what was there,
			// and what is left to remove is quicker to remove than what
			// was removed is to remake. Waiting for the lock stops.
			return g.underLock(p, lockTimeout, "finishing the removal", func(c context.Context) error {
				res, err := p.Down(context.WithoutCancel(c))
				return g.report(pr, res, err, "down", project)
			}, nil)
		},
	}
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", defaultLockTimeout, "how long to wait for another topo changing the project")
	cmd.Flags().BoolVar(&all, "all-hosts", false, "in a file with hosts: down on every host, over ssh, in parallel")
	return cmd
}

func newExecCmd(g *globals) *cobra.Command {
	var envs []string
	var dir, user string
	cmd := &cobra.Command{
		Use:         "exec [-e KEY=VAL] [-w DIR] [-u USER] CONTAINER [--] CMD [ARG...]",
		Annotations: map[string]string{readsAnnotation: ""},
		Short:       "Run a command inside a container's namespace, with its /etc/netns files in place",
		Long: `exec runs a command in a container's network namespace, with the
container's /etc/netns files over /etc/resolv.conf and /etc/hosts, as ip
netns exec does, and in its UTS namespace (its hostname). Flags come before the
container: everything after it is the command, so -- is needed only before
a command that starts with a dash. -e adds to the environment, -w sets the
working folder, -u runs as another user (NAME, UID, NAME:GROUP or UID:GID,
as user: in the file).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			container, argv := args[0], args[1:]
			if len(argv) > 0 && argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return fmt.Errorf("exec needs a command to run in container %s (usage: %s)", container, cmd.Use)
			}
			for _, e := range envs {
				if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
					return fmt.Errorf("-e %q: write KEY=VALUE", e)
				}
			}
			project, err := g.projectName()
			if err != nil {
				return err
			}
			k, err := g.openMachine("exec")
			if err != nil {
				return err
			}
			obs, err := k.Observe(ctx(), project)
			if err != nil {
				return err
			}
			name, err := g.containerNS(project, obs, container)
			if err != nil {
				return err
			}
			environ := os.Environ()
			if user != "" {
				var home string
				if argv, home, err = asUser(user, argv); err != nil {
					return fmt.Errorf("-u: %w", err)
				}
				environ = append(environ, "HOME="+home)
			}
			if dir != "" {
				// The working folder is inherited through ip netns exec,
				// whose mount namespace is a copy of this one.
				if err := os.Chdir(dir); err != nil {
					return fmt.Errorf("-w: %w", err)
				}
				if wd, err := os.Getwd(); err == nil {
					environ = append(environ, "PWD="+wd)
				}
			}
			environ = withEnv(append(environ, envs...))
			if name != "" {
				// ip netns exec does what a container's processes need: a
				// private mount namespace with /etc/netns/NS files over
				// /etc and a /sys of the namespace.
				argv = append([]string{"ip", "netns", "exec", name}, argv...)
			}
			// network_mode: host runs in topo's own namespace.
			prog, err := exec.LookPath(argv[0])
			if err != nil {
				return fmt.Errorf("container %s: %w", container, err)
			}
			if u := obs.UTSOf(g.runtime.UTS(project, name)); name != "" && u != nil && u.Mounted {
				// The container's hostname: this thread, which execs,
				// enters its UTS namespace (ip netns exec keeps it).
				runtime.LockOSThread()
				if err := daemon.EnterUTS(safedir.Runtime(g.runtime.Root), u.Path); err != nil {
					return fmt.Errorf("container %s: %w", container, err)
				}
			}
			return syscall.Exec(prog, argv, environ)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringArrayVarP(&envs, "env", "e", nil, "set an environment variable, KEY=VALUE; repeat for several")
	cmd.Flags().StringVarP(&dir, "workdir", "w", "", "working folder of the command")
	cmd.Flags().StringVarP(&user, "user", "u", "", "user to run as: NAME, UID, NAME:GROUP or UID:GID")
	return cmd
}

// withEnv keeps the last value of each variable of environ, in the order
// of their first: a program's getenv takes the first, and -e must win.
func withEnv(environ []string) []string {
	at := map[string]int{}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := at[k]; ok {
			out[i] = kv
			continue
		}
		at[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// asUser wraps argv to run as user u, resolved as a container's user: is,
// with its supplementary groups; home is its HOME.
func asUser(u string, argv []string) (wrapped []string, home string, err error) {
	pu, err := privilege.LookupUser(u)
	if err != nil {
		return nil, "", err
	}
	groups := "--clear-groups"
	if len(pu.Groups) > 0 {
		gs := make([]string, len(pu.Groups))
		for i, g := range pu.Groups {
			gs[i] = strconv.FormatUint(uint64(g), 10)
		}
		groups = "--groups=" + strings.Join(gs, ",")
	}
	return append([]string{"setpriv", fmt.Sprintf("--reuid=%d", pu.UID), fmt.Sprintf("--regid=%d", pu.GID), groups, "--"}, argv...), pu.Home, nil
}

func newSchemaCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the topology file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := g.stdout.Write(schema.JSON)
			return err
		},
	}
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print topo's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(g.stdout, "topo %s\n", version)
			return err
		},
	}
}

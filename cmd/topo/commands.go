package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/journal"
	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/schema"
	"github.com/topolab/topo/txn"
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
			p, _, err := planner.Up(f, obs, g.plans())
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
	return cmd
}

func newUpCmd(g *globals) *cobra.Command {
	var lockTimeout time.Duration
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
			pr := view.NewProgress(g.stdout, 0)
			p := g.txnProject(k, f.Project, pr)
			c, cancel := context.WithCancel(ctx())
			defer cancel()
			in := watchInterrupts(g.stderr, "stopping at the next step and rolling back", cancel)
			err = g.lockCtx(c, p, lockTimeout)
			if err == nil {
				var res *txn.Result
				res, err = p.Up(c, f)
				err = g.report(pr, res, err, "up", f.Project)
				_ = p.Unlock()
			}
			if sig := in.stop(); sig != nil {
				return interrupted(sig, err)
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", defaultLockTimeout, "how long to wait for another topo changing the project")
	return cmd
}

func newDownCmd(g *globals) *cobra.Command {
	var lockTimeout time.Duration
	cmd := &cobra.Command{
		Use:         "down",
		Annotations: map[string]string{bulkAnnotation: ""},
		Short:       "Remove everything the project created, and nothing else",
		Long: `down removes every namespace, link, address and route that carries the
project's ownership mark, after undoing an interrupted up or down. With -p
it needs no file. It waits for the project's lock as up does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			c, cancel := context.WithCancel(ctx())
			defer cancel()
			in := watchInterrupts(g.stderr, "finishing the removal", cancel)
			err = g.lockCtx(c, p, lockTimeout)
			if err == nil {
				var res *txn.Result
				res, err = p.Down(context.WithoutCancel(c))
				err = g.report(pr, res, err, "down", project)
				_ = p.Unlock()
			}
			if sig := in.stop(); sig != nil {
				return interrupted(sig, err)
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", defaultLockTimeout, "how long to wait for another topo changing the project")
	return cmd
}

func newExecCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "exec CONTAINER -- CMD [ARG...]",
		Short: "Run a command inside a container's namespace, with its /etc/netns files in place",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			name, err := g.containerNS(project, obs, args[0])
			if err != nil {
				return err
			}
			if name == "" {
				// network_mode: host runs in topo's own namespace.
				prog, err := exec.LookPath(args[1])
				if err != nil {
					return fmt.Errorf("container %s: %w", args[0], err)
				}
				return syscall.Exec(prog, args[1:], os.Environ())
			}
			// ip netns exec does what a container's processes need: a private
			// mount namespace with /etc/netns/NS files over /etc and a /sys
			// of the namespace.
			ip, err := exec.LookPath("ip")
			if err != nil {
				return fmt.Errorf("topo exec needs the ip command (Debian package iproute2): %w", err)
			}
			argv := append([]string{"ip", "netns", "exec", name}, args[1:]...)
			return syscall.Exec(ip, argv, os.Environ())
		},
	}
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

package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/op"
	"github.com/topolab/topo/resolver"
)

// newResolverCmd is the hidden command group of the embedded DNS: serve is
// the resolver process that up starts; the others are the steps of a plan,
// which name them, run by hand.
func newResolverCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:    "resolver",
		Short:  "The embedded DNS resolver of a project (run by up and down)",
		Hidden: true,
	}
	var dir string
	serve := &cobra.Command{
		Use:   "serve --dir DIR",
		Short: "Serve the records document in DIR at 127.0.0.11:53 in each of its namespaces (SIGHUP reloads)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("topo resolver serve needs --dir, the project's runtime folder")
			}
			logger := log.New(g.stderr, "", log.LstdFlags)
			if os.Getenv("GOMAXPROCS") == "" {
				// A local answer is a few microseconds of work: handing
				// packets between threads costs more than that, and one
				// thread leaves the other cores to the askers
				// (scripts/bench-dns measures it).
				runtime.GOMAXPROCS(1)
			}
			return resolver.Run(dir, &resolver.Forwarder{}, logger)
		},
	}
	serve.Flags().StringVar(&dir, "dir", "", "the project's runtime folder (holds dns.json)")
	root.AddCommand(serve)

	step := func(use, short string, stdin bool, of func(project, content string) op.Operation) *cobra.Command {
		return &cobra.Command{
			Use:   use + " -p PROJECT",
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				project, err := g.projectName()
				if err != nil {
					return err
				}
				content := ""
				if stdin {
					b, err := io.ReadAll(os.Stdin)
					if err != nil {
						return err
					}
					content = string(b)
				}
				m, err := g.openMachine("resolver " + use)
				if err != nil {
					return err
				}
				o := of(project, content)
				if err := m.Apply(ctx(), o); err != nil {
					return fmt.Errorf("%s: %w", o.Command(), err)
				}
				return nil
			},
		}
	}
	root.AddCommand(
		step("start", "Start the project's resolver", false, func(p, _ string) op.Operation { return op.ResolverStart{Project: p} }),
		step("stop", "Stop the project's resolver", false, func(p, _ string) op.Operation { return op.ResolverStop{Project: p} }),
		step("reload", "Have the project's resolver load its records again", false, func(p, _ string) op.Operation { return op.ResolverReload{Project: p} }),
		step("load", "Write the records document read from stdin and have a running resolver serve it", true,
			func(p, c string) op.Operation { return op.RecordsWrite{Project: p, Content: c} }),
		step("unload", "Remove the project's records document", false, func(p, _ string) op.Operation { return op.RecordsDel{Project: p} }),
	)
	return root
}

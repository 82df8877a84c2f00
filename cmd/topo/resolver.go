package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/planner"
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

	step := func(use, short string, op planner.Op, stdin bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " -p PROJECT",
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				project, err := g.projectName()
				if err != nil {
					return err
				}
				s := planner.Step{Op: op, Project: project, Resource: "dns resolver"}
				if stdin {
					b, err := io.ReadAll(os.Stdin)
					if err != nil {
						return err
					}
					s.Content = string(b)
				}
				k, err := openKernel("resolver " + use)
				if err != nil {
					return err
				}
				return k.Apply(ctx(), s)
			},
		}
	}
	root.AddCommand(
		step("start", "Start the project's resolver", planner.OpResolverStart, false),
		step("stop", "Stop the project's resolver", planner.OpResolverStop, false),
		step("reload", "Have the project's resolver load its records again", planner.OpResolverReload, false),
		step("load", "Write the records document read from stdin and have a running resolver serve it", planner.OpRecordsWrite, true),
		step("unload", "Remove the project's records document", planner.OpRecordsDel, false),
	)
	return root
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/spec"
)

func newConfigCmd(g *globals) *cobra.Command {
	var format string
	var services, networks, quiet bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the project's files resolved: merged, interpolated, included, profiles applied",
		Long: `config reads the project's files as every command does (each -f file
merged over the ones before it, ${VAR} interpolated from the environment
and .env, include: files added, profiles applied, anchors expanded),
checks them, and prints the result as one file, as docker compose config
does. With --services or --networks it prints only their names; with -q
it only checks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt, err := g.options()
			if err != nil {
				return err
			}
			d, err := spec.Resolve(opt)
			if err != nil {
				return err
			}
			f, err := d.File()
			if err != nil {
				return err
			}
			g.sayNotes(f)
			project := f.Project
			if g.project != "" {
				if err := spec.CheckProjectName(g.project); err != nil {
					return err
				}
				project = g.project
			}
			switch {
			case quiet:
				return nil
			case services:
				for _, c := range f.Containers {
					fmt.Fprintln(g.stdout, c.Name)
				}
				return nil
			case networks:
				for _, n := range f.Networks {
					if !n.Implicit {
						fmt.Fprintln(g.stdout, n.Name)
					}
				}
				return nil
			}
			return d.Render(g.stdout, format, project)
		},
	}
	cmd.Flags().StringVar(&format, "format", "yaml", "yaml or json")
	cmd.Flags().BoolVar(&services, "services", false, "print the services' (containers') names, one a line")
	cmd.Flags().BoolVar(&networks, "networks", false, "print the networks' names, one a line")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only check the files")
	return cmd
}

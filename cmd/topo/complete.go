package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/topolab/topo/registry"
)

// What a command's arguments complete to (cobra's completion: topo
// completion bash|zsh|fish|powershell prints the script).
const (
	completeContainer = 1 << iota // the project's containers
	completeNetwork               // the project's networks
	completeFirst                 // the first argument only; files after it
	completeCommands              // containers with a command only
)

// completeNames completes the project's names: from its files, or with -p
// from the record of its last up, as the read-only commands read them.
func (g *globals) completeNames(what int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if what&completeFirst != 0 && len(args) > 0 {
			return nil, cobra.ShellCompDirectiveDefault
		}
		if cmd.DisableFlagParsing {
			args = g.completionFlags(args)
		}
		g.reads = true
		f, err := g.load()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		add := func(name, kind string) {
			if strings.HasPrefix(name, toComplete) && !slices.Contains(args, name) {
				out = append(out, cobra.CompletionWithDesc(name, kind))
			}
		}
		if what&completeContainer != 0 {
			for _, c := range f.Containers {
				if what&completeCommands == 0 || len(c.Command) > 0 {
					add(c.Name, "container")
				}
			}
		}
		if what&completeNetwork != 0 {
			for _, n := range f.Networks {
				add(n.Name, "network")
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completionFlags takes -p and --file from the arguments of a command
// that parses its own flags (logs), and returns the others.
func (g *globals) completionFlags(args []string) []string {
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "-p" || a == "--project-name") && i+1 < len(args):
			i++
			g.project = args[i]
		case (a == "--file" || a == "-f" && i+1 < len(args) && isFile(args[i+1])) && i+1 < len(args):
			i++
			g.files = append(g.files, args[i])
		case !strings.HasPrefix(a, "-"):
			rest = append(rest, a)
		}
	}
	return rest
}

// completeProjects completes -p: the projects with a runtime folder.
func (g *globals) completeProjects(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	projects, _ := registry.Projects(g.runtime)
	var out []cobra.Completion
	for _, p := range projects {
		if strings.HasPrefix(p, toComplete) {
			out = append(out, p)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeFiles completes -f: YAML files.
func completeFiles(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
}

// completions sets what each command's arguments and flags complete to.
func (g *globals) completions(root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("project-name", g.completeProjects)
	_ = root.RegisterFlagCompletionFunc("file", completeFiles)
	_ = root.RegisterFlagCompletionFunc("env-file", cobra.FixedCompletions(nil, cobra.ShellCompDirectiveDefault))
	args := map[string]int{
		"exec":      completeContainer | completeFirst,
		"port":      completeContainer | completeFirst,
		"inspect":   completeContainer | completeNetwork | completeFirst,
		"ps":        completeContainer,
		"logs":      completeContainer | completeCommands,
		verbStop:    completeContainer | completeCommands,
		verbStart:   completeContainer | completeCommands,
		verbRestart: completeContainer | completeCommands,
	}
	for _, c := range root.Commands() {
		if what, ok := args[c.Name()]; ok {
			c.ValidArgsFunction = g.completeNames(what)
		}
	}
}

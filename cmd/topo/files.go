package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/topolab/topo/spec"
)

// defaultNames are the files looked for without -f, in this order, in the
// current folder, then in each folder above it, as Compose looks for its
// own (topo's first).
var defaultNames = []string{"topo.yaml", "topo.yml", "compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}

// overrideNames are the files Compose merges over a compose file it found
// by itself, when one is beside it.
var overrideNames = []string{"compose.override.yaml", "compose.override.yml", "docker-compose.override.yaml", "docker-compose.override.yml"}

// fileFlags adds the flags that say which files make the project.
func (g *globals) fileFlags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&g.files, "file", "f", nil, "topology or Compose file; repeat to merge several, later ones override (default: "+strings.Join(defaultNames[:3], ", ")+"... here or in a folder above)")
	fs.StringArrayVar(&g.profiles, "profile", nil, "enable the Compose services of this profile; repeat for several")
	fs.StringArrayVar(&g.envFiles, "env-file", nil, "read variables from this file instead of the .env beside the first file")
}

// fileNames names the project's files in messages.
func (g *globals) fileNames() string {
	if files, err := g.projectFiles(); err == nil {
		return strings.Join(files, ", ")
	}
	return strings.Join(g.files, ", ")
}

// projectFiles are the -f files, else $COMPOSE_FILE, else the file found
// as Compose finds one (with its override file beside it).
func (g *globals) projectFiles() ([]string, error) {
	if len(g.files) > 0 {
		return g.files, nil
	}
	if g.found != nil {
		return g.found, nil
	}
	if env := os.Getenv("COMPOSE_FILE"); env != "" {
		g.found = filepath.SplitList(env)
		return g.found, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	files, notes, err := findFiles(wd)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		fmt.Fprintf(g.stderr, "topo: %s\n", n)
	}
	g.found = files
	return files, nil
}

// findFiles looks for the project's file in dir, then in the folders
// above it. It returns the file, relative to dir when it is under it, and
// the Compose override file beside it, if any; notes say which file was
// chosen when a folder holds several.
func findFiles(dir string) (files, notes []string, err error) {
	for d := dir; ; d = filepath.Dir(d) {
		var here []string
		for _, name := range defaultNames {
			if p := filepath.Join(d, name); isFile(p) {
				here = append(here, p)
			}
		}
		if len(here) > 0 {
			if len(here) > 1 {
				notes = append(notes, fmt.Sprintf("found several files in %s: %s; using %s", d, baseNames(here), filepath.Base(here[0])))
			}
			files = []string{here[0]}
			if !strings.HasPrefix(filepath.Base(here[0]), "topo.") {
				for _, name := range overrideNames {
					if p := filepath.Join(d, name); isFile(p) {
						files = append(files, p)
						break
					}
				}
			}
			for i, f := range files {
				if rel, err := filepath.Rel(dir, f); err == nil && !strings.HasPrefix(rel, "..") {
					files[i] = rel
				}
			}
			return files, notes, nil
		}
		if parent := filepath.Dir(d); parent == d {
			break
		}
	}
	return nil, nil, fmt.Errorf("no %s or %s in %s or a folder above it: name the file with -f", strings.Join(defaultNames[:len(defaultNames)-1], ", "), defaultNames[len(defaultNames)-1], dir)
}

func baseNames(paths []string) string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return strings.Join(out, ", ")
}

// options are the spec options of the command line.
func (g *globals) options() (spec.Options, error) {
	files, err := g.projectFiles()
	if err != nil {
		return spec.Options{}, err
	}
	opt := spec.Options{Files: files, Profiles: g.profiles, EnvFiles: g.envFiles}
	// After the reads, which would wait for the growth, and before the
	// parse, which it overlaps.
	opt.Read = g.growFileTable
	return opt, nil
}

// load reads and validates the project's files, applying -p, and says its
// notes on standard error, once. A command that only reads, given -p
// without a file, reads the project from the record its last up left
// (see recorded).
func (g *globals) load() (*spec.File, error) {
	if g.loaded != nil || g.loadErr != nil {
		return g.loaded, g.loadErr
	}
	g.loaded, g.loadErr = g.recorded()
	if g.loaded == nil && g.loadErr == nil {
		g.loaded, g.loadErr = g.loadFiles()
	}
	return g.loaded, g.loadErr
}

func (g *globals) loadFiles() (*spec.File, error) {
	opt, err := g.options()
	if err != nil {
		return nil, err
	}
	d, err := spec.Resolve(opt)
	if err != nil {
		return nil, err
	}
	f, err := d.File()
	if err != nil {
		return nil, err
	}
	g.doc = d
	g.sayNotes(f)
	if g.project != "" {
		if err := spec.CheckProjectName(g.project); err != nil {
			return nil, err
		}
		f.Project = g.project
	}
	return f, nil
}

func (g *globals) sayNotes(f *spec.File) {
	for _, n := range f.Notes {
		fmt.Fprintf(g.stderr, "topo: %s\n", n)
	}
}

// addFile adds the file next gives to -f (for logs, which reads its own
// flags).
func (g *globals) addFile(next func() (string, error)) error {
	f, err := next()
	g.files = append(g.files, f)
	return err
}

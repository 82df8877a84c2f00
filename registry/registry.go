// Package registry keeps, in each project's runtime folder, the record of
// the last up that succeeded: the files the project came from and the
// project as they resolved (what topo config prints). topo ls lists the
// projects of the host from it and from the kernel's marks, and the
// read-only commands (ps, inspect, port, exec, logs, graph) read the
// project from it when -p names one without its file. Like the kernel
// objects it describes, it is under /run and does not survive a reboot;
// down removes it.
package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/safedir"
	"github.com/topolab/topo/spec"
)

// Source is where a project came from.
type Source struct {
	// Files are the project's files, absolute, in their -f order.
	Files []string `json:"files"`
}

// Write records the project up made from src: config is the project as
// its files resolved (spec.Document.Render's YAML). Each file is replaced
// whole (written aside, then renamed), root's alone: the files may hold
// values others must not read.
func Write(rt names.Runtime, project string, src Source, config []byte) error {
	dir := rt.Project(project)
	b, err := json.Marshal(src)
	if err != nil {
		return err
	}
	// The config was interpolated already: its $ are literal, and are
	// written as $$ so that reading it back does not interpolate again.
	config = bytes.ReplaceAll(config, []byte("$"), []byte("$$"))
	for _, f := range []struct {
		name string
		data []byte
	}{{names.ConfigFile, config}, {names.SourceFile, append(b, '\n')}} {
		tmp := filepath.Join(dir, f.name+".tmp")
		if err := tree(rt).WriteAtomic(tmp, filepath.Join(dir, f.name), f.data, 0o600); err != nil {
			return fmt.Errorf("record project %s: %w", project, err)
		}
	}
	return nil
}

// tree is the runtime root, whose files are reached without following
// links (see package safedir).
func tree(rt names.Runtime) safedir.Tree { return safedir.Runtime(rt.Root) }

// ReadSource reads where a project came from; nil when it has no record.
func ReadSource(rt names.Runtime, project string) (*Source, error) {
	b, err := tree(rt).ReadFile(filepath.Join(rt.Project(project), names.SourceFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Source
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(rt.Project(project), names.SourceFile), err)
	}
	return &s, nil
}

// Load reads the project as its last up resolved it; nil when it has no
// record. Its notes (keys topo ignores) were said by that up, and are
// dropped.
func Load(rt names.Runtime, project string) (*spec.File, error) {
	path := filepath.Join(rt.Project(project), names.ConfigFile)
	// Read by path (spec reads its files so), once known to be a file
	// of topo's own folders and not a link (see package safedir).
	st, err := tree(rt).Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the record of project %s's last up: %w", project, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("the record of project %s's last up: %s is not a regular file", project, path)
	}
	f, err := spec.LoadFiles(spec.Options{Files: []string{path}, EnvFiles: []string{},
		Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		return nil, fmt.Errorf("the record of project %s's last up: %w", project, err)
	}
	f.Notes = nil
	f.Project = project
	return f, nil
}

// Remove deletes the record of the project folder dir; a missing one is
// no error. A link there is refused, not followed (see package safedir).
func Remove(dir string) error {
	t := safedir.Runtime(filepath.Dir(filepath.Clean(dir)))
	var errs []error
	for _, name := range []string{names.ConfigFile, names.SourceFile} {
		if err := t.Remove(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Projects lists the projects that have a runtime folder, sorted.
func Projects(rt names.Runtime) ([]string, error) {
	entries, err := tree(rt).ReadDir(rt.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && spec.CheckProjectName(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Options say which files make a project and how to read them.
type Options struct {
	// Files are the -f files in order: each later one merges into the
	// ones before it. At least one.
	Files []string
	// Profiles enable the Compose services that name one of them (as
	// --profile); COMPOSE_PROFILES adds to them; "*" enables all.
	Profiles []string
	// Env gives the variables files are interpolated with; nil is the
	// process's environment. The .env files add to it.
	Env Lookup
	// EnvFiles are read, in order, for variables the environment does not
	// set (as --env-file). nil means the .env file in the first file's
	// folder, if there is one; an empty list, none.
	EnvFiles []string
	// Read, when set, is called once the files are read and before they
	// are parsed (the CLI starts work there that would slow the reads).
	Read func()
}

// Document is a project's files read, interpolated, included, merged and
// filtered by profiles, before they become the model: what `topo config`
// prints. File turns it into the model.
type Document struct {
	// Path is the first file; the project's folder is its folder.
	Path string
	// Compose says the files are Compose files (services:), not topo's.
	Compose bool
	// Root is the merged document's top mapping. Its nodes keep their
	// files' lines and columns.
	Root *yaml.Node
	p    *parser
}

// loader is what the parser needs beyond one file.
type loader struct {
	// origin is the file of each node not in the first file.
	origin map[*yaml.Node]string
	notes  *problems
	env    Lookup
	// disabled names the services profiles turned off, with their
	// profiles, for messages about references to them.
	disabled map[string][]string
	// containerNames are the Compose container_name of services.
	containerNames map[*Container]string
	// files are the -f files, whose relative paths are the first one's.
	files []string
}

func newParser(path string) *parser {
	pr := &problems{path: path, rank: map[string]int{}}
	return &parser{
		problems:  pr,
		keys:      make(map[*Container]*containerKeys),
		badSubnet: make(map[string]bool),
		loader: &loader{
			origin:         make(map[*yaml.Node]string),
			notes:          &problems{path: path, rank: pr.rank},
			disabled:       make(map[string][]string),
			containerNames: make(map[*Container]string),
		},
	}
}

// pos returns a node's position, naming its file unless it is the first.
func (p *parser) pos(n *yaml.Node) Pos {
	return Pos{Line: n.Line, Col: n.Column, File: p.origin[n]}
}

// note records something the file asks for that topo accepts but does not
// do: a line on standard error, not an error.
func (p *parser) note(n *yaml.Node, format string, args ...any) {
	p.notes.add(p.pos(n), format, args...)
}

// LoadFiles reads, interpolates, merges and validates the files of a
// project, as Resolve and Document.File do.
func LoadFiles(opt Options) (*File, error) {
	d, err := Resolve(opt)
	if err != nil {
		return nil, err
	}
	return d.File()
}

// Resolve reads the files of a project: each is interpolated (${VAR} and
// its forms, from the environment and .env), a Compose file's include:
// files are added to it, then the files merge in order as Compose merges
// them, and Compose services are filtered by profiles and extends: is
// applied. Every problem found is reported, as Parse reports them.
func Resolve(opt Options) (*Document, error) {
	return resolveFiles(opt, nil)
}

// resolveFiles is Resolve, with the first file's content given when data
// is not nil.
func resolveFiles(opt Options, data []byte) (*Document, error) {
	if len(opt.Files) == 0 {
		return nil, errors.New("no topology file given")
	}
	first := opt.Files[0]
	p := newParser(first)
	env := opt.Env
	if env == nil {
		env = os.LookupEnv
	}
	envFiles := opt.EnvFiles
	if envFiles == nil {
		if dot := filepath.Join(filepath.Dir(first), ".env"); isRegular(dot) {
			envFiles = []string{dot}
		}
	}
	env, err := withEnvFiles(env, envFiles)
	if err != nil {
		return nil, err
	}
	p.env, p.files = env, opt.Files
	d := &Document{Path: first, p: p}
	contents := make([][]byte, len(opt.Files))
	contents[0] = data
	for i, path := range opt.Files {
		if contents[i] == nil {
			if contents[i], err = Read(path); err != nil {
				return nil, err
			}
		}
		if i > 0 {
			p.rank[path] = i
		}
	}
	if opt.Read != nil {
		opt.Read()
	}
	var roots []*yaml.Node
	format := map[bool]*yaml.Node{} // the first key that says each format
	for i, path := range opt.Files {
		root, err := p.readFile(path, contents[i], i > 0, env)
		if err != nil {
			return nil, err
		}
		if root == nil {
			continue
		}
		if key, compose, ok := p.formatOf(root); ok {
			if other := format[!compose]; other != nil {
				p.errorf(key, "%s; but %s holds %s: the files of a project are all topo files or all Compose files", formatWord(compose), p.where(other), formatWord(!compose))
			} else if format[compose] == nil {
				format[compose] = key
			}
			if compose {
				root = p.include(root, path, env, []string{absPath(path)})
			}
		}
		roots = append(roots, root)
	}
	if len(p.list) > 0 {
		return nil, p.err()
	}
	d.Compose = format[true] != nil
	var root *yaml.Node
	for _, r := range roots {
		if root == nil && len(roots) == 1 && !hasMergeTags(r) {
			root = r
			break
		}
		root = p.merge(root, r)
	}
	if root == nil {
		return nil, p.err()
	}
	d.Root = resolve(root)
	if d.Compose && d.Root.Kind == yaml.MappingNode {
		p.extends(d.Root, first)
		p.profiles(d.Root, opt.Profiles)
		p.pruneNetworks(d.Root)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return d, nil
}

// File turns the document into the validated model, with the notes of
// everything topo accepts and does not do.
func (d *Document) File() (*File, error) {
	p := d.p
	var f *File
	if d.Compose {
		f = p.composeFile(d.Root)
	} else {
		f = p.file(d.Root)
	}
	if f != nil {
		p.applyDefaults(f)
		if d.Compose {
			p.containerNameAliases(f)
		}
		p.validate(f)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	f.Notes = p.notes.sorted()
	if more := len(f.Notes) - maxErrors; more > 0 {
		// As for errors: a file of thousands of ignored keys says so.
		f.Notes = append(f.Notes[:maxErrors:maxErrors], &Error{Msg: fmt.Sprintf("... and %d more notes", more)})
	}
	return f, nil
}

func formatWord(compose bool) string {
	if compose {
		return "it is a Compose file (services:)"
	}
	return "it is a topo file (containers:)"
}

// formatOf tells a file's format by its top keys: services: is Compose's,
// containers: topo's. A file with neither (networks only, or an override
// with name: alone) takes the format of the others.
func (p *parser) formatOf(root *yaml.Node) (key *yaml.Node, compose, ok bool) {
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		return nil, false, false
	}
	var services, containers *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch k := root.Content[i]; k.Value {
		case "services":
			services = k
		case "containers":
			containers = k
		}
	}
	switch {
	case services != nil && containers != nil:
		p.errorf(containers, "the file has both services: (line %d) and containers:: a Compose file has services, a topo file containers; keep one", services.Line)
		return nil, false, false
	case services != nil:
		return services, true, true
	case containers != nil:
		return containers, false, true
	}
	return nil, false, false
}

// readFile reads and decodes one file and interpolates it. Nodes of files
// other than the first are remembered with their file, for positions.
func (p *parser) readFile(path string, data []byte, other bool, env Lookup) (*yaml.Node, error) {
	if data == nil {
		var err error
		if data, err = Read(path); err != nil {
			return nil, err
		}
	}
	file := ""
	if other {
		file = path
		if _, ok := p.rank[path]; !ok {
			p.rank[path] = len(p.rank) + 1
		}
	}
	if len(data) > maxFileSize {
		p.add(Pos{File: file}, "the file is larger than 4 MiB: topology files are small; is this the right file?")
		return nil, nil
	}
	sub := &problems{path: path}
	root := decode(sub, data)
	for _, e := range sub.list {
		e.Pos.File = file
		p.addError(*e)
	}
	if root == nil {
		return nil, nil
	}
	if other {
		var mark func(n *yaml.Node)
		mark = func(n *yaml.Node) {
			if _, done := p.origin[n]; done {
				return
			}
			p.origin[n] = path
			for _, c := range n.Content {
				mark(c)
			}
		}
		mark(root)
	}
	p.interpolate(root, env)
	return root, nil
}

// withEnvFiles adds the variables of .env files to env: env wins.
func withEnvFiles(env Lookup, files []string) (Lookup, error) {
	vars := map[string]string{}
	for _, path := range files {
		data, err := Read(path)
		if err != nil {
			return nil, fmt.Errorf("read env file: %w", err)
		}
		more, err := parseDotEnv(path, data, func(name string) (string, bool) {
			if v, ok := env(name); ok {
				return v, true
			}
			v, ok := vars[name]
			return v, ok
		})
		if err != nil {
			return nil, err
		}
		for k, v := range more {
			vars[k] = v
		}
	}
	if len(vars) == 0 {
		return env, nil
	}
	return func(name string) (string, bool) {
		if v, ok := env(name); ok {
			return v, true
		}
		v, ok := vars[name]
		return v, ok
	}, nil
}

// readError says why a file that a file names (include:, extends:,
// env_file:) cannot be read, quoting its path clipped, as messages quote
// every value of a file.
func readError(err error) string {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	if strings.IndexByte(pe.Path, 0) >= 0 {
		return fmt.Sprintf("the path %q holds a NUL byte, which no file name can: remove it", clip(pe.Path))
	}
	return fmt.Sprintf("cannot read %q: %v", clip(pe.Path), pe.Err)
}

func isRegular(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// topEntry returns the value of the top-level key of a document, or nil.
func topEntry(root *yaml.Node, key string) *yaml.Node {
	root = resolve(root)
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			return root.Content[i+1]
		}
	}
	return nil
}

// setTop sets (or with nil, removes) a top-level key of a mapping.
func (p *parser) setTop(root *yaml.Node, key string, val *yaml.Node) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			if val == nil {
				root.Content = slices.Delete(root.Content, i, i+2)
			} else {
				root.Content[i+1] = val
			}
			return
		}
	}
	if val != nil {
		root.Content = append(root.Content, p.scalar(key, "!!str", val), val)
	}
}

// sections are the top-level mappings include: adds to.
var sections = []string{"services", "networks", "volumes", "secrets", "configs", "models"}

// include adds the resources of the files a Compose file's include: names,
// as Compose does: each is read (and merged, for a list of paths) as a
// project of its own, relative to the including file, interpolated with
// its own .env (or env_file); a resource both files define is an error.
func (p *parser) include(root *yaml.Node, path string, env Lookup, stack []string) *yaml.Node {
	root = resolve(root)
	list := topEntry(root, "include")
	if list == nil {
		return root
	}
	// The including file's own mapping is changed; a copy keeps the
	// anchors other files may not see anyway.
	own := p.derive(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, root)
	own.Content = append(own.Content, root.Content...)
	p.setTop(own, "include", nil)
	items := resolve(list)
	if items.Kind != yaml.SequenceNode {
		p.errorf(list, "include must be a list of files, or of {path, project_directory, env_file}, got %s", describe(items))
		return own
	}
	dir := filepath.Dir(path)
	for _, item := range items.Content {
		paths, envFiles, at := p.includeItem(item, dir)
		if len(paths) == 0 {
			continue
		}
		subEnv := env
		if envFiles == nil {
			if dot := filepath.Join(filepath.Dir(paths[0]), ".env"); isRegular(dot) {
				envFiles = []string{dot}
			}
		}
		subEnv, err := withEnvFiles(env, envFiles)
		if err != nil {
			p.errorf(at, "include: %s", readError(err))
			continue
		}
		var sub *yaml.Node
		for _, ip := range paths {
			if slices.Contains(stack, absPath(ip)) {
				p.errorf(at, "include: %s includes itself (through %s)", clip(ip), clip(strings.Join(stack, " -> ")))
				continue
			}
			r, err := p.readFile(ip, nil, true, subEnv)
			if err != nil {
				p.errorf(at, "include: %s", readError(err))
				continue
			}
			if r == nil {
				continue
			}
			if key, compose, ok := p.formatOf(r); ok && !compose {
				p.errorf(key, "include: %s is a topo file: include takes Compose files", ip)
				continue
			}
			r = p.include(r, ip, subEnv, append(stack, absPath(ip)))
			sub = p.merge(sub, r)
		}
		if sub == nil {
			continue
		}
		for _, sec := range sections {
			add := topEntry(sub, sec)
			if add == nil || resolve(add).Kind != yaml.MappingNode {
				continue
			}
			have := topEntry(own, sec)
			merged := p.derive(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, add)
			defined := map[string]*yaml.Node{}
			if have != nil && resolve(have).Kind == yaml.MappingNode {
				for _, e := range p.entries(resolve(have)) {
					defined[e.key.Value] = e.key
					merged.Content = append(merged.Content, e.key, e.val)
				}
				merged.Line, merged.Column = have.Line, have.Column
			}
			for _, e := range p.entries(resolve(add)) {
				if k, dup := defined[e.key.Value]; dup {
					p.errorf(k, "%s.%s is defined here and in an included file (%s): rename one", sec, clip(e.key.Value), p.where(e.key))
					continue
				}
				merged.Content = append(merged.Content, e.key, e.val)
			}
			p.setTop(own, sec, merged)
		}
	}
	return own
}

// includeItem reads one entry of include:, a path or {path,
// project_directory, env_file}, into files relative to dir.
func (p *parser) includeItem(item *yaml.Node, dir string) (paths, envFiles []string, at *yaml.Node) {
	rel := func(s string) string {
		if filepath.IsAbs(s) {
			return s
		}
		return filepath.Join(dir, s)
	}
	strs := func(n *yaml.Node, what string) []string {
		v := resolve(n)
		if v.Kind == yaml.ScalarNode {
			if s, ok := p.str(n, what, `"other/compose.yaml"`); ok {
				return []string{rel(s)}
			}
			return nil
		}
		if v.Kind != yaml.SequenceNode {
			p.errorf(n, "%s must be a path or a list of paths, got %s", what, describe(v))
			return nil
		}
		var out []string
		for _, it := range v.Content {
			if s, ok := p.str(it, what, `"other/compose.yaml"`); ok {
				out = append(out, rel(s))
			}
		}
		return out
	}
	v := resolve(item)
	if v.Kind != yaml.MappingNode {
		return strs(item, "include: each entry"), nil, item
	}
	for _, e := range p.entries(v) {
		switch e.key.Value {
		case "path":
			paths = strs(e.val, "include: path")
		case "env_file":
			envFiles = strs(e.val, "include: env_file")
		case "project_directory":
			if s, ok := p.str(e.val, "include: project_directory", `"../other"`); ok {
				dir = rel(s)
			}
		default:
			if !strings.HasPrefix(e.key.Value, "x-") {
				p.errorf(e.key, "unknown key %q in an include entry: valid keys are path, project_directory and env_file", clip(e.key.Value))
			}
		}
	}
	if paths == nil {
		p.errorf(item, "include: the entry has no path")
	}
	return paths, envFiles, item
}

// services returns the document's services mapping, or nil.
func services(root *yaml.Node) *yaml.Node {
	s := topEntry(root, "services")
	if s == nil || resolve(s).Kind != yaml.MappingNode {
		return nil
	}
	return resolve(s)
}

// filterServices keeps the services keep says yes to, in a new mapping.
func (p *parser) filterServices(root *yaml.Node, keep func(name string, svc *yaml.Node) bool) {
	svcs := services(root)
	if svcs == nil {
		return
	}
	out := p.derive(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, svcs)
	for _, e := range p.entries(svcs) {
		if keep(e.key.Value, e.val) {
			out.Content = append(out.Content, e.key, e.val)
		}
	}
	p.setTop(root, "services", out)
}

// profiles drops the services whose profiles: none of the active ones
// name, as Compose does. Services without profiles are always on.
func (p *parser) profiles(root *yaml.Node, active []string) {
	if v, ok := p.env("COMPOSE_PROFILES"); ok && v != "" {
		active = append(active, strings.Split(v, ",")...)
	}
	on := map[string]bool{}
	for _, a := range active {
		on[strings.TrimSpace(a)] = true
	}
	p.filterServices(root, func(name string, svc *yaml.Node) bool {
		list := field(svc, "profiles")
		if list == nil {
			return true
		}
		items := resolve(list)
		if items.Kind != yaml.SequenceNode {
			p.errorf(list, "services.%s.profiles must be a list of profile names, got %s", clip(name), describe(items))
			return true
		}
		var names []string
		for _, it := range items.Content {
			s, ok := p.str(it, "services."+clip(name)+".profiles: each profile", `"debug"`)
			if ok && (on[s] || on["*"]) {
				return true
			}
			names = append(names, s)
		}
		if len(names) == 0 {
			return true
		}
		p.disabled[name] = names
		return false
	})
}

// field returns the value of key in the mapping n (merge keys followed),
// or nil.
func field(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Value == key {
			return n.Content[i+1]
		}
		if k.ShortTag() == "!!merge" {
			for _, src := range mergeSources(n.Content[i+1]) {
				if v := field(src, key); v != nil {
					return v
				}
			}
		}
	}
	return nil
}

func mergeSources(n *yaml.Node) []*yaml.Node {
	n = resolve(n)
	if n.Kind == yaml.SequenceNode {
		return n.Content
	}
	return []*yaml.Node{n}
}

// pruneNetworks drops the networks no service uses, as Compose does: it
// creates only those. A service without networks: nor network_mode: uses
// "default".
func (p *parser) pruneNetworks(root *yaml.Node) {
	nets := topEntry(root, "networks")
	if nets == nil || resolve(nets).Kind != yaml.MappingNode {
		return
	}
	used := map[string]bool{}
	if svcs := services(root); svcs != nil {
		for _, e := range p.entries(svcs) {
			if field(e.val, "network_mode") != nil {
				continue
			}
			list := field(e.val, "networks")
			if list == nil {
				used["default"] = true
				continue
			}
			v := resolve(list)
			n := 0
			switch v.Kind {
			case yaml.SequenceNode:
				for _, it := range v.Content {
					used[resolve(it).Value] = true
					n++
				}
			case yaml.MappingNode:
				for _, e := range p.entries(v) {
					used[e.key.Value] = true
					n++
				}
			default:
				n = 1 // reported later
			}
			if n == 0 {
				used["default"] = true
			}
		}
	}
	out := p.derive(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nets)
	for _, e := range p.entries(resolve(nets)) {
		if used[e.key.Value] {
			out.Content = append(out.Content, e.key, e.val)
		}
	}
	p.setTop(root, "networks", out)
}

// extends applies the services' extends: as Compose does: the service
// named (in this document, or in another file) is merged under the
// extending one, which wins, by the rules of merge.
func (p *parser) extends(root *yaml.Node, path string) {
	svcs := services(root)
	if svcs == nil {
		return
	}
	any := false
	for _, e := range p.entries(svcs) {
		any = any || field(e.val, "extends") != nil
	}
	if !any {
		return
	}
	out := p.derive(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, svcs)
	for _, e := range p.entries(svcs) {
		out.Content = append(out.Content, e.key, p.extended(e.key.Value, e.val, svcs, path, nil))
	}
	p.setTop(root, "services", out)
}

// extended is the service svc of the file at path (whose services are
// svcs) with its extends: chain applied.
func (p *parser) extended(name string, svc, svcs *yaml.Node, path string, stack []string) *yaml.Node {
	ext := field(svc, "extends")
	if ext == nil {
		return svc
	}
	what := "services." + clip(name) + ".extends"
	var base, file string
	v := resolve(ext)
	switch v.Kind {
	case yaml.ScalarNode:
		base, _ = p.str(ext, what, `"base"`)
	case yaml.MappingNode:
		for _, e := range p.entries(v) {
			switch e.key.Value {
			case "service":
				base, _ = p.str(e.val, what+".service", `"base"`)
			case "file":
				file, _ = p.str(e.val, what+".file", `"common.yaml"`)
			default:
				p.errorf(e.key, "unknown key %q in %s: valid keys are service and file", clip(e.key.Value), what)
			}
		}
	default:
		p.errorf(ext, "%s must be a service name or {service, file}, got %s", what, describe(v))
	}
	if base == "" {
		p.errorf(ext, "%s names no service", what)
		return svc
	}
	from, fromSvcs := path, svcs
	if file != "" {
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(path), file)
		}
		r, err := p.readFile(file, nil, true, p.env)
		if err != nil {
			p.errorf(ext, "%s: %s", what, readError(err))
			return svc
		}
		if r == nil {
			return svc
		}
		from, fromSvcs = file, services(r)
	}
	key := absPath(from) + "#" + base
	if slices.Contains(stack, key) {
		p.errorf(ext, "%s: service %q extends itself (through %s)", what, clip(base), clip(strings.Join(stack, " -> ")))
		return svc
	}
	b := field(fromSvcs, base)
	if fromSvcs == nil || b == nil {
		p.errorf(ext, "%s: no service %q in %s", what, clip(base), clip(from))
		return svc
	}
	b = p.extended(base, b, fromSvcs, from, append(stack, key))
	own := p.derive(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, svc)
	for _, e := range p.entries(resolve(svc)) {
		if e.key.Value != "extends" {
			own.Content = append(own.Content, e.key, e.val)
		}
	}
	return p.mergeValue(b, own, []string{"services", name})
}

package kernel

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/topolab/topo/planner"
	"github.com/topolab/topo/resolver/records"
	"github.com/topolab/topo/state"
)

// fakeResolver is a project's resolver in the fake: its pid file, its
// records document and what it serves, as data.
type fakeResolver struct {
	pid       int // 0: no pid file
	alive     bool
	records   string // "" when there is no records document
	loaded    string
	listening map[string]bool
}

func (r *fakeResolver) clone() *fakeResolver {
	c := *r
	c.listening = map[string]bool{}
	for k, v := range r.listening {
		c.listening[k] = v
	}
	return &c
}

// checkNetnsFile refuses paths that are not a file of /etc/netns/NS/, as
// the real kernel does.
func checkNetnsFile(ns, p string) error {
	if ns == "" || path.Dir(p) != path.Join(planner.NetnsEtcDir, ns) || (path.Base(p) != "resolv.conf" && path.Base(p) != "hosts") {
		return fmt.Errorf("file %s: not a resolv.conf or hosts of /etc/netns/%s/", p, ns)
	}
	return nil
}

// applyDNS performs the DNS ops; ok is false for other ops.
func (st *fakeState) applyDNS(s planner.Step) (ok bool, err error) {
	switch s.Op {
	case planner.OpFileWrite:
		if err := checkNetnsFile(s.NS, s.Path); err != nil && !isSysctlRecord(s.NS, s.Path) {
			return true, err
		}
		st.files[s.Path] = s.Content
	case planner.OpFileDel:
		if err := checkNetnsFile(s.NS, s.Path); err != nil && !isSysctlRecord(s.NS, s.Path) {
			return true, err
		}
		delete(st.files, s.Path)
	case planner.OpRecordsWrite:
		r := st.resolver(s.Project)
		r.records = s.Content
		if r.alive {
			return true, st.load(r)
		}
	case planner.OpRecordsDel:
		st.resolver(s.Project).records = ""
	case planner.OpResolverStart:
		r := st.resolver(s.Project)
		if r.alive {
			return true, fmt.Errorf("resolver of project %s: %w", s.Project, ErrExist)
		}
		if r.records == "" {
			return true, fmt.Errorf("resolver of project %s: no records document", s.Project)
		}
		st.resolverPID++
		r.pid, r.alive = st.resolverPID, true
		return true, st.load(r)
	case planner.OpResolverStop:
		r := st.resolver(s.Project)
		r.pid, r.alive, r.loaded, r.listening = 0, false, "", map[string]bool{}
	case planner.OpResolverReload:
		r := st.resolver(s.Project)
		if !r.alive {
			return true, fmt.Errorf("resolver of project %s is not running", s.Project)
		}
		return true, st.load(r)
	default:
		return false, nil
	}
	return true, nil
}

// load makes r serve its records, listening in those of the document's
// namespaces that exist.
func (st *fakeState) load(r *fakeResolver) error {
	d, err := records.Decode([]byte(r.records))
	if err != nil {
		return err
	}
	r.loaded = records.Hash([]byte(r.records))
	r.listening = map[string]bool{}
	var missing []error
	for _, ns := range d.Namespaces {
		if st.ns[ns.Name] == nil {
			missing = append(missing, fmt.Errorf("namespace %s: %w", ns.Name, ErrNotExist))
			continue
		}
		r.listening[ns.Name] = true
	}
	return errors.Join(missing...)
}

func (st *fakeState) resolver(project string) *fakeResolver {
	r := st.resolvers[project]
	if r == nil {
		r = &fakeResolver{listening: map[string]bool{}}
		st.resolvers[project] = r
	}
	return r
}

// netnsGone drops what a deleted namespace takes with it: the resolvers'
// sockets in it. Its /etc/netns files stay, as with the real kernel,
// until steps of their own remove them.
func (st *fakeState) netnsGone(ns string) {
	for _, r := range st.resolvers {
		delete(r.listening, ns)
	}
}

// observeDNS adds project's resolver and files to s.
func (st *fakeState) observeDNS(project string, s *state.Snapshot) {
	if r := st.resolvers[project]; r != nil && (r.pid != 0 || r.records != "") {
		o := &state.Resolver{PID: r.pid, Alive: r.alive, Records: r.records}
		if r.alive {
			o.Loaded = r.loaded
			o.Listening = sortedNames(r.listening)
		}
		s.Resolver = o
	}
	for _, n := range s.Namespaces {
		if mk, ok := state.ParseMark(n.Mark); !ok || mk.Project != project {
			continue
		}
		for _, name := range []string{"resolv.conf", "hosts"} {
			p := planner.NetnsFile(n.Name, name)
			if c, ok := st.files[p]; ok {
				if s.Files == nil {
					s.Files = map[string]string{}
				}
				s.Files[p] = c
			}
		}
	}
}

// dumpDNS renders files and resolvers for Dump.
func (st *fakeState) dumpDNS(b *strings.Builder) {
	for _, p := range sortedNames(st.files) {
		fmt.Fprintf(b, "file %s %q\n", p, st.files[p])
	}
	for _, p := range sortedNames(st.resolvers) {
		r := st.resolvers[p]
		if r.pid == 0 && r.records == "" {
			continue
		}
		ls := sortedNames(r.listening)
		sort.Strings(ls)
		fmt.Fprintf(b, "resolver %s pidfile=%v alive=%v records=%.12s loaded=%.12s listening=%v\n",
			p, r.pid != 0, r.alive, records.Hash([]byte(r.records)), r.loaded, ls)
	}
}

// KillResolver ends project's resolver as kill -9 would: its pid file
// stays, naming a dead process. Tests use it as drift.
func (f *Fake) KillResolver(project string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.st.resolvers[project]; r != nil {
		r.alive, r.loaded, r.listening = false, "", map[string]bool{}
	}
}

package planner

import (
	"strings"

	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// Each container that owns a network namespace gets a UTS namespace
// beside it, kept in the project's runtime folder (names.Runtime.UTS),
// holding its hostname and domainname; the containers that share its
// network namespace (network_mode container:NAME) share it too, as
// Docker gives them NAME's hostname, and network_mode host keeps the
// host's. Commands, healthchecks and topo exec run in it.

// UTSOf is the UTS namespace c's processes run in: its network
// namespace's; "" for the host's.
func UTSOf(rt names.Runtime, project string, c *Container) string {
	if c.NS == "" {
		return ""
	}
	return rt.UTS(project, c.NS)
}

// utsFresh reports whether the UTS namespace at path is about to be made:
// a command running now holds another one, or none.
func (d *differ) utsFresh(path string) bool {
	u := d.obs.UTSOf(path)
	return path != "" && (u == nil || !u.Mounted)
}

// uts plans the UTS namespaces: made for a new container, its names
// changed in place (its commands see the new hostname at once), removed
// with the container.
func (d *differ) uts() {
	want := map[string]*Container{}
	for ns, c := range d.wantNS {
		want[d.rt.UTS(d.project, ns)] = c
	}
	have := map[string]*state.UTS{}
	for i := range d.obs.UTS {
		have[d.obs.UTS[i].Path] = &d.obs.UTS[i]
	}
	for _, path := range sortedKeys(want) {
		c, o := want[path], have[path]
		add := op.UTSAdd{Path: path, Hostname: names.UTSName(c.Hostname), Domainname: c.Domainname}
		switch {
		case o == nil || !o.Mounted:
			d.add(create(op.Container(c.Name), add, op.UTSDel{Path: path}))
		case o.Hostname != add.Hostname || o.Domainname != add.Domainname:
			d.add(change(op.Container(c.Name), op.UTSSet(add), op.UTSSet{Path: path, Hostname: o.Hostname, Domainname: o.Domainname}))
		}
	}
	for _, path := range sortedKeys(have) {
		o := have[path]
		if want[path] != nil {
			continue
		}
		ref := op.Container(containerOfNS(d.project, o.NS))
		del := op.Step{Action: op.Destroy, Ref: ref, Op: op.UTSDel{Path: path}}
		if o.Mounted {
			del.Undo = &op.Step{Action: op.Create, Ref: ref, Op: op.UTSAdd{Path: path, Hostname: o.Hostname, Domainname: o.Domainname}}
		}
		d.add(del)
	}
}

// containerOfNS is the container whose namespace ns is, by the name
// names.Namespace derives for it.
func containerOfNS(project, ns string) string { return strings.TrimPrefix(ns, project+"-") }

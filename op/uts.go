package op

// A container's UTS namespace, kept as a bind mount at Path (see
// names.Runtime.UTS), as ip netns keeps a network namespace: its
// hostname and domainname are what `hostname` prints in the container's
// command, healthchecks and topo exec.
type (
	// UTSAdd makes a UTS namespace with the hostname and domainname given
	// and mounts it at Path.
	UTSAdd struct{ Path, Hostname, Domainname string }
	// UTSSet sets the hostname and domainname of the UTS namespace at
	// Path, in place: the commands in it see the change.
	UTSSet struct{ Path, Hostname, Domainname string }
	// UTSDel unmounts and removes the UTS namespace at Path; it ends once
	// no process holds it.
	UTSDel struct{ Path string }
)

func (UTSAdd) Name() string { return "uts-add" }
func (UTSSet) Name() string { return "uts-set" }
func (UTSDel) Name() string { return "uts-del" }

// Command: `touch PATH; unshare --uts=PATH hostname H`, and `domainname D`.
func (o UTSAdd) Command() string {
	set := "hostname " + shellQuote(o.Hostname)
	if o.Domainname != "" {
		set = setNames(o.Hostname, o.Domainname)
	}
	return "touch " + shellQuote(o.Path) + "; unshare --uts=" + shellQuote(o.Path) + " " + set
}

// Command: `nsenter --uts=PATH sh -c 'hostname H; domainname D'`.
func (o UTSSet) Command() string {
	return "nsenter --uts=" + shellQuote(o.Path) + " " + setNames(o.Hostname, o.Domainname)
}

// Command: `umount PATH; rm PATH`.
func (o UTSDel) Command() string {
	return "umount " + shellQuote(o.Path) + "; rm " + shellQuote(o.Path)
}

// setNames is the command that sets a hostname and a domainname; "" is
// the kernel's "(none)", a new namespace's.
func setNames(host, domain string) string {
	if domain == "" {
		domain = "(none)"
	}
	return `sh -c "hostname ` + shellQuote(host) + `; domainname ` + shellQuote(domain) + `"`
}

func init() {
	register("uts-add", func(w *wire) (Operation, error) {
		return UTSAdd{Path: w.Path, Hostname: w.Hostname, Domainname: w.Domainname}, nil
	})
	register("uts-set", func(w *wire) (Operation, error) {
		return UTSSet{Path: w.Path, Hostname: w.Hostname, Domainname: w.Domainname}, nil
	})
	register("uts-del", func(w *wire) (Operation, error) { return UTSDel{Path: w.Path}, nil })
}

func (o UTSAdd) fill(w *wire) { w.Path, w.Hostname, w.Domainname = o.Path, o.Hostname, o.Domainname }
func (o UTSSet) fill(w *wire) { w.Path, w.Hostname, w.Domainname = o.Path, o.Hostname, o.Domainname }
func (o UTSDel) fill(w *wire) { w.Path = o.Path }

// UTSKey is what a UTS namespace provides: the commands that run in it
// need it.
func UTSKey(path string) Key { return Key("uts:" + path) }

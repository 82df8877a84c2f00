package op

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/privilege"
)

// Sysctl writes a sysctl, in NS ("" the host).
type Sysctl struct {
	NS, Key, Value string
}

// FirewallBatch applies changes to one table of one family in one
// iptables-restore (or ip6tables-restore) --noflush: all of them or none.
type FirewallBatch struct {
	// Family is the table's: IPv4 (iptables), the zero value, or IPv6.
	Family  firewall.Family
	Table   string
	Changes []firewall.Change
}

// FileWrite replaces a file with Content: a file of /etc/netns/NS/, or
// the record of a host sysctl from before topo changed it.
type FileWrite struct {
	NS, Path, Content string
}

// FileDel removes a file, as FileWrite names it.
type FileDel struct {
	NS, Path string
}

func (Sysctl) Name() string        { return "sysctl" }
func (FirewallBatch) Name() string { return "firewall" }
func (FileWrite) Name() string     { return "file-write" }
func (FileDel) Name() string       { return "file-del" }

// Command: `[ip netns exec NS] sysctl -w KEY=VALUE`.
func (o Sysctl) Command() string {
	if o.NS != "" {
		return "ip netns exec " + o.NS + " sysctl -w " + o.Key + "=" + o.Value
	}
	return "sysctl -w " + o.Key + "=" + o.Value
}

// Command is one iptables command per change, a line each.
func (o FirewallBatch) Command() string {
	lines := make([]string, len(o.Changes))
	for i, c := range o.Changes {
		lines[i] = firewall.Command(o.Family, o.Table, c)
	}
	return strings.Join(lines, "\n")
}

// FirewallLine is one change of a batch as a plan shows it.
type FirewallLine struct {
	Glyph   rune
	Command string
}

// Lines are the batch's changes as a plan shows them: '+' for those that
// add a chain or a rule, '-' for the others.
func (o FirewallBatch) Lines() []FirewallLine {
	out := make([]FirewallLine, len(o.Changes))
	for i, c := range o.Changes {
		g := '+'
		if !c.Adds() {
			g = '-'
		}
		out[i] = FirewallLine{g, firewall.Command(o.Family, o.Table, c)}
	}
	return out
}

// OnlyRemoves reports whether the batch removes rules and chains and adds
// none.
func (o FirewallBatch) OnlyRemoves() bool {
	for _, c := range o.Changes {
		if c.Adds() {
			return false
		}
	}
	return true
}

// Command: `cat > PATH`.
func (o FileWrite) Command() string { return "cat > " + o.Path }

// Command: `rm -f PATH`.
func (o FileDel) Command() string { return "rm -f " + o.Path }

// The embedded DNS: its records document and its process, by project.
type (
	// RecordsWrite writes the records document (Content) and makes a
	// running resolver serve it.
	RecordsWrite struct{ Project, Content string }
	// RecordsDel removes the records document.
	RecordsDel struct{ Project string }
	// ResolverStart starts the project's resolver and waits until it
	// serves its records.
	ResolverStart struct{ Project string }
	// ResolverStop stops it.
	ResolverStop struct{ Project string }
	// ResolverReload makes it load its records again.
	ResolverReload struct{ Project string }
)

func (RecordsWrite) Name() string   { return "dns-records" }
func (RecordsDel) Name() string     { return "dns-records-del" }
func (ResolverStart) Name() string  { return "resolver-start" }
func (ResolverStop) Name() string   { return "resolver-stop" }
func (ResolverReload) Name() string { return "resolver-reload" }

// The commands are hidden subcommands of topo itself.
func (o RecordsWrite) Command() string   { return "topo resolver load -p " + o.Project }
func (o RecordsDel) Command() string     { return "topo resolver unload -p " + o.Project }
func (o ResolverStart) Command() string  { return "topo resolver start -p " + o.Project }
func (o ResolverStop) Command() string   { return "topo resolver stop -p " + o.Project }
func (o ResolverReload) Command() string { return "topo resolver reload -p " + o.Project }

// ProcStart starts a container's command, detached, in NS ("" topo's own
// namespace), its output appended to Log and its pid recorded in PidFile,
// confined to Privileges (see package daemon), with Env (NAME=VALUE each)
// beside PATH, HOME and TERM, in folder Dir ("" is /).
type ProcStart struct {
	NS           string
	Argv         []string
	Privileges   privilege.Settings
	Env          []string
	Dir          string
	Log, PidFile string
	// Await are the containers that must be healthy first (depends_on's
	// service_healthy), as Health, the project's health file, says.
	Await  []Await
	Health string
	// UTS is the UTS namespace the command runs in (op.UTSAdd's Path);
	// "" the host's.
	UTS string
}

// Await is a wait for a container's command to be healthy: the process
// of PidFile, within Timeout; or, Completed, to have ended with status 0
// (depends_on's service_completed_successfully), as long as it runs.
type Await struct {
	Container string        `json:"container"`
	PidFile   string        `json:"pid_file"`
	Timeout   time.Duration `json:"timeout"`
	Completed bool          `json:"completed,omitempty"`
}

// ProcStop stops the process PidFile records: TERM to its group, KILL
// after a grace period; the pid file goes, and with DropLog the log too.
// PID is the observed process, for display only. With Keep (topo stop)
// the pid file stays, marked stopped, and so does the log.
type ProcStop struct {
	NS           string
	Argv         []string
	Log, PidFile string
	PID          int
	DropLog      bool
	Keep         bool
}

func (ProcStart) Name() string { return "proc-start" }
func (ProcStop) Name() string  { return "proc-stop" }

// Command: `[nsenter --uts=UTS] [ip netns exec NS] [env [-C DIR] NAME=VALUE...] ARGV... >>LOG 2>&1 &`,
// after a wait for each of Await: `timeout T sh -c 'until jq ...; do sleep 0.1; done' &&`.
func (o ProcStart) Command() string {
	var b strings.Builder
	for _, a := range o.Await {
		if a.Completed {
			exit := shellQuote(names.ExitFile(a.PidFile))
			b.WriteString("sh -c " + shellQuote("until [ -e "+exit+" ]; do sleep 0.1; done; [ \"$(jq .code "+exit+")\" = 0 ]") + " && ")
			continue
		}
		until := fmt.Sprintf("until jq -e '.[%q].status == \"healthy\"' %s >/dev/null; do sleep 0.1; done", a.Container, shellQuote(o.Health))
		b.WriteString("timeout " + a.Timeout.String() + " sh -c " + shellQuote(until) + " && ")
	}
	if o.UTS != "" {
		b.WriteString("nsenter --uts=" + shellQuote(o.UTS) + " ")
	}
	if o.NS != "" {
		b.WriteString("ip netns exec " + o.NS + " ")
	}
	if len(o.Env) > 0 || o.Dir != "" {
		b.WriteString("env ")
		if o.Dir != "" {
			b.WriteString("-C " + shellQuote(o.Dir) + " ")
		}
		for _, e := range o.Env {
			b.WriteString(shellQuote(e) + " ")
		}
	}
	b.WriteString(ShellJoin(o.Argv))
	b.WriteString(" >>" + shellQuote(o.Log) + " 2>&1 &")
	return b.String()
}

// Command: `kill -TERM -- -PID; rm -f PIDFILE [LOG]`.
func (o ProcStop) Command() string {
	pid := `"$(jq .pid ` + shellQuote(o.PidFile) + `)"`
	if o.PID != 0 {
		pid = strconv.Itoa(o.PID)
	}
	if o.Keep {
		return "kill -TERM -- -" + pid
	}
	rm := "rm -f " + shellQuote(o.PidFile)
	if o.DropLog {
		rm += " " + shellQuote(o.Log)
	}
	return "kill -TERM -- -" + pid + "; " + rm
}

// ShellJoin quotes argv for a POSIX shell, leaving plain words bare, so
// that commands read as a person would type them.
func ShellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// The wire form of these operations (see wire.go).
func init() {
	register("sysctl", func(w *wire) (Operation, error) { return Sysctl{NS: w.NS, Key: w.Key, Value: w.Value}, nil })
	register("firewall", func(w *wire) (Operation, error) {
		return FirewallBatch{Family: w.Family, Table: w.Table, Changes: w.Rules}, nil
	})
	register("file-write", func(w *wire) (Operation, error) {
		return FileWrite{NS: w.NS, Path: w.Path, Content: w.Content}, nil
	})
	register("file-del", func(w *wire) (Operation, error) { return FileDel{NS: w.NS, Path: w.Path}, nil })
	register("dns-records", func(w *wire) (Operation, error) {
		return RecordsWrite{Project: w.Project, Content: w.Content}, nil
	})
	register("dns-records-del", func(w *wire) (Operation, error) { return RecordsDel{Project: w.Project}, nil })
	register("resolver-start", func(w *wire) (Operation, error) { return ResolverStart{Project: w.Project}, nil })
	register("resolver-stop", func(w *wire) (Operation, error) { return ResolverStop{Project: w.Project}, nil })
	register("resolver-reload", func(w *wire) (Operation, error) { return ResolverReload{Project: w.Project}, nil })
	register("proc-start", func(w *wire) (Operation, error) {
		return ProcStart{NS: w.NS, Argv: w.Argv, Privileges: w.Privileges, Env: w.Env, Dir: w.Dir, Log: w.Log, PidFile: w.PidFile,
			Await: w.Await, Health: w.Health, UTS: w.UTS}, nil
	})
	register("proc-stop", func(w *wire) (Operation, error) {
		return ProcStop{NS: w.NS, Argv: w.Argv, Log: w.Log, PidFile: w.PidFile, PID: w.PID, DropLog: w.DropLog, Keep: w.Keep}, nil
	})
}

func (o Sysctl) fill(w *wire)         { w.NS, w.Key, w.Value = o.NS, o.Key, o.Value }
func (o FirewallBatch) fill(w *wire)  { w.Family, w.Table, w.Rules = o.Family, o.Table, o.Changes }
func (o FileWrite) fill(w *wire)      { w.NS, w.Path, w.Content = o.NS, o.Path, o.Content }
func (o FileDel) fill(w *wire)        { w.NS, w.Path = o.NS, o.Path }
func (o RecordsWrite) fill(w *wire)   { w.Project, w.Content = o.Project, o.Content }
func (o RecordsDel) fill(w *wire)     { w.Project = o.Project }
func (o ResolverStart) fill(w *wire)  { w.Project = o.Project }
func (o ResolverStop) fill(w *wire)   { w.Project = o.Project }
func (o ResolverReload) fill(w *wire) { w.Project = o.Project }
func (o ProcStart) fill(w *wire) {
	w.NS, w.Argv, w.Privileges, w.Env, w.Dir, w.Log, w.PidFile = o.NS, o.Argv, o.Privileges, o.Env, o.Dir, o.Log, o.PidFile
	w.Await, w.Health, w.UTS = o.Await, o.Health, o.UTS
}
func (o ProcStop) fill(w *wire) {
	w.NS, w.Argv, w.Log, w.PidFile, w.PID, w.DropLog, w.Keep = o.NS, o.Argv, o.Log, o.PidFile, o.PID, o.DropLog, o.Keep
}

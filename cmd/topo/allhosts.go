package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/topolab/topo/spec"
	"github.com/topolab/topo/view"
)

// sshEnv names the program --all-hosts reaches the hosts with: ssh by
// default.
const sshEnv = "TOPO_SSH"

// fleet is a file with hosts, resolved to one document, and the way to
// run topo on each of its hosts: `ssh ADDRESS topo ARGS`, the document on
// standard input (-f -).
type fleet struct {
	g       *globals
	project string
	hosts   []*spec.Host
	doc     []byte
}

// remoteRun is what one remote topo did.
type remoteRun struct {
	stdout, stderr string
	code           int
	err            error // the command could not run, or exited non-zero
}

func (g *globals) fleet() (*fleet, error) {
	// The files themselves, never the record of an earlier up: every
	// host is sent the document they resolve to.
	f, err := g.loadFiles()
	if err != nil {
		return nil, err
	}
	if len(f.Hosts) == 0 {
		return nil, fmt.Errorf("--all-hosts: %s has no hosts:; without them there is one machine: leave --all-hosts out", g.fileNames())
	}
	project := f.Project // -p applied
	var doc bytes.Buffer
	// One file, interpolated here, named: each host reads the same.
	if err := g.doc.Render(&doc, "yaml", project); err != nil {
		return nil, err
	}
	return &fleet{g: g, project: project, hosts: f.Hosts, doc: doc.Bytes()}, nil
}

// run runs `topo ARGS` on host h over ssh, the document on its standard
// input.
func (fl *fleet) run(h *spec.Host, args ...string) remoteRun {
	ssh := cmp.Or(os.Getenv(sshEnv), "ssh")
	cmd := exec.Command(ssh, append([]string{h.Address.String(), "topo"}, args...)...)
	cmd.Stdin = bytes.NewReader(fl.doc)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := remoteRun{stdout: stdout.String(), stderr: stderr.String(), err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.code = -1
	}
	return r
}

// each runs fn for every host at once and returns the results in the
// file's order of hosts.
func (fl *fleet) each(fn func(h *spec.Host) remoteRun) []remoteRun {
	out := make([]remoteRun, len(fl.hosts))
	var wg sync.WaitGroup
	for i, h := range fl.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = fn(h)
		}()
	}
	wg.Wait()
	return out
}

// show prints each host's output under its name, in the file's order.
func (fl *fleet) show(what string, runs []remoteRun) {
	for i, h := range fl.hosts {
		fl.showOne(h, what, runs[i])
	}
}

func (fl *fleet) showOne(h *spec.Host, what string, r remoteRun) {
	fmt.Fprintf(fl.g.stdout, "== %s (%s): %s\n", h.Name, h.Address, what)
	fmt.Fprint(fl.g.stdout, r.stdout)
	if s := strings.TrimSpace(r.stderr); s != "" {
		for _, line := range strings.Split(s, "\n") {
			fmt.Fprintf(fl.g.stdout, "%s: %s\n", h.Name, line)
		}
	}
}

// failed names the hosts whose run failed.
func (fl *fleet) failed(runs []remoteRun, ok func(remoteRun) bool) []string {
	var out []string
	for i, r := range runs {
		if !ok(r) {
			out = append(out, fl.hosts[i].Name)
		}
	}
	return out
}

func succeeded(r remoteRun) bool { return r.err == nil }

// upAll is `up --all-hosts`: every host's plan first (a file or a host
// that cannot plan stops the run before any change), then every host's
// up at once; if any fails, the hosts that succeeded and had nothing of
// the project before are brought down again. A host that had the project
// up before keeps the file's new state: topo cannot give it back its old
// file, and says so.
func (g *globals) upAll() error {
	fl, err := g.fleet()
	if err != nil {
		return err
	}
	fresh := make([]bool, len(fl.hosts))
	plans := fl.each(func(h *spec.Host) remoteRun {
		r := fl.run(h, "plan", "-f", "-", "--host", h.Name)
		if r.err != nil {
			return r
		}
		ps := fl.run(h, "ps", "-f", "-", "--json")
		fresh[indexOf(fl.hosts, h)] = ps.err == nil && nothingUp(ps.stdout, h.Name)
		return r
	})
	fl.show("plan", plans)
	if bad := fl.failed(plans, succeeded); len(bad) > 0 {
		return fmt.Errorf("up --all-hosts: the plan failed on %s: nothing was changed on any host", strings.Join(bad, ", "))
	}
	ups := fl.each(func(h *spec.Host) remoteRun { return fl.run(h, "up", "-f", "-", "--host", h.Name) })
	fl.show("up", ups)
	bad := fl.failed(ups, succeeded)
	if len(bad) == 0 {
		return nil
	}
	var undone, kept []string
	for i, h := range fl.hosts {
		switch {
		case ups[i].err != nil:
		case fresh[i]:
			r := fl.run(h, "down", "-p", fl.project)
			fl.showOne(h, "rollback (down)", r)
			if r.err != nil {
				kept = append(kept, h.Name+" (its down failed too)")
				continue
			}
			undone = append(undone, h.Name)
		default:
			kept = append(kept, h.Name+" (the project was up there before: it keeps the file's new state)")
		}
	}
	msg := fmt.Sprintf("up --all-hosts: up failed on %s, which rolled back its own steps", strings.Join(bad, ", "))
	if len(undone) > 0 {
		msg += "; rolled back " + strings.Join(undone, ", ")
	}
	if len(kept) > 0 {
		msg += "; not rolled back: " + strings.Join(kept, ", ")
	}
	return errors.New(msg)
}

// downAll is `down --all-hosts`: every host's down at once.
func (g *globals) downAll() error {
	fl, err := g.fleet()
	if err != nil {
		return err
	}
	downs := fl.each(func(h *spec.Host) remoteRun { return fl.run(h, "down", "-p", fl.project) })
	fl.show("down", downs)
	if bad := fl.failed(downs, succeeded); len(bad) > 0 {
		return fmt.Errorf("down --all-hosts: down failed on %s (the others are down); run it again", strings.Join(bad, ", "))
	}
	return nil
}

// nothingUp says whether ps's JSON shows none of host's containers up.
func nothingUp(psJSON, host string) bool {
	var ps view.PS
	if json.Unmarshal([]byte(psJSON), &ps) != nil {
		return false
	}
	for _, c := range ps.Containers {
		if c.Host == host && c.State != view.StateDown {
			return false
		}
	}
	return true
}

func indexOf(hosts []*spec.Host, h *spec.Host) int {
	for i := range hosts {
		if hosts[i] == h {
			return i
		}
	}
	return -1
}

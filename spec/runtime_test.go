package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRuntimeKeys reads every runtime key in its forms, in a Compose
// project of two -f files and an included one: env_file paths relative to
// the first file's folder (an -f override's too) and to an included
// file's own.
func TestRuntimeKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("app.env", "# comment\nFROM_FILE=1\nSHARED=file\nQUOTED=\"a b\"\nHOME_VAR=${HOMEISH}\n")
	write("over.env", "OVER=yes\n")
	write("sub/sub.env", "SUB=1\n")
	write("sub/compose.yaml", "services:\n  sub:\n    env_file: sub.env\n")
	first := write("compose.yaml", `
name: rt
include: [sub/compose.yaml]
services:
  web:
    env_file: [app.env, {path: absent.env, required: false}]
    environment:
      SHARED: env
      NUM: 5
      BOOL: true
      FROM_SHELL:
      UNSET:
    working_dir: /srv
    dns: 10.0.0.53
    dns_search: [Lab.Example, "."]
    dns_opt: [ndots:2, edns0]
    extra_hosts:
      - "db.example:10.1.2.3"
      - "v6=[::1]"
      - "gw:host-gateway"
    hostname: web
    domainname: lab.example
    depends_on:
      db:
        condition: service_healthy
      cache:
        required: false
  db:
    environment: ["A=1", "B=", "FROM_SHELL"]
    extra_hosts: {one: 10.0.0.1, two: [10.0.0.2, 10.0.0.3]}
    healthcheck:
      test: pg_isready
      interval: 2s
      start_period: 1m
  worker:
    depends_on: [db]
    healthcheck: {test: ["CMD", "true"], retries: 5, timeout: 500ms}
  off:
    healthcheck: {test: ["NONE"]}
networks:
  default:
    driver_opts: {com.docker.network.driver.mtu: "1400"}
`)
	over := write("override/compose.override.yaml", "services:\n  worker:\n    env_file: over.env\n")
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"FROM_SHELL": "shell", "HOMEISH": "/home/x"}[k]
		return v, ok
	}
	f, err := LoadFiles(Options{Files: []string{first, over}, Env: env, EnvFiles: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	web, db, worker, sub, off := f.Container("web"), f.Container("db"), f.Container("worker"), f.Container("sub"), f.Container("off")
	check := func(what string, got, want any) {
		t.Helper()
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", what, d)
		}
	}
	check("web env", web.Env, []string{"BOOL=true", "FROM_FILE=1", "FROM_SHELL=shell", "HOME_VAR=/home/x", "NUM=5", "QUOTED=a b", "SHARED=env"})
	check("db env", db.Env, []string{"A=1", "B=", "FROM_SHELL=shell"})
	check("worker env (an -f file's env_file is relative to the first file's folder)", worker.Env, []string{"OVER=yes"})
	check("sub env (an included file's, to its own)", sub.Env, []string{"SUB=1"})
	check("working_dir", web.WorkingDir, "/srv")
	check("dns", fmt.Sprint(web.DNS), "[10.0.0.53]")
	check("dns_search", web.DNSSearch, []string{"lab.example", "."})
	check("dns_opt", web.DNSOptions, []string{"ndots:2", "edns0"})
	hosts := func(c *Container) (out []string) {
		for _, h := range c.ExtraHosts {
			a := h.Addr.String()
			if h.Gateway {
				a = "host-gateway"
			}
			out = append(out, h.Name+" "+a)
		}
		return out
	}
	check("web extra_hosts", hosts(web), []string{"db.example 10.1.2.3", "v6 ::1", "gw host-gateway"})
	check("db extra_hosts", hosts(db), []string{"one 10.0.0.1", "two 10.0.0.2", "two 10.0.0.3"})
	check("domainname", web.Domainname, "lab.example")
	deps := func(c *Container) (out []string) {
		for _, d := range c.DependsOn {
			out = append(out, d.Container)
		}
		return out
	}
	// cache is not in the project, and required: false: skipped, noted.
	check("web depends_on", deps(web), []string{"db"})
	check("worker depends_on", deps(worker), []string{"db"})
	check("db healthcheck", *db.Healthcheck, Healthcheck{Test: []string{"/bin/sh", "-c", "pg_isready"}, Interval: 2 * time.Second,
		Timeout: DefaultHealthTimeout, StartPeriod: time.Minute, StartInterval: DefaultHealthStartInterval, Retries: 3, Pos: db.Healthcheck.Pos})
	check("worker healthcheck", *worker.Healthcheck, Healthcheck{Test: []string{"true"}, Interval: DefaultHealthInterval,
		Timeout: 500 * time.Millisecond, StartInterval: DefaultHealthStartInterval, Retries: 5, Pos: worker.Healthcheck.Pos})
	if off.Healthcheck != nil {
		t.Errorf("test: [NONE] gives a healthcheck: %+v", off.Healthcheck)
	}
	check("mtu from driver_opts", f.Network("default").MTU, 1400)
	var notes []string
	for _, n := range f.Notes {
		notes = append(notes, n.Msg)
	}
	check("notes", notes, []string{
		`container "web": depends_on "db": condition service_healthy waits for nothing: "db" has no command, whose health its healthcheck would check`,
		`container "web": depends_on "cache" is skipped: there is no such container, and required is false`,
		`container "db": its healthcheck is not run: the container has no command (topo runs no image's)`,
		`container "worker": its healthcheck is not run: the container has no command (topo runs no image's)`,
	})
}

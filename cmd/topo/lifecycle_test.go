package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/topolab/topo/names"
)

// TestStopStartOnFake: stop keeps the record, marked stopped; ps says
// exited; plan shows the start; start runs it again; nothing else changes.
func TestStopStartOnFake(t *testing.T) {
	file, m, rt := cliSetup(t)
	if _, _, err := cli(t, m, rt, "-f", file, "up"); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, m, rt, "-f", file, "stop")
	if err != nil || !strings.Contains(out, "kill -TERM -- -") || strings.Contains(out, "rm -f") {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if out, _, _ := cli(t, m, rt, "-f", file, "ps", "-q", "--filter", "status=exited"); out != "web\n" {
		t.Errorf("ps -q --filter status=exited after stop = %q", out)
	}
	if out, _, err := cli(t, m, rt, "-f", file, "plan"); err != nil || !strings.Contains(out, "Plan: 1 to add, 0 to change, 0 to destroy.") {
		t.Errorf("plan after stop: %v\n%s", err, out)
	}
	if out, _, err := cli(t, m, rt, "-f", file, "stop", "db"); err == nil || !strings.Contains(err.Error(), "container db has no command") {
		t.Errorf("stop db: %v %s", err, out)
	}
	if out, _, err := cli(t, m, rt, "-f", file, "start", "web"); err != nil || !strings.Contains(out, "start done") {
		t.Errorf("start web: %v\n%s", err, out)
	}
	if out, _, err := cli(t, m, rt, "-f", file, "plan"); err != nil || !strings.Contains(out, "No changes.") {
		t.Errorf("plan after start: %v\n%s", err, out)
	}
	if out, _, err := cli(t, m, rt, "-f", file, "start"); err != nil || out != "Project shop: nothing to start.\n" {
		t.Errorf("start of what runs: %v %q", err, out)
	}
}

// TestRecordOnFake: up records the project; -p alone reads it from any
// folder; ls lists it; down removes the record.
func TestRecordOnFake(t *testing.T) {
	file, m, rt := cliSetup(t)
	if _, _, err := cli(t, m, rt, "-f", file, "up"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{names.SourceFile, names.ConfigFile} {
		fi, err := os.Stat(filepath.Join(rt.Project("shop"), f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("record %s: %v", f, err)
		}
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, m, rt, "-p", "shop", "ps", "-q")
	if err != nil || out != "web\ndb\n" {
		t.Errorf("ps -p shop -q without the file: %v %q", err, out)
	}
	out, _, err = cli(t, m, rt, "ls")
	if err != nil || !strings.Contains(out, "shop  running  2/2         front     "+file) {
		t.Errorf("ls: %v\n%s", err, out)
	}
	if _, _, err := cli(t, m, rt, "down", "-p", "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rt.Project("shop")); !os.IsNotExist(err) {
		t.Errorf("down left the runtime folder: %v", err)
	}
	if out, _, err := cli(t, m, rt, "ls", "-q"); err != nil || out != "" {
		t.Errorf("ls after down: %v %q", err, out)
	}
}

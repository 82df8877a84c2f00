package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// run runs the topo binary outside any sandbox: these commands read files
// only, never the kernel. With asNobody it drops root first.
func run(t *testing.T, asNobody bool, args ...string) (string, string, int) {
	t.Helper()
	name, argv := topoBin, args
	if asNobody {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("needs setpriv (util-linux) to drop root")
		}
		name, argv = "setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", topoBin}, args...)
	}
	cmd := exec.Command(name, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), 0
}

// TestValidateNeedsNoRoot: validate checks a file without root or kernel,
// and reports every problem with its position.
func TestValidateNeedsNoRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop it (setpriv)")
	}
	out, errOut, code := run(t, true, "validate", "-f", example("shop"))
	if code != 0 || !strings.Contains(out, "valid (project shop: 2 networks, 4 containers)") {
		t.Errorf("validate shop as nobody: exit %d\n%s%s", code, out, errOut)
	}
	// t.TempDir's parent is private to root: make a folder nobody can read.
	dir, err := os.MkdirTemp("", "topo-cli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bad := filepath.Join(dir, "topo.yaml")
	os.WriteFile(bad, []byte("name: bad\ncontainers:\n  a:\n    networks: [nowhere]\n    ports: [\"99999\"]\n"), 0o644)
	_, errOut, code = run(t, true, "validate", "-f", bad)
	if code != 1 || !strings.Contains(errOut, bad+":4:16:") || !strings.Contains(errOut, bad+":5:") {
		t.Errorf("validate of a bad file: exit %d\n%s", code, errOut)
	}
	// What needs the kernel says so, without root, and before what is
	// wrong with the file (plan, up and down open the kernel first).
	_, errOut, code = run(t, true, "plan", "-f", example("three"))
	if code != 1 || !strings.Contains(errOut, "topo plan needs root") {
		t.Errorf("plan as nobody: exit %d\n%s", code, errOut)
	}
	for _, verb := range []string{"up", "down"} {
		_, errOut, code = run(t, true, verb, "-f", bad)
		if code != 1 || !strings.Contains(errOut, "topo "+verb+" needs root") {
			t.Errorf("%s of a bad file as nobody: exit %d\n%s", verb, code, errOut)
		}
	}
}

// TestSchemaVersionCompletion: the printing commands print what they say.
func TestSchemaVersionCompletion(t *testing.T) {
	out, _, code := run(t, false, "schema")
	_, self, _, _ := runtime.Caller(0)
	want, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "schema", "topo.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if code != 0 || out != string(want) || json.Unmarshal([]byte(out), &v) != nil || v["$schema"] == nil {
		t.Errorf("topo schema: exit %d, %d bytes, not the committed schema", code, len(out))
	}
	if out, _, code := run(t, false, "version"); code != 0 || !strings.HasPrefix(out, "topo ") {
		t.Errorf("topo version: exit %d %q", code, out)
	}
	if out, _, code := run(t, false, "completion", "bash"); code != 0 || !strings.Contains(out, "complete -o default -F __start_topo topo") {
		t.Errorf("topo completion bash: exit %d\n%.200s", code, out)
	}
}

// TestValidateBridgePortLimit: a bridge network that more containers join
// than a bridge has ports (1023) is refused by validate, at the first
// container past the limit, before any up would meet the kernel's refusal
// half way through.
func TestValidateBridgePortLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: big\nnetworks:\n  lan: {subnet: 10.1.0.0/16}\ncontainers:\n")
	for i := range 1024 {
		fmt.Fprintf(&b, "  c%d: {networks: [lan]}\n", i)
	}
	file := filepath.Join(t.TempDir(), "topo.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// c1023 is on line 5+1023; its network's name at column 22.
	_, errOut, code := run(t, false, "validate", "-f", file)
	want := file + `:1028:22: network "lan" (line 3): 1024 containers join it, and a bridge holds at most 1023`
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, `container "c1023" is the 1024th; spread the containers over 2 or more networks`) {
		t.Errorf("validate of 1024 containers on one bridge: exit %d\n%s\nwant %s", code, errOut, want)
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/topolab/topo/internal/golden"
)

// composeVars are the variables the files of testdata/compose read that
// are not in their .env files: unset here, so that the machine's own
// environment cannot change the output.
var composeVars = []string{"PROXY_PORT", "REGISTRY", "TAG", "API_PORT", "API_HOST_PORT", "PROJECT_NET",
	"NET_DRIVER", "MESH_INTERNAL", "COMPOSE_PROFILES", "APP_TAG", "PG_VERSION", "DB_PORT", "DATA_SUBNET",
	"COMPOSE_FILE", "COMPOSE_PROJECT_NAME"}

// TestComposeConfig runs topo config, without -f, in each folder of
// testdata/compose (Compose files written the way projects write them):
// the file is found as Compose finds it, with its override and .env, and
// the output (config.golden) and the notes on stderr (notes.golden) are
// pinned. The same folders run for real in e2e.
func TestComposeConfig(t *testing.T) {
	dirs, err := filepath.Glob("../../testdata/compose/*")
	if err != nil || len(dirs) < 10 {
		t.Fatalf("want at least ten folders in testdata/compose, got %v (%v)", dirs, err)
	}
	for _, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			for _, v := range composeVars {
				t.Setenv(v, "")
				os.Unsetenv(v)
			}
			t.Chdir(abs)
			for _, format := range []string{"yaml", "json"} {
				var stdout, stderr bytes.Buffer
				root := newRootCmd(&stdout, &stderr, env{})
				root.SetArgs([]string{"config", "--format", format})
				if err := root.Execute(); err != nil {
					t.Fatalf("topo config: %v\n%s", err, stderr.String())
				}
				golden.Compare(t, filepath.Join(abs, "config."+format+".golden"), stdout.Bytes())
				golden.Compare(t, filepath.Join(abs, "notes.golden"), stderr.Bytes())
			}
		})
	}
}

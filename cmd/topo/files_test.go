package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFindFiles: without -f the file is looked for as Compose looks for
// its own, in the folder, then in the folders above; a Compose file takes
// its override file along, topo's does not.
func TestFindFiles(t *testing.T) {
	root := t.TempDir()
	touch := func(rel string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	touch("a/compose.yaml")
	touch("a/docker-compose.yml")
	touch("a/compose.override.yml")
	touch("a/b/c/.keep")
	touch("t/topo.yml")
	touch("t/compose.override.yaml")
	tests := []struct {
		dir   string
		files []string
		notes int
	}{
		{"a", []string{"compose.yaml", "compose.override.yml"}, 1},
		{"a/b/c", []string{filepath.Join(root, "a/compose.yaml"), filepath.Join(root, "a/compose.override.yml")}, 1},
		{"t", []string{"topo.yml"}, 0},
	}
	for _, tt := range tests {
		files, notes, err := findFiles(filepath.Join(root, tt.dir))
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tt.files, files); d != "" || len(notes) != tt.notes {
			t.Errorf("findFiles(%s) (-want +got):\n%s\nnotes %q", tt.dir, d, notes)
		}
	}
	if _, _, err := findFiles(filepath.Join(root, "nothing")); err == nil {
		t.Error("findFiles in a tree without a file: no error")
	}
}

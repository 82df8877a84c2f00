package safedir

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// withFallback runs f with openat2, then as on a kernel without it.
func withFallback(t *testing.T, f func(t *testing.T)) {
	t.Run("openat2", f)
	t.Run("O_NOFOLLOW", func(t *testing.T) {
		defer noOpenat2.Store(noOpenat2.Load())
		noOpenat2.Store(true)
		f(t)
	})
}

// setup makes a root folder and, outside it, a file and a folder that
// links planted inside point to.
func setup(t *testing.T) (tree Tree, outFile, outDir string) {
	base := t.TempDir()
	outFile, outDir = filepath.Join(base, "precious"), filepath.Join(base, "elsewhere")
	if err := os.WriteFile(outFile, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(outDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return Runtime(filepath.Join(base, "root")), outFile, outDir
}

func TestLinksRefused(t *testing.T) {
	withFallback(t, func(t *testing.T) {
		tree, outFile, outDir := setup(t)
		if err := tree.MkdirAll(filepath.Join(tree.Root, "p", "containers")); err != nil {
			t.Fatal(err)
		}
		link := func(at, to string) {
			t.Helper()
			if err := os.Symlink(to, at); err != nil {
				t.Fatal(err)
			}
		}
		wantLink := func(what string, err error, at string) {
			t.Helper()
			var le *LinkError
			if !errors.As(err, &le) || le.Path != at {
				t.Errorf("%s: %v, want a LinkError naming %s", what, err, at)
			}
		}
		file := filepath.Join(tree.Root, "p", "journal")
		link(file, outFile)
		_, err := tree.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		wantLink("open for writing", err, file)
		_, err = tree.ReadFile(file)
		wantLink("read", err, file)
		wantLink("remove", tree.Remove(file), file)
		wantLink("write over", tree.WriteAtomic(file+".x", file, []byte("x"), 0o600), file)
		tmp := filepath.Join(tree.Root, "p", "lock.tmp")
		link(tmp, outFile)
		wantLink("write through a temporary link", tree.WriteAtomic(tmp, filepath.Join(tree.Root, "p", "lock"), []byte("x"), 0o600), tmp)

		dir := filepath.Join(tree.Root, "p", "containers", "sub")
		link(dir, outDir)
		_, err = tree.OpenFile(filepath.Join(dir, "web.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		wantLink("a file under a linked folder", err, dir)
		wantLink("rmdir", tree.Rmdir(dir), dir)

		other := Runtime(filepath.Join(filepath.Dir(tree.Root), "linked"))
		link(other.Root, outDir)
		_, err = other.OpenDir(other.Root, true)
		wantLink("a linked root", err, other.Root)

		if b, err := os.ReadFile(outFile); err != nil || string(b) != "precious\n" {
			t.Errorf("the file outside: %q, %v", b, err)
		}
		if entries, _ := os.ReadDir(outDir); len(entries) != 0 {
			t.Errorf("the folder outside holds %v", entries)
		}
	})
}

func TestModesAtCreation(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0))
	tree, _, _ := setup(t)
	p := filepath.Join(tree.Root, "p", "containers", "web.pid")
	if err := tree.WriteAtomic(p+".tmp", p, []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		tree.Root: 0o700, filepath.Dir(filepath.Dir(p)): 0o700, filepath.Dir(p): 0o700, p: 0o600,
	} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", path, st.Mode().Perm(), err, want)
		}
	}
}

func TestOwnerRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	tree, _, _ := setup(t)
	p := filepath.Join(tree.Root, "p", "journal")
	if err := tree.WriteAtomic(p+".tmp", p, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := func(what string, err error, at string) {
		t.Helper()
		var oe *OwnerError
		if !errors.As(err, &oe) || oe.Path != at {
			t.Errorf("%s: %v, want an OwnerError naming %s", what, err, at)
		}
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := tree.ReadFile(p)
	want("another user's file", err, p)
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(p), 0o770); err != nil {
		t.Fatal(err)
	}
	_, err = tree.ReadFile(p)
	want("a group-writable folder", err, filepath.Dir(p))
	if err := os.Chmod(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tree.Root, 0o1777); err != nil {
		t.Fatal(err)
	}
	_, err = tree.ReadFile(p)
	want("a world-writable root", err, tree.Root)
}

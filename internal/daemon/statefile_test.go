package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(PidDirEnv, dir)
	if got, want := StateFile("web.cf"), filepath.Join(dir, "ldirectord.web.cf.state"); got != want {
		t.Errorf("StateFile = %q, want %q", got, want)
	}
	path := StateFile("web.cf")
	for _, text := range []string{"first\n", "second, longer\n", "x"} {
		if err := WriteFileAtomic(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if err != nil || string(data) != text || fi.Mode().Perm() != 0o644 {
			t.Errorf("after writing %q: %q, %v, mode %v", text, data, err, fi.Mode())
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x.state"), []byte("x"), 0o644); err == nil {
		t.Errorf("writing into a missing directory: no error")
	}

	if err := RemoveIfOwned(path, func(data []byte) bool { return string(data) == "y" }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("removed a file it does not own: %v", err)
	}
	if err := RemoveIfOwned(path, func(data []byte) bool { return string(data) == "x" }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("owned file not removed: %v", err)
	}
	if err := RemoveIfOwned(path, func([]byte) bool { return true }); err != nil {
		t.Errorf("removing a missing file: %v", err)
	}
}

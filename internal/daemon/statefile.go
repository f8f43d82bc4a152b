package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// StateFile is the path of the state file the daemon for CFGNAME publishes for `ldirectord show`:
// <PidDir>/ldirectord.<CFGNAME>.state, next to its pid file.
func StateFile(cfgName string) string {
	return filepath.Join(PidDir(), "ldirectord."+cfgName+".state")
}

// WriteFileAtomic replaces path with data: a temporary file in the same directory is written, synced and
// renamed over path, so that a reader sees the old content or the whole new one, never a partial file.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// RemoveIfOwned removes path when owned reports that its content belongs to this process, so that a daemon
// that is shutting down never removes the file of the instance that replaced it. A missing file is not an
// error.
func RemoveIfOwned(path string, owned func(data []byte) bool) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !owned(data) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

package uml

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// xstateSource is an LD_PRELOAD shim for the host side of UML. On CPUs with large XSTATE areas (AMX),
// stock UML's PTRACE_SETREGSET(NT_X86_XSTATE) buffer is smaller than the host requires and every guest
// process dies with "ptrace set fp regs failed, errno = 14"; the shim bounces those calls through a
// full-size buffer. It is harmless elsewhere.
//
//go:embed xstate/xstate.c
var xstateSource []byte

// shim returns the path of the compiled shim, building it into the user cache directory when the source
// changed. Builds are atomic, so concurrent test processes do not see half-written files.
func shim() (string, error) {
	sum := sha256.Sum256(xstateSource)
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	so := filepath.Join(dir, "xstate-"+hex.EncodeToString(sum[:8])+".so")
	if _, err := os.Stat(so); err == nil {
		return so, nil
	}
	src, err := os.CreateTemp(dir, "xstate-*.c")
	if err != nil {
		return "", err
	}
	defer os.Remove(src.Name())
	if _, err := src.Write(xstateSource); err != nil {
		src.Close()
		return "", err
	}
	src.Close()
	tmp := so + fmt.Sprintf(".%d-%s.tmp", os.Getpid(), randHex(4)) // unique: machines boot in parallel
	out, err := exec.Command("cc", "-shared", "-fPIC", "-O2", "-o", tmp, src.Name(), "-ldl").CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("uml: build the xstate shim (needs gcc and libc6-dev): %v: %s", err, out)
	}
	if err := os.Rename(tmp, so); err != nil {
		return "", err
	}
	return so, nil
}

func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "ldirectord-uml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("uml: cache directory: %w", err)
	}
	return dir, nil
}

package infra

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = ".."

// tool finds an external checker. Outside CI a missing tool skips the test
// (and says how to get it); under CI=true it fails, so a CI machine without
// it cannot pass silently.
func tool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not on PATH and CI=true: install it (%s)", name, install)
	}
	t.Skipf("%s is not on PATH; skipping (install: %s; under CI=true this fails)", name, install)
	return ""
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Package scripts holds the tests of the shell scripts behind make's targets
// that no other package drives.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A stand-in for the go command that lists one package with one fuzz target
// and fails its fuzz runs as $MODE says: "race" fails the first run the way
// Go's fuzztime deadline race does, "crash" writes a failing input, "always"
// hits the race on every run.
const fakeGo = `#!/bin/sh
case "$1 $2" in
  "list -f") echo "$PKG_DIR"; exit 0 ;;
  "list ./...") echo example.com/pkg; exit 0 ;;
  "test -list") echo FuzzX; exit 0 ;;
esac
n=$(($(cat "$COUNT" 2>/dev/null || echo 0) + 1)); echo $n >"$COUNT"
case "$MODE" in
  race) [ $n -ge 2 ] && exit 0 ;;
  crash) mkdir -p "$PKG_DIR/testdata/fuzz/FuzzX" && echo input >"$PKG_DIR/testdata/fuzz/FuzzX/$n" ;;
  ok) exit 0 ;;
esac
echo "--- FAIL: FuzzX (10.05s)"
echo "    context deadline exceeded"
exit 1
`

func TestFuzzScriptRerunsOnlyGosDeadlineRace(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is not on PATH")
	}
	cases := []struct {
		mode     string
		wantOK   bool
		wantRuns string
	}{
		{"ok", true, "1"},
		{"race", true, "2"},   // the race found nothing: run again, then pass
		{"crash", false, "1"}, // a failing input was written: fail at once
		{"always", false, "3"},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			dir := t.TempDir()
			goPath := filepath.Join(dir, "go")
			if err := os.WriteFile(goPath, []byte(fakeGo), 0o755); err != nil {
				t.Fatal(err)
			}
			count := filepath.Join(dir, "count")
			cmd := exec.Command(bash, "fuzz.sh")
			cmd.Env = append(os.Environ(), "GO="+goPath, "MODE="+c.mode,
				"COUNT="+count, "PKG_DIR="+filepath.Join(dir, "pkg"), "FUZZTIME=1s")
			out, err := cmd.CombinedOutput()
			if (err == nil) != c.wantOK {
				t.Fatalf("fuzz.sh succeeded=%v, want %v:\n%s", err == nil, c.wantOK, out)
			}
			runs, _ := os.ReadFile(count)
			if got := strings.TrimSpace(string(runs)); got != c.wantRuns {
				t.Errorf("fuzz runs = %s, want %s:\n%s", got, c.wantRuns, out)
			}
		})
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/state/filestore"
)

const aacBase = "https://us1.alteryxcloud.com"

func seedEnv(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("ONBOARD_STORE", "file:"+dir)
	t.Setenv("AAC_BASE_URL", aacBase)
	t.Setenv("ONBOARD_CONFIG", "../../testdata/onboard-aac.yaml")
	return dir
}

func runSeed(t *testing.T, in string, args ...string) (int, string, string) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(in)
	t.Cleanup(func() { stdin = old })
	var out, errOut bytes.Buffer
	code := run(append([]string{"aac", "seed-token"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// seed-token stores the pasted token as the chain's head, under the key the
// target reads, and never prints it.
func TestSeedTokenFromStdin(t *testing.T) {
	dir := seedEnv(t)
	const token = "rt-SEEDCHECK-0123456789"
	code, out, errOut := runSeed(t, token+"\n", "--workspace", "Sales Analytics")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out+errOut, token) {
		t.Error("the token was printed")
	}
	if strings.Contains(errOut, "no profile") {
		t.Errorf("warned about a workspace the config names: %s", errOut)
	}
	store, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := store.Get(context.Background(), aac.WorkspaceChainKey(aacBase, "Sales Analytics"))
	if err != nil || !strings.Contains(string(v.Data), token) {
		t.Fatalf("stored head %s, %v; want the token", v.Data, err)
	}

	// Seeding again replaces the head and says what it replaced.
	code, out, _ = runSeed(t, `{"refresh_token":"rt-2","access_token":"x.y.z"}`, "--workspace", "Sales Analytics")
	if code != 0 || !strings.Contains(out, "replaces the head written by seed-token") {
		t.Errorf("second seed: exit %d, %s", code, out)
	}
}

func TestSeedTokenFromFileForTheAccount(t *testing.T) {
	dir := seedEnv(t)
	file := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(file, []byte(`{"access_token":"a.b.c","refresh_token":"rt-acct","expires_in":300}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runSeed(t, "", "--account", "--token-file", file); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	store, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := store.Get(context.Background(), aac.AccountChainKey(aacBase)); err != nil || !strings.Contains(string(v.Data), "rt-acct") {
		t.Fatalf("account head %s, %v", v.Data, err)
	}
}

func TestSeedTokenErrors(t *testing.T) {
	seedEnv(t)
	for _, tc := range []struct {
		name, in string
		args     []string
		want     string
	}{
		{"neither target", "rt", nil, "exactly one of --workspace"},
		{"both targets", "rt", []string{"--workspace", "W", "--account"}, "exactly one of --workspace"},
		{"token as an argument", "", []string{"--workspace", "W", "rt-123"}, "never from the command line"},
		{"empty input", "\n", []string{"--workspace", "W"}, "no refresh token"},
		{"two tokens", "rt-1 rt-2", []string{"--workspace", "W"}, "spaces"},
		{"missing file", "", []string{"--account", "--token-file", "/nonexistent/creds.json"}, "--token-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runSeed(t, tc.in, tc.args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, errOut, tc.want)
			}
		})
	}
	t.Run("unknown workspace is noted", func(t *testing.T) {
		code, _, errOut := runSeed(t, "rt-1", "--workspace", "sales analytics")
		if code != 0 || !strings.Contains(errOut, "no profile") {
			t.Errorf("exit %d, stderr %q; want success with a note", code, errOut)
		}
	})
	t.Run("no AAC_BASE_URL", func(t *testing.T) {
		t.Setenv("AAC_BASE_URL", "")
		if code, _, errOut := runSeed(t, "rt-1", "--account"); code != 2 || !strings.Contains(errOut, "AAC_BASE_URL") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("help", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run([]string{"help", "aac"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "seed-token") {
			t.Errorf("onboard help aac: %d %q", code, out.String())
		}
		if code := run([]string{"aac", "seed-token", "-h"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "Example") {
			t.Errorf("seed-token -h: %d", code)
		}
	})
}

func runAAC(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"aac"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// seededAAC points the environment at a fake AAC whose workspace's chain
// AAC_REFRESH_TOKENS seeds, as a deployment's settings would.
func seededAAC(t *testing.T) (*aactest.Server, aactest.Grant) {
	t.Helper()
	seedEnv(t)
	fake := aactest.NewTestServer(t, aactest.Options{})
	grant := fake.NewWorkspaceGrant(fake.AddWorkspace("Sales Analytics", "Auto Insights Creator", "Auto Insights Viewer"))
	t.Setenv("AAC_BASE_URL", fake.URL)
	t.Setenv("AAC_TOKEN_URL", fake.TokenURL())
	t.Setenv("AAC_CLIENT_ID", fake.ClientID())
	t.Setenv("AAC_REFRESH_TOKENS", `{"Sales Analytics":"`+grant.RefreshToken+`"}`)
	return fake, grant
}

// status shows a seeded chain without calling AAC; keep-alive starts and
// rotates it, then leaves it alone while it is recent; no token is printed.
func TestAACStatusAndKeepAlive(t *testing.T) {
	fake, _ := seededAAC(t)

	code, out, errOut := runAAC(t, "status")
	if code != 0 || !regexp.MustCompile(`AAC workspace "Sales Analytics"\s+none\s+-\s+-\s+yes`).MatchString(out) {
		t.Fatalf("status before any use: exit %d\n%s%s", code, out, errOut)
	}
	if n := len(fake.Requests("")); n != 0 {
		t.Fatalf("status made %d calls to AAC", n)
	}

	code, out, errOut = runAAC(t, "keep-alive")
	if code != 0 || !strings.Contains(out, "rotated") {
		t.Fatalf("keep-alive: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runAAC(t, "status")
	if code != 0 || !regexp.MustCompile(`AAC workspace "Sales Analytics"\s+refresh\s+\d+s ago .*valid until`).MatchString(out) {
		t.Fatalf("status after keep-alive: exit %d\n%s", code, out)
	}
	code, out, _ = runAAC(t, "keep-alive")
	if code != 0 || !strings.Contains(out, "recent") || len(fake.Refreshes()) != 1 {
		t.Fatalf("second keep-alive: exit %d, %d refreshes\n%s", code, len(fake.Refreshes()), out)
	}
	code, out, _ = runAAC(t, "keep-alive", "--max-idle", "0")
	if code != 0 || !strings.Contains(out, "rotated") || len(fake.Refreshes()) != 2 {
		t.Fatalf("forced keep-alive: exit %d, %d refreshes\n%s", code, len(fake.Refreshes()), out)
	}
	for _, r := range fake.Refreshes() {
		if strings.Contains(out, r.Presented) || strings.Contains(out, r.Issued) {
			t.Fatal("a refresh token was printed")
		}
	}
	if code, _, errOut := runAAC(t, "keep-alive", "--max-idle", "-1h"); code != 2 || !strings.Contains(errOut, "negative") {
		t.Errorf("negative --max-idle: exit %d %s", code, errOut)
	}
	t.Setenv("AAC_BASE_URL", "")
	if code, _, errOut := runAAC(t, "status"); code != 2 || !strings.Contains(errOut, "AAC_BASE_URL is not set") {
		t.Errorf("without AAC_BASE_URL: exit %d %s", code, errOut)
	}
}

// seed-token checks AAC_BASE_URL as the deployment does: a value the
// deployment would refuse would store the chain where nothing reads it.
func TestSeedTokenRefusesABaseURLTheDeploymentWould(t *testing.T) {
	dir := seedEnv(t)
	t.Setenv("AAC_BASE_URL", "us1.alteryxcloud.com/v4")
	code, out, errOut := runSeed(t, "rt-SEEDURL-1\n", "--workspace", "Sales Analytics")
	if code != 2 || !strings.Contains(errOut, "AAC_BASE_URL") || strings.Contains(out+errOut, "rt-SEEDURL-1") {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("a refused seed-token touched the store: %v", entries)
	}
}

// Every scheduled task runs through one generic command, needing only the
// settings of the target that owns it (here no Looker settings at all).
func TestTaskCommand(t *testing.T) {
	fake, grant := seededAAC(t)
	t.Setenv("LOOKERSDK_BASE_URL", "")

	var out, errOut bytes.Buffer
	if code := run([]string{"task", "list"}, &out, &errOut); code != 0 || strings.TrimSpace(out.String()) != aac.TaskKeepAlive {
		t.Fatalf("task list: exit %d %q %s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"task", "run", aac.TaskKeepAlive}, &out, &errOut); code != 0 || len(fake.Refreshes()) != 1 {
		t.Fatalf("task run: exit %d, %d refreshes\n%s", code, len(fake.Refreshes()), errOut.String())
	}
	if strings.Contains(errOut.String(), grant.RefreshToken) || strings.Contains(errOut.String(), fake.Refreshes()[0].Issued) {
		t.Error("a refresh token reached the log")
	}
	errOut.Reset()
	if code := run([]string{"task", "run", "defrag"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "known tasks: "+aac.TaskKeepAlive) {
		t.Errorf("unknown task: exit %d %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"task"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "onboard task run NAME") {
		t.Errorf("no subcommand: exit %d %s", code, errOut.String())
	}
}

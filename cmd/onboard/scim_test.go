package main

import (
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// make run says how to point an IdP at the sandbox, and its curl line
// creates a SCIM user whom onboard provisions into the fake Looker;
// onboard scim users then lists them.
func TestServeSandboxPrintsAWorkingSCIMLine(t *testing.T) {
	bin, dir, port := buildCLI(t), t.TempDir(), freePort(t)
	s := startServeWith(t, bin, dir, nil, "PORT="+port)
	line := regexp.MustCompile(`SCIM \(Okta, Microsoft Entra ID\): base URL (\S+), bearer token (\S+), e\.g\.\n\s+curl -sS (\S+) -H 'Content-Type: application/scim\+json' -H "Authorization: Bearer ([^"]+)" \\\n\s+--data '([^']+)'`).FindStringSubmatch(s.banner)
	if line == nil || line[1] != "http://127.0.0.1:"+port+"/scim/v2" || line[2] != line[4] || line[3] != line[1]+"/Users" {
		t.Fatalf("no working SCIM lines in the banner:\n%s", s.banner)
	}
	req, _ := http.NewRequest(http.MethodPost, line[3], strings.NewReader(line[5]))
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("Authorization", "Bearer "+line[4])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("the banner's SCIM curl line: %d\n%s", res.StatusCode, s.stderr)
	}
	s.stop()
	cmd := exec.Command(bin, "scim", "users")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "ONBOARD_CONFIG="+absPath(t, "../../testdata/onboard.yaml"))
	out, err := cmd.CombinedOutput()
	if flat := strings.Join(strings.Fields(string(out)), " "); err != nil || !strings.Contains(flat, "grace@example.com") || !strings.Contains(flat, "true - grace@example.com analyst") {
		t.Fatalf("onboard scim users: %v\n%s", err, out)
	}
	if strings.Contains(string(out), line[4]) {
		t.Error("the SCIM token reached the listing")
	}
	_ = os.Remove(dir)
}

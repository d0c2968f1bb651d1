package infra

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/deploy/*.golden from the scripts' current DRY_RUN=1 output")

// The cloud and build tools the scripts call. In these tests each is a stub
// that records its arguments and fails, so a dry run that executes anything
// is caught, and no real CLI, login or network is ever involved.
var stubbed = []string{"aws", "gcloud", "terraform", "make", "go", "git", "zip", "curl"}

// scriptEnv is a sandbox for running a deploy script: PATH holds only the
// stubs and the few coreutils the scripts use, and the environment holds only
// what a case sets, so the output cannot depend on the machine.
type scriptEnv struct {
	bash, path, log, home string
}

func newScriptEnv(t *testing.T) *scriptEnv {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not on PATH")
	}
	dir := t.TempDir()
	stubs, tools := filepath.Join(dir, "stubs"), filepath.Join(dir, "tools")
	for _, d := range []string{stubs, tools} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(dir, "stub.log")
	for _, name := range stubbed {
		stub := "#!/bin/sh\necho \"" + name + " $*\" >>\"$STUB_LOG\"\n[ \"$STUB_OK\" = 1 ] && exit 0\nexit 97\n"
		if err := os.WriteFile(filepath.Join(stubs, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"dirname", "cat", "tr", "sed", "sort"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s is not on PATH", name)
		}
		if err := os.Symlink(p, filepath.Join(tools, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The real CLI: the scripts ask it what the policy needs, a read that
	// DRY_RUN runs too.
	if err := os.Symlink(onboardCLI(t), filepath.Join(tools, "onboard")); err != nil {
		t.Fatal(err)
	}
	return &scriptEnv{bash: bash, path: stubs + string(os.PathListSeparator) + tools, log: log, home: dir}
}

var cli struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// onboardCLI builds cmd/onboard once per test binary.
func onboardCLI(t *testing.T) string {
	t.Helper()
	cli.once.Do(func() {
		dir, err := os.MkdirTemp("", "onboard-cli")
		if err != nil {
			cli.err = err
			return
		}
		cli.path = filepath.Join(dir, "onboard")
		build := exec.Command("go", "build", "-o", cli.path, "./cmd/onboard")
		build.Dir = repoRoot
		cli.out, cli.err = build.CombinedOutput()
	})
	if cli.err != nil {
		t.Fatalf("building the CLI: %v\n%s", cli.err, cli.out)
	}
	return cli.path
}

// run runs scripts/<script> from the repository root with only env set.
func (s *scriptEnv) run(t *testing.T, script string, env ...string) (out string, err error, stubCalls string) {
	t.Helper()
	_ = os.Remove(s.log)
	cmd := exec.Command(s.bash, filepath.Join("scripts", script))
	cmd.Dir = repoRoot
	cmd.Env = append([]string{"PATH=" + s.path, "HOME=" + s.home, "STUB_LOG=" + s.log, "LC_ALL=C"}, env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf // one pipe: the order is kept
	err = cmd.Run()
	calls, _ := os.ReadFile(s.log)
	return buf.String(), err, string(calls)
}

var (
	gcpEnv = []string{"GCP_PROJECT=demo-project", "GCP_REGION=europe-west1"}
	awsEnv = []string{"AWS_REGION=eu-west-1", "AWS_ACCOUNT_ID=123456789012"}
	appEnv = []string{"LOOKERSDK_BASE_URL=https://acme.cloud.looker.com", "ONBOARD_CONFIG=testdata/onboard.yaml",
		"ALERT_EMAIL=data-team@example.com"}
)

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// TestDeployDryRunGolden pins what each command would do: DRY_RUN=1 output
// equals testdata/deploy/<script>.golden, and nothing was executed.
func TestDeployDryRunGolden(t *testing.T) {
	s := newScriptEnv(t)
	cases := map[string][]string{
		"deploy-gcp.sh":  concat(gcpEnv, appEnv),
		"destroy-gcp.sh": gcpEnv,
		"deploy-aws.sh":  concat(awsEnv, appEnv),
		"destroy-aws.sh": awsEnv,
	}
	for script, env := range cases {
		t.Run(script, func(t *testing.T) {
			out, err, calls := s.run(t, script, append(env, "DRY_RUN=1")...)
			if err != nil {
				t.Fatalf("DRY_RUN=1 %s: %v\n%s", script, err, out)
			}
			if calls != "" {
				t.Errorf("DRY_RUN=1 executed commands instead of printing them:\n%s", calls)
			}
			golden := filepath.Join(repoRoot, "testdata", "deploy", strings.TrimSuffix(script, ".sh")+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./infra -run TestDeployDryRunGolden -update writes it)", err)
			}
			if out != string(want) {
				t.Errorf("DRY_RUN=1 %s output differs from %s (if the change is intended: go test ./infra -run TestDeployDryRunGolden -update)\n%s",
					script, golden, lineDiff(string(want), out))
			}
		})
	}
}

// TestDeployDryRunCoversTheIssue: the dry runs show the steps the issue asks
// for, so a golden file regenerated carelessly cannot drop one.
func TestDeployDryRunCoversTheIssue(t *testing.T) {
	s := newScriptEnv(t)
	checks := map[string][]string{
		"deploy-gcp.sh": {
			"+ make build",
			"+ terraform -chdir=infra/gcp init -input=false",
			"+ terraform -chdir=infra/gcp apply -input=false -auto-approve -var project=demo-project -var region=europe-west1",
			"+ terraform -chdir=infra/gcp output -raw http_url",
			"gcloud secrets versions add ONBOARD_WEBHOOK_SECRET --project demo-project --data-file=-",
			"gcloud pubsub topics publish onboard-provision",
			"curl -sS <http_url>/healthz",
		},
		"deploy-aws.sh": {
			"+ make build",
			"+ aws cloudformation package --region eu-west-1 --template-file dist/aws/template.yaml",
			"+ aws cloudformation deploy --region eu-west-1 --stack-name onboard",
			"--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND",
			"aws secretsmanager put-secret-value --region eu-west-1 --secret-id <SecretArn>",
			"aws sqs send-message --region eu-west-1 --queue-url <QueueUrl>",
			"curl -sS <ApiUrl>/healthz",
		},
		"destroy-gcp.sh": {"This removes", "It keeps", "+ terraform -chdir=infra/gcp destroy", "FORCE=1"},
		"destroy-aws.sh": {"This deletes", "It keeps", "+ aws cloudformation delete-stack --region eu-west-1 --stack-name onboard", "FORCE=1"},
	}
	env := map[string][]string{
		"deploy-gcp.sh": concat(gcpEnv, appEnv), "destroy-gcp.sh": gcpEnv,
		"deploy-aws.sh": concat(awsEnv, appEnv), "destroy-aws.sh": awsEnv,
	}
	for script, wants := range checks {
		out, err, _ := s.run(t, script, append(env[script], "DRY_RUN=1")...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("DRY_RUN=1 %s does not show %q", script, w)
			}
		}
	}
}

// TestDeployScriptErrors: missing prerequisites stop the scripts with a
// message that says what to do, before anything is built or deployed.
func TestDeployScriptErrors(t *testing.T) {
	s := newScriptEnv(t)
	cases := []struct {
		name, script string
		env          []string
		want         string
	}{
		{"gcp without project", "deploy-gcp.sh", concat([]string{"GCP_REGION=europe-west1", "DRY_RUN=1"}, appEnv), "set GCP_PROJECT="},
		{"gcp without region", "deploy-gcp.sh", concat([]string{"GCP_PROJECT=p1", "DRY_RUN=1"}, appEnv), "set GCP_REGION="},
		{"gcp without Looker", "deploy-gcp.sh", concat(gcpEnv, []string{"DRY_RUN=1", "ONBOARD_CONFIG=testdata/onboard.yaml"}), "LOOKERSDK_BASE_URL is not set"},
		{"gcp with http Looker", "deploy-gcp.sh", concat(gcpEnv, []string{"DRY_RUN=1", "LOOKERSDK_BASE_URL=http://x", "ONBOARD_CONFIG=testdata/onboard.yaml"}), "must start with https://"},
		{"gcp without policy", "deploy-gcp.sh", concat(gcpEnv, []string{"DRY_RUN=1", "LOOKERSDK_BASE_URL=https://x", "ONBOARD_CONFIG=missing.yaml"}), "policy file missing.yaml not found"},
		{"gcp bad name", "deploy-gcp.sh", concat(gcpEnv, appEnv, []string{"DRY_RUN=1", "ONBOARD_NAME=Bad_Name"}), "ONBOARD_NAME=Bad_Name"},
		{"gcp not logged in", "deploy-gcp.sh", concat(gcpEnv, appEnv), "gcloud is not logged in"},
		{"aws without region", "deploy-aws.sh", concat([]string{"DRY_RUN=1"}, appEnv), "set AWS_REGION="},
		{"aws not logged in", "deploy-aws.sh", concat(awsEnv, appEnv), "aws has no working credentials"},
		{"gcp destroy unconfirmed", "destroy-gcp.sh", concat(gcpEnv, []string{"STUB_OK=1"}), "refusing to destroy without confirmation"},
		{"aws destroy unconfirmed", "destroy-aws.sh", concat(awsEnv, []string{"STUB_OK=1"}), "refusing to destroy without confirmation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err, calls := s.run(t, c.script, c.env...)
			if err == nil {
				t.Fatalf("%s succeeded; want an error containing %q\n%s", c.script, c.want, out)
			}
			if !strings.Contains(out, "error: ") || !strings.Contains(out, c.want) {
				t.Errorf("%s: want an error containing %q, got:\n%s", c.script, c.want, out)
			}
			for _, bad := range []string{"make build", "terraform", "cloudformation deploy", "delete-stack"} {
				if strings.Contains(calls, bad) {
					t.Errorf("%s ran %q before stopping:\n%s", c.script, bad, calls)
				}
			}
		})
	}
}

// TestMakefileTargets: the make targets exist, are documented in make help
// and run the scripts.
func TestMakefileTargets(t *testing.T) {
	mk := readRepoFile(t, "Makefile")
	for _, target := range []string{"deploy-gcp", "deploy-aws", "destroy-gcp", "destroy-aws"} {
		re := regexp.MustCompile(`(?m)^` + target + `:[^\n]*## .+\n\t[^\n]*scripts/` + target + `\.sh`)
		if !re.MatchString(mk) {
			t.Errorf("Makefile: want a %q target with a ## help comment running scripts/%s.sh", target, target)
		}
	}
}

// lineDiff shows the first lines that differ, enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 12; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

// A deployment needs only the settings of the targets its policy uses: a
// Periscope-only or AAC-only policy deploys with no LOOKERSDK_* set, and a
// policy that uses Looker without LOOKERSDK_BASE_URL is refused, naming it.
func TestDeployNeedsOnlyTheTargetsThePolicyUses(t *testing.T) {
	s := newScriptEnv(t)
	for _, script := range []string{"deploy-gcp.sh", "deploy-aws.sh"} {
		cloud := gcpEnv
		if script == "deploy-aws.sh" {
			cloud = awsEnv
		}
		for _, policy := range []string{"testdata/deploy/periscope-only.yaml", "testdata/deploy/aac-only.yaml"} {
			out, err, _ := s.run(t, script, append(cloud, "DRY_RUN=1", "ONBOARD_CONFIG="+policy, "AAC_BASE_URL=https://us1.alteryxcloud.com")...)
			if err != nil || strings.Contains(out, "LOOKERSDK") {
				t.Errorf("%s with %s and no LOOKERSDK_*: %v\n%s", script, policy, err, out)
			}
		}
		out, err, _ := s.run(t, script, append(cloud, "DRY_RUN=1", "ONBOARD_CONFIG=testdata/onboard.yaml")...)
		if err == nil || !strings.Contains(out, "LOOKERSDK_BASE_URL is not set: looker (profiles") {
			t.Errorf("%s with a Looker policy and no LOOKERSDK_BASE_URL: %v\n%s", script, err, out)
		}
		out, err, _ = s.run(t, script, append(cloud, "DRY_RUN=1", "ONBOARD_CONFIG=testdata/deploy/aac-only.yaml")...)
		if err == nil || !strings.Contains(out, "AAC_BASE_URL is not set") {
			t.Errorf("%s with an AAC policy and no AAC_BASE_URL: %v\n%s", script, err, out)
		}
	}
}

// TestDeployDryRunSheets: a policy polling Google Sheets deploys a schedule
// per sheet, shown before anything is applied, and ends by saying whom to
// share each sheet with, once per spreadsheet however many of its tabs are
// polled. A policy polling none says so and asks for no sharing.
func TestDeployDryRunSheets(t *testing.T) {
	s := newScriptEnv(t)
	const (
		sheetA = "  https://docs.google.com/spreadsheets/d/1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789/edit\n"
		sheetB = "  https://docs.google.com/spreadsheets/d/1ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210/edit\n"
	)
	// Both clouds show the schedules, and end with the sheets to share.
	shared := []string{
		"  sheets-poll:1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789/Form Responses 1 every 5m\n",
		"  sheets-poll:1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789/It's late every 1h\n",
		"  sheets-poll:1ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210 every 10m\n",
		sheetA + sheetB,
	}
	cases := []struct {
		script string
		env    []string
		wants  []string
	}{
		{"deploy-gcp.sh", gcpEnv, []string{
			"ONBOARD_CONFIG=testdata/deploy/sheets.yaml bin/onboard task list --json",
			"-var-file=../../dist/gcp/policy-tasks.tfvars.json",
			"+ terraform -chdir=infra/gcp output -raw function_service_account\n",
			"reads and writes each polled sheet as <function_service_account>.\nShare each with that address as Editor",
		}},
		{"deploy-aws.sh", awsEnv, []string{
			"ONBOARD_CONFIG=testdata/deploy/sheets.yaml bin/onboard task list --json | go run ./infra/aws/schedules infra/aws/template.yaml >dist/aws/template.yaml",
			"--template-file dist/aws/template.yaml",
			"Keys this policy needs: ONBOARD_WEBHOOK_SECRET ONBOARD_SCIM_TOKEN PERISCOPE_SITES GOOGLE_SHEETS_CREDENTIALS\n",
			"in the secret under\nGOOGLE_SHEETS_CREDENTIALS, and share each sheet with the key's client_email as Editor",
		}},
	}
	for _, c := range cases {
		t.Run(c.script, func(t *testing.T) {
			out, err, _ := s.run(t, c.script, append(c.env, "DRY_RUN=1", "ONBOARD_CONFIG=testdata/deploy/sheets.yaml")...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range append(c.wants, shared...) {
				if !strings.Contains(out, w) {
					t.Errorf("DRY_RUN=1 %s with sheets does not show %q:\n%s", c.script, w, out)
				}
			}
			if n := strings.Count(out, sheetA); n != 1 {
				t.Errorf("the spreadsheet polled twice is listed %d times, want once", n)
			}

			out, err, _ = s.run(t, c.script, append(c.env, "DRY_RUN=1", "ONBOARD_CONFIG=testdata/deploy/periscope-only.yaml")...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "none: the policy polls no Google Sheet") || strings.Contains(out, "docs.google.com") || strings.Contains(out, "Share each") {
				t.Errorf("DRY_RUN=1 %s without sheets:\n%s", c.script, out)
			}
		})
	}
}

// runScriptLine runs, for real, the line of a deploy script that writes
// file from `onboard task list --json`: found in its DRY_RUN=1 output, with
// the CLI built here for make build's and the file written to instead. It
// returns that output, for what the rest of the deploy would do with file.
func runScriptLine(t *testing.T, script string, env []string, file, to string) (dryRun string) {
	t.Helper()
	out, err, _ := newScriptEnv(t).run(t, script, append(env, "DRY_RUN=1")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var line string
	for l := range strings.Lines(out) {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "+ ") && strings.Contains(l, "bin/onboard task list --json") && strings.HasSuffix(l, ">"+file) {
			line = strings.TrimPrefix(l, "+ ")
		}
	}
	if line == "" {
		t.Fatalf("%s does not write %s from onboard task list --json:\n%s", script, file, out)
	}
	line = strings.ReplaceAll(line, "bin/onboard", onboardCLI(t))
	line = strings.ReplaceAll(line, file, to)
	sh := exec.Command("bash", "-euo", "pipefail", "-c", line)
	sh.Dir = repoRoot
	if msg, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, msg)
	}
	return out
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The sandbox's fakes: a deployed function never starts one.
var fakes = []string{
	"github.com/onboard-dev/onboard/core/looker/lookertest", "github.com/onboard-dev/onboard/core/aac/aactest",
	"github.com/onboard-dev/onboard/core/periscope/periscopetest", "github.com/onboard-dev/onboard/core/sendgrid/sendgridtest",
	"github.com/onboard-dev/onboard/core/sheets/sheetstest",
}

// Each platform's build must link only its own cloud's SDKs: the other
// cloud's would add megabytes, cold-start time and an attack surface for
// nothing. The one Google library an AWS build may link is the Sheets
// client, in the function that polls sheets alone, so the webhook's cold
// starts do not pay for it. The check runs for the target platforms, with
// the release tags.
func TestBuildSeparation(t *testing.T) {
	lambdaEnv, lambdaTags := []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"}, "lambda.norpc,onboard_nofakes"
	cases := []struct {
		name      string
		pkg       string
		env       []string
		tags      string
		forbidden []string
		required  []string
	}{
		{
			name: "Lambda bootstrap", pkg: "github.com/onboard-dev/onboard/functions/aws", env: lambdaEnv, tags: lambdaTags,
			forbidden: append([]string{"cloud.google.com/", "github.com/GoogleCloudPlatform/", "google.golang.org/",
				"golang.org/x/oauth2/google", "github.com/google/s2a-go", "github.com/onboard-dev/onboard/core/sheets/gsheets"}, fakes...),
		},
		{
			name: "Lambda sheets bootstrap", pkg: "github.com/onboard-dev/onboard/functions/aws/sheets", env: lambdaEnv, tags: lambdaTags,
			forbidden: append([]string{"cloud.google.com/go/firestore", "cloud.google.com/go/secretmanager", "cloud.google.com/go/pubsub",
				"github.com/GoogleCloudPlatform/", "github.com/cloudevents/"}, fakes...),
			required: []string{"google.golang.org/api/sheets/v4", "github.com/onboard-dev/onboard/core/state/dynamostore",
				"github.com/onboard-dev/onboard/core/secrets/awssecrets"},
		},
		{
			name: "Cloud Function (module root)", pkg: "github.com/onboard-dev/onboard",
			env:       []string{"GOOS=linux", "GOARCH=amd64"},
			forbidden: []string{"github.com/aws/", "github.com/awslabs/"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			imports := listDeps(t, c.pkg, c.tags, c.env)
			if _, ok := imports[c.pkg]; !ok {
				t.Fatalf("go list did not report %s itself", c.pkg)
			}
			for p := range imports {
				for _, prefix := range c.forbidden {
					if strings.HasPrefix(p, prefix) {
						t.Errorf("%s links %s through %s", c.pkg, p, strings.Join(importChain(imports, c.pkg, p), " -> "))
					}
				}
			}
			for _, p := range c.required {
				if _, ok := imports[p]; !ok {
					t.Errorf("%s does not link %s", c.pkg, p)
				}
			}
		})
	}
}

// listDeps returns every package pkg links, each with its direct imports.
func listDeps(t *testing.T, pkg, tags string, env []string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-tags="+tags, "-json=ImportPath,Imports", pkg)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	imports := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		imports[p.ImportPath] = p.Imports
	}
	return imports
}

// importChain is a shortest import path from root to target, so a failure
// names the package that brings the other cloud in.
func importChain(imports map[string][]string, root, target string) []string {
	parent := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == target {
			var chain []string
			for ; p != ""; p = parent[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, next := range imports[p] {
			if _, seen := parent[next]; !seen {
				parent[next] = p
				queue = append(queue, next)
			}
		}
	}
	return []string{root, "?", target}
}

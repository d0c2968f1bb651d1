package main

import (
	"strings"
	"testing"
)

const template = `Resources:
  SheetsPollFunction:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt SheetsPollRole.Arn
`

func TestRender(t *testing.T) {
	out, err := render([]byte(template), strings.NewReader(`[{"name":"aac-keep-alive"},
		{"name":"sheets-poll:1AbCdEfGhIjK/Tab \"A\": yes","every":"5m","rate":"rate(5 minutes)"}]`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Role: !GetAtt SheetsPollRole.Arn", // CloudFormation's tags survive
		"      Events:\n        Poll",
		`Input: '{"onboard_task":"sheets-poll:1AbCdEfGhIjK/Tab \"A\": yes"}'`,
		"Schedule: rate(5 minutes)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered template lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "aac-keep-alive") {
		t.Errorf("a task without a rate got a schedule:\n%s", out)
	}

	none, err := render([]byte(template), strings.NewReader(`[{"name":"aac-keep-alive"}]`))
	if err != nil || strings.Contains(string(none), "Events") {
		t.Errorf("a policy polling no sheet: %v\n%s", err, none)
	}
}

func TestRenderRefuses(t *testing.T) {
	for name, c := range map[string]struct{ template, list, says string }{
		"a scheduled task no function runs": {template, `[{"name":"crm-poll:x","rate":"rate(5 minutes)"}]`, `task "crm-poll:x", which no function`},
		"a rate that is not one":            {template, `[{"name":"sheets-poll:x","rate":"*/5 * * * *"}]`, "not an EventBridge rate"},
		"events in the template":            {template + "      Events: {}\n", `[]`, "has Events of its own"},
		"no poll function":                  {"Resources: {}\n", `[]`, "no Resources.SheetsPollFunction.Properties"},
		"not the task list":                 {template, `{"name":"x"}`, "reading onboard task list --json"},
	} {
		if _, err := render([]byte(c.template), strings.NewReader(c.list)); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.says)
		}
	}
}

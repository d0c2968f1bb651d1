package infra

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/aac"

	"gopkg.in/yaml.v3"
)

const samTemplate = "aws/template.yaml"

// Actions that AWS does not let a policy scope to a resource, so "*" is the
// only possible Resource for them. Any other action on "*" fails the test.
var unscopableActions = []string{
	"xray:PutTraceSegments",
	"xray:PutTelemetryRecords",
	"cloudwatch:PutMetricData",
	"ec2:CreateNetworkInterface",
	"ec2:DescribeNetworkInterfaces",
	"ec2:DeleteNetworkInterface",
	"ec2:AssignPrivateIpAddresses",
	"ec2:UnassignPrivateIpAddresses",
}

func TestCfnLint(t *testing.T) {
	cfnLint(t, samTemplate)
}

func cfnLint(t *testing.T, template string) {
	t.Helper()
	lint := tool(t, "cfn-lint", "pip install cfn-lint")
	cmd := exec.Command(lint, "--", template)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint %s: %v\n%s", template, err, out)
	}
}

// samDoc is the template as a yaml.Node tree: CloudFormation's short tags
// (!Ref, !GetAtt, !Sub, ...) stay as node tags instead of failing a decode.
type samDoc struct {
	resources map[string]*yaml.Node // logical ID -> resource mapping
	root      *yaml.Node
}

func loadSAM(t *testing.T) *samDoc {
	t.Helper()
	return loadSAMFile(t, filepath.FromSlash(samTemplate))
}

func loadSAMFile(t *testing.T, path string) *samDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return newSAMDoc(t, doc.Content[0])
}

func newSAMDoc(t *testing.T, root *yaml.Node) *samDoc {
	t.Helper()
	s := &samDoc{resources: map[string]*yaml.Node{}, root: root}
	res := get(root, "Resources")
	if res == nil {
		t.Fatal("no Resources")
	}
	for i := 0; i+1 < len(res.Content); i += 2 {
		s.resources[res.Content[i].Value] = res.Content[i+1]
	}
	return s
}

// deployed is the stack CloudFormation makes of the template given params
// (the other parameters at their Default): only the resources and outputs
// whose Condition holds, every !If replaced by its branch, and a branch of
// !Ref AWS::NoValue leaving its key out. A test of what a stack has must
// look here: the template itself holds every resource, wanted or not.
func (s *samDoc) deployed(t *testing.T, params map[string]string) *samDoc {
	t.Helper()
	value := func(n *yaml.Node) string {
		if n.Tag != "!Ref" {
			return scalar(n)
		}
		if v, ok := params[n.Value]; ok {
			return v
		}
		def := get(s.root, "Parameters", n.Value, "Default")
		if def == nil {
			t.Fatalf("!Ref %s: not a parameter with a Default", n.Value)
		}
		return def.Value
	}
	conds := map[string]bool{}
	var holds func(name string) bool
	var eval func(n *yaml.Node) bool
	holds = func(name string) bool {
		if v, ok := conds[name]; ok {
			return v
		}
		n := get(s.root, "Conditions", name)
		if n == nil {
			t.Fatalf("no condition %s", name)
		}
		conds[name] = eval(n)
		return conds[name]
	}
	eval = func(n *yaml.Node) bool {
		switch {
		case n.Tag == "!Equals" && len(n.Content) == 2:
			return value(n.Content[0]) == value(n.Content[1])
		case n.Tag == "!Not" && len(n.Content) == 1:
			return !eval(n.Content[0])
		case n.Tag == "!And", n.Tag == "!Or":
			some, all := false, true
			for _, c := range n.Content {
				v := eval(c)
				some, all = some || v, all && v
			}
			return n.Tag == "!And" && all || n.Tag == "!Or" && some
		case n.Tag == "!Condition":
			return holds(n.Value)
		}
		t.Fatalf("line %d: a condition this test cannot evaluate (%s)", n.Line, n.Tag)
		return false
	}
	// resolve copies n as deployed; nil for AWS::NoValue.
	var resolve func(n *yaml.Node) *yaml.Node
	resolve = func(n *yaml.Node) *yaml.Node {
		switch {
		case n.Tag == "!Ref" && n.Value == "AWS::NoValue":
			return nil
		case n.Tag == "!If" && len(n.Content) == 3:
			if holds(n.Content[0].Value) {
				return resolve(n.Content[1])
			}
			return resolve(n.Content[2])
		}
		c := *n
		c.Content = nil
		for i := 0; i < len(n.Content); i++ {
			if n.Kind == yaml.MappingNode {
				if v := resolve(n.Content[i+1]); v != nil {
					c.Content = append(c.Content, n.Content[i], v)
				}
				i++
			} else if v := resolve(n.Content[i]); v != nil {
				c.Content = append(c.Content, v)
			}
		}
		return &c
	}
	root := resolve(s.root)
	for _, section := range []string{"Resources", "Outputs"} {
		m := get(root, section)
		if m == nil {
			continue
		}
		kept := m.Content[:0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if c := get(m.Content[i+1], "Condition"); c == nil || holds(c.Value) {
				kept = append(kept, m.Content[i], m.Content[i+1])
			}
		}
		m.Content = kept
	}
	return newSAMDoc(t, root)
}

// dangling is every logical ID that n refers to (!Ref, !GetAtt, ${X} in
// !Sub) and that is neither a resource of the stack nor a parameter nor a
// pseudo parameter: references that would fail the deploy.
func (s *samDoc) dangling(n *yaml.Node) []string {
	var ids []string
	switch n.Tag {
	case "!Ref", "!GetAtt":
		ids = append(ids, target(n))
	case "!Sub":
		for _, m := range regexp.MustCompile(`\$\{([A-Za-z0-9:]+)`).FindAllStringSubmatch(scalar(n), -1) {
			ids = append(ids, m[1])
		}
	}
	var bad []string
	for _, id := range ids {
		if s.resources[id] == nil && get(s.root, "Parameters", id) == nil && !strings.HasPrefix(id, "AWS::") {
			bad = append(bad, id)
		}
	}
	for _, c := range n.Content {
		bad = append(bad, s.dangling(c)...)
	}
	return bad
}

// get walks mapping keys; nil when a key is absent.
func get(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// items is a sequence's elements, or the node itself when it is a scalar
// (IAM accepts both for Action and Resource).
func items(n *yaml.Node) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.SequenceNode {
		return n.Content
	}
	return []*yaml.Node{n}
}

// target is the logical ID an intrinsic refers to: !Ref X, !GetAtt X.Attr,
// {Ref: X}, {Fn::GetAtt: [X, Attr]}.
func target(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	switch {
	case n.Tag == "!Ref":
		return n.Value
	case n.Tag == "!GetAtt" && n.Kind == yaml.ScalarNode:
		id, _, _ := strings.Cut(n.Value, ".")
		return id
	case n.Tag == "!GetAtt" && n.Kind == yaml.SequenceNode && len(n.Content) > 0:
		return n.Content[0].Value
	}
	if r := get(n, "Ref"); r != nil {
		return r.Value
	}
	if g := get(n, "Fn::GetAtt"); g != nil {
		if g.Kind == yaml.SequenceNode && len(g.Content) > 0 {
			return g.Content[0].Value
		}
		id, _, _ := strings.Cut(g.Value, ".")
		return id
	}
	return ""
}

func (s *samDoc) typeOf(id string) string { return scalar(get(s.resources[id], "Type")) }

func (s *samDoc) ofType(typ string) []string {
	var ids []string
	for id, r := range s.resources {
		if scalar(get(r, "Type")) == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (s *samDoc) prop(id string, path ...string) *yaml.Node {
	return get(s.resources[id], append([]string{"Properties"}, path...)...)
}

// number reads a literal or a !Ref to a parameter's Default.
func (s *samDoc) number(n *yaml.Node) (int, bool) {
	if id := target(n); id != "" {
		n = get(s.root, "Parameters", id, "Default")
	}
	v, err := strconv.Atoi(scalar(n))
	return v, err == nil
}

// The template's two functions: the webhook and queue function, which links
// no Google library, and the Google Sheets poller.
const (
	webhookFunction = "ProvisionFunction"
	pollFunction    = "SheetsPollFunction"
)

// sheetPollsParameter is "true" for a stack with the poller.
const sheetPollsParameter = "SheetPolls"

// The poller and everything only it needs: a stack has all of them or none.
var (
	pollerResources = []string{pollFunction, "SheetsPollErrorsAlarm", "SheetsPollLogGroup", "SheetsPollRole"}
	pollerOutput    = "SheetsPollFunctionName"
)

// function is the webhook and queue function.
func (s *samDoc) function(t *testing.T) string {
	t.Helper()
	if fns := s.ofType("AWS::Serverless::Function"); !slices.Equal(fns, []string{webhookFunction, pollFunction}) {
		t.Fatalf("want the functions %s and %s, got %v", webhookFunction, pollFunction, fns)
	}
	return webhookFunction
}

// fnProp is a function's property, or else the one Globals gives every
// function, as SAM applies them.
func (s *samDoc) fnProp(id string, path ...string) *yaml.Node {
	if n := s.prop(id, path...); n != nil {
		return n
	}
	return get(s.root, append([]string{"Globals", "Function"}, path...)...)
}

// fnEnv is a function's environment: Globals' variables, then its own.
func (s *samDoc) fnEnv(id string) map[string]*yaml.Node {
	env := map[string]*yaml.Node{}
	for _, vars := range []*yaml.Node{get(s.root, "Globals", "Function", "Environment", "Variables"), s.prop(id, "Environment", "Variables")} {
		for i := 0; vars != nil && i+1 < len(vars.Content); i += 2 {
			env[vars.Content[i].Value] = vars.Content[i+1]
		}
	}
	return env
}

// TestSAMFunction: each bootstrap on arm64 al2023, from the zip the build
// makes of its package, with its own role, its own log group and the
// settings the code reads.
func TestSAMFunction(t *testing.T) {
	s := loadSAM(t)
	s.function(t)
	build, deploy := readRepoFile(t, "scripts/build-aws.sh"), readRepoFile(t, "scripts/deploy-aws.sh")
	roles := map[string]bool{}
	for fn, code := range map[string]struct{ zip, pkg string }{
		webhookFunction: {"onboard-lambda.zip", "./functions/aws"},
		pollFunction:    {"onboard-sheets-lambda.zip", "./functions/aws/sheets"},
	} {
		for k, want := range map[string]string{
			"Runtime": "provided.al2023", "Handler": "bootstrap", "CodeUri": "../../dist/aws/" + code.zip,
		} {
			if got := scalar(s.fnProp(fn, k)); got != want {
				t.Errorf("%s.%s = %q, want %q", fn, k, got, want)
			}
		}
		if a := s.fnProp(fn, "Architectures"); len(items(a)) != 1 || scalar(items(a)[0]) != "arm64" {
			t.Errorf("%s.Architectures must be [arm64]", fn)
		}
		if !strings.Contains(build, "build "+code.zip+" "+code.pkg+"\n") || !strings.Contains(deploy, code.zip) {
			t.Errorf("scripts/build-aws.sh does not build %s into %s, or scripts/deploy-aws.sh does not package it: %s's CodeUri", code.pkg, code.zip, fn)
		}
		role := target(s.prop(fn, "Role"))
		if s.typeOf(role) != "AWS::IAM::Role" || roles[role] {
			t.Errorf("%s.Role must be a role of this template's of its own (SAM's generated role adds managed policies on \"*\"), got %q", fn, role)
		}
		roles[role] = true
		if s.fnProp(fn, "Policies") != nil {
			t.Errorf("%s.Policies is ignored when Role is set: put statements on the role", fn)
		}

		env := s.fnEnv(fn)
		if v := scalar(env["ONBOARD_SECRETS"]); v != "aws" {
			t.Errorf("%s: ONBOARD_SECRETS = %q, want aws", fn, v)
		}
		if id := target(env["ONBOARD_AWS_SECRET_ID"]); s.typeOf(id) != "AWS::SecretsManager::Secret" {
			t.Errorf("%s: ONBOARD_AWS_SECRET_ID must !Ref the template's secret, got %q", fn, id)
		}
		store := env["ONBOARD_STORE"]
		if store == nil || store.Tag != "!Sub" || !strings.HasPrefix(store.Value, "dynamodb:${") {
			t.Errorf("%s: ONBOARD_STORE must be !Sub \"dynamodb:${Table}\"", fn)
		} else if id := strings.TrimSuffix(strings.TrimPrefix(store.Value, "dynamodb:${"), "}"); s.typeOf(id) != "AWS::DynamoDB::Table" {
			t.Errorf("%s: ONBOARD_STORE names %q, not a DynamoDB table of this template", fn, id)
		}
		if v := scalar(env["ONBOARD_CONFIG"]); v != "/var/task/onboard.yaml" {
			t.Errorf("%s: ONBOARD_CONFIG = %q, want /var/task/onboard.yaml (the deploy script adds the policy to the zip's root)", fn, v)
		}
		if id := target(env["LOOKERSDK_BASE_URL"]); get(s.root, "Parameters", id) == nil {
			t.Errorf("%s: LOOKERSDK_BASE_URL must come from a parameter", fn)
		}

		fnName := s.prop(fn, "FunctionName")
		var logGroup string
		for _, lg := range s.ofType("AWS::Logs::LogGroup") {
			if name := s.prop(lg, "LogGroupName"); name != nil && fnName != nil && name.Value == "/aws/lambda/"+fnName.Value {
				logGroup = lg
			}
		}
		if logGroup == "" {
			t.Errorf("%s: no log group of its own (/aws/lambda/<FunctionName>), so Lambda would make one kept forever", fn)
		} else if s.prop(logGroup, "RetentionInDays") == nil {
			t.Errorf("%s: set RetentionInDays (logs are otherwise kept, and billed, forever)", logGroup)
		}
	}
	withPolls := s.deployed(t, map[string]string{sheetPollsParameter: "true"})
	if id := target(withPolls.prop(webhookFunction, "Environment", "Variables", "ONBOARD_SHEETS_FUNCTION")); id != pollFunction {
		t.Errorf("%s: ONBOARD_SHEETS_FUNCTION must !Ref %s, so a poll sent to the webhook's function names it; got %q", webhookFunction, pollFunction, id)
	}
}

// TestSAMEvents: the HTTP API routes, and an SQS source that reports batch
// item failures, drains into a dead-letter queue and cannot time out twice.
func TestSAMEvents(t *testing.T) {
	s := loadSAM(t)
	fn := s.function(t)
	timeout, ok := s.number(s.fnProp(fn, "Timeout"))
	if !ok {
		t.Fatalf("%s: set Timeout", fn)
	}

	routes := map[string]bool{}
	var queues []string
	events := s.prop(fn, "Events")
	for i := 0; events != nil && i+1 < len(events.Content); i += 2 {
		name, ev := events.Content[i].Value, events.Content[i+1]
		p := get(ev, "Properties")
		switch scalar(get(ev, "Type")) {
		case "HttpApi":
			routes[scalar(get(p, "Method"))+" "+scalar(get(p, "Path"))] = true
			if v := get(p, "PayloadFormatVersion"); v != nil && v.Value != "2.0" {
				t.Errorf("event %s: PayloadFormatVersion %q, want 2.0", name, v.Value)
			}
		case "SQS":
			types := []string{}
			for _, n := range items(get(p, "FunctionResponseTypes")) {
				types = append(types, n.Value)
			}
			if !slices.Contains(types, "ReportBatchItemFailures") {
				t.Errorf("event %s: FunctionResponseTypes must include ReportBatchItemFailures, else one failed record retries (or loses) the whole batch", name)
			}
			q := target(get(p, "Queue"))
			if s.typeOf(q) != "AWS::SQS::Queue" {
				t.Fatalf("event %s: Queue must be this template's queue, got %q", name, q)
			}
			queues = append(queues, q)
		}
	}
	for _, want := range []string{"POST /", "GET /healthz", "ANY /scim/v2/{proxy+}"} {
		if !routes[want] && !routes["ANY $default"] {
			t.Errorf("no HttpApi route %q (routes: %v)", want, routes)
		}
	}
	if len(queues) != 1 {
		t.Fatalf("want one SQS event, got %v", queues)
	}

	q := queues[0]
	vis, ok := s.number(s.prop(q, "VisibilityTimeout"))
	if !ok || vis < 6*timeout {
		t.Errorf("%s.VisibilityTimeout %d must be at least 6x the function timeout %d", q, vis, timeout)
	}
	dlq := target(s.prop(q, "RedrivePolicy", "deadLetterTargetArn"))
	if s.typeOf(dlq) != "AWS::SQS::Queue" || dlq == q {
		t.Fatalf("%s: RedrivePolicy.deadLetterTargetArn must be another queue of this template, got %q", q, dlq)
	}
	if n, ok := s.number(s.prop(q, "RedrivePolicy", "maxReceiveCount")); !ok || n < 1 || n > 20 {
		t.Errorf("%s: RedrivePolicy.maxReceiveCount %d (static: %v), want 1..20", q, n, ok)
	}
	retention := func(id string) int {
		if n, ok := s.number(s.prop(id, "MessageRetentionPeriod")); ok {
			return n
		}
		return 345600 // SQS default, 4 days
	}
	if retention(dlq) <= retention(q) {
		t.Errorf("%s keeps messages %ds, not longer than %s (%ds): moved messages keep their enqueue time and would expire early", dlq, retention(dlq), q, retention(q))
	}
}

// TestSAMStateTable: the layout the DynamoDB store uses, with TTL.
func TestSAMStateTable(t *testing.T) {
	s := loadSAM(t)
	tables := s.ofType("AWS::DynamoDB::Table")
	if len(tables) != 1 {
		t.Fatalf("want one DynamoDB table, got %v", tables)
	}
	tb := tables[0]
	if v := scalar(s.prop(tb, "BillingMode")); v != "PAY_PER_REQUEST" {
		t.Errorf("%s.BillingMode = %q, want PAY_PER_REQUEST (nothing billed at idle but storage)", tb, v)
	}
	if v := scalar(s.prop(tb, "TimeToLiveSpecification", "AttributeName")); v != "expires_at" {
		t.Errorf("%s TTL attribute = %q, want expires_at", tb, v)
	}
	if v := scalar(s.prop(tb, "TimeToLiveSpecification", "Enabled")); v != "true" {
		t.Errorf("%s TTL must be enabled", tb)
	}
	keys := map[string]string{}
	for _, k := range items(s.prop(tb, "KeySchema")) {
		keys[scalar(get(k, "AttributeName"))] = scalar(get(k, "KeyType"))
	}
	if keys["pk"] != "HASH" || keys["sk"] != "RANGE" || len(keys) != 2 {
		t.Errorf("%s.KeySchema = %v, want pk HASH, sk RANGE", tb, keys)
	}
	for _, a := range items(s.prop(tb, "AttributeDefinitions")) {
		if scalar(get(a, "AttributeType")) != "S" {
			t.Errorf("%s: attribute %s must be S", tb, scalar(get(a, "AttributeName")))
		}
	}
}

// TestSAMSecretEmpty: the secret exists, with no value in the template.
func TestSAMSecretEmpty(t *testing.T) {
	s := loadSAM(t)
	secrets := s.ofType("AWS::SecretsManager::Secret")
	if len(secrets) != 1 {
		t.Fatalf("want one secret (one JSON document), got %v", secrets)
	}
	for _, k := range []string{"SecretString", "GenerateSecretString"} {
		if s.prop(secrets[0], k) != nil {
			t.Errorf("%s.%s: secrets are created empty; values are set with aws secretsmanager put-secret-value", secrets[0], k)
		}
	}
}

// TestSAMIAMScoped: every Allow names its resources (this template's, by
// Ref/GetAtt/Sub), except for actions AWS cannot scope; no managed policies
// whose contents this test cannot see; no wildcards in actions.
func TestSAMIAMScoped(t *testing.T) {
	s := loadSAM(t)
	var stmts []*yaml.Node
	for id, r := range s.resources {
		switch scalar(get(r, "Type")) {
		case "AWS::IAM::Role":
			if get(r, "Properties", "ManagedPolicyArns") != nil {
				t.Errorf("%s: ManagedPolicyArns cannot be checked here (AWSLambdaBasicExecutionRole allows logs on \"*\"); write the statements", id)
			}
			for _, p := range items(get(r, "Properties", "Policies")) {
				stmts = append(stmts, items(get(p, "PolicyDocument", "Statement"))...)
			}
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy":
			stmts = append(stmts, items(get(r, "Properties", "PolicyDocument", "Statement"))...)
		case "AWS::Serverless::Function":
			for _, p := range items(get(r, "Properties", "Policies")) {
				stmts = append(stmts, items(get(p, "Statement"))...)
			}
		}
	}
	if len(stmts) == 0 {
		t.Fatal("no IAM statements found")
	}
	for _, st := range stmts {
		if scalar(get(st, "Effect")) != "Allow" {
			continue
		}
		sid := scalar(get(st, "Sid"))
		if get(st, "NotAction") != nil || get(st, "NotResource") != nil {
			t.Errorf("statement %q: NotAction/NotResource with Allow grants everything else", sid)
		}
		var actions []string
		for _, a := range items(get(st, "Action")) {
			actions = append(actions, a.Value)
			if a.Value == "*" || strings.HasSuffix(a.Value, ":*") {
				t.Errorf("statement %q: wildcard action %q", sid, a.Value)
			}
		}
		for _, r := range items(get(st, "Resource")) {
			if r.Tag != "!Sub" && scalar(r) == "*" {
				for _, a := range actions {
					if !slices.Contains(unscopableActions, a) {
						t.Errorf("statement %q: %s on Resource \"*\"; name the resource (only %v may use \"*\")", sid, a, unscopableActions)
					}
				}
				continue
			}
			id := target(r)
			if r.Tag == "!Sub" {
				if _, rest, ok := strings.Cut(r.Value, "${"); ok {
					id, _, _ = strings.Cut(strings.SplitN(rest, "}", 2)[0], ".")
				}
			}
			if s.resources[id] == nil {
				t.Errorf("statement %q: resource %q is not one of this template's resources", sid, r.Value)
			}
		}
	}

	// The webhook function's role reaches exactly its queue, table, secret
	// and logs; the poller's the same but the queue, which it never reads.
	s.function(t)
	for fn, want := range map[string][]string{
		webhookFunction: {"AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::SecretsManager::Secret", "AWS::Logs::LogGroup"},
		pollFunction:    {"AWS::DynamoDB::Table", "AWS::SecretsManager::Secret", "AWS::Logs::LogGroup"},
	} {
		role := target(s.prop(fn, "Role"))
		var reached []string
		for _, p := range items(s.prop(role, "Policies")) {
			for _, st := range items(get(p, "PolicyDocument", "Statement")) {
				for _, r := range items(get(st, "Resource")) {
					reached = append(reached, s.typeOf(target(r)))
				}
			}
		}
		slices.Sort(reached)
		slices.Sort(want)
		if reached = slices.Compact(reached); !slices.Equal(reached, want) {
			t.Errorf("%s's role %s reaches the template's %v, want exactly %v", fn, role, reached, want)
		}
	}
}

// TestSAMAlarms: an alarm, to someone, on the first dead letter and on the
// first invocation that fails as a whole (a failed keep-alive); an idle
// stack, which has no data points, must not alarm.
func TestSAMAlarms(t *testing.T) {
	s := loadSAM(t)
	var dlqs []string
	for _, q := range s.ofType("AWS::SQS::Queue") {
		if d := target(s.prop(q, "RedrivePolicy", "deadLetterTargetArn")); d != "" {
			dlqs = append(dlqs, d)
		}
	}
	if len(dlqs) == 0 {
		t.Fatal("no dead-letter queue")
	}
	for _, want := range []struct {
		namespace, metric, dimension string
		of                           []string
	}{
		{"AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlqs},
		{"AWS/Lambda", "Errors", "FunctionName", []string{webhookFunction}},
		{"AWS/Lambda", "Errors", "FunctionName", []string{pollFunction}},
	} {
		found := false
		for _, a := range s.ofType("AWS::CloudWatch::Alarm") {
			if scalar(s.prop(a, "Namespace")) != want.namespace || scalar(s.prop(a, "MetricName")) != want.metric {
				continue
			}
			for _, d := range items(s.prop(a, "Dimensions")) {
				found = found || scalar(get(d, "Name")) == want.dimension && slices.Contains(want.of, target(get(d, "Value")))
			}
			if scalar(s.prop(a, "Threshold")) != "0" || scalar(s.prop(a, "ComparisonOperator")) != "GreaterThanThreshold" {
				t.Errorf("%s: alarm on the first one (> 0)", a)
			}
			if scalar(s.prop(a, "TreatMissingData")) != "notBreaching" {
				t.Errorf("%s: missing data (an idle stack) must not alarm", a)
			}
			if len(items(s.prop(a, "AlarmActions"))) == 0 {
				t.Errorf("%s: no AlarmActions: nobody would be told", a)
			}
		}
		if !found {
			t.Errorf("no CloudWatch alarm on %s %s of %v", want.namespace, want.metric, want.of)
		}
	}
}

// TestSAMOutputs: what the deploy script prints.
func TestSAMOutputs(t *testing.T) {
	s := loadSAM(t)
	script := readRepoFile(t, "scripts/deploy-aws.sh")
	for _, k := range []string{"ApiUrl", "QueueUrl", "DeadLetterQueueUrl", "SecretArn"} {
		if get(s.root, "Outputs", k, "Value") == nil {
			t.Errorf("output %s is missing", k)
		}
		if !strings.Contains(script, "OutputKey=='"+k+"'") {
			t.Errorf("scripts/deploy-aws.sh does not read output %s", k)
		}
	}
}

// TestSAMAACKeepAlive: a daily schedule invokes the function with the
// keep-alive task as its constant input, the shape functions/aws/lambdaapi
// recognises; a parameter can switch it off, and it is on by default.
func TestSAMAACKeepAlive(t *testing.T) {
	s := loadSAM(t)
	fn := s.function(t)
	var schedules []*yaml.Node
	events := s.prop(fn, "Events")
	for i := 0; events != nil && i+1 < len(events.Content); i += 2 {
		if typ := scalar(get(events.Content[i+1], "Type")); typ == "Schedule" || typ == "ScheduleV2" {
			schedules = append(schedules, get(events.Content[i+1], "Properties"))
		}
	}
	if len(schedules) != 1 {
		t.Fatalf("%s: want one Schedule event (the AAC keep-alive), got %d", fn, len(schedules))
	}
	p := schedules[0]

	var input map[string]any
	if err := json.Unmarshal([]byte(scalar(get(p, "Input"))), &input); err != nil {
		t.Fatalf("Input %q is not a JSON object: %v", scalar(get(p, "Input")), err)
	}
	if task, _ := input["onboard_task"].(string); task != aac.TaskKeepAlive || len(input) != 1 {
		t.Errorf("Input = %v, want {\"onboard_task\":%q}", input, aac.TaskKeepAlive)
	}
	expr := scalar(get(p, "Schedule"))
	if expr == "" {
		expr = scalar(get(p, "ScheduleExpression"))
	}
	if !regexp.MustCompile(`^(cron\(\d{1,2} \d{1,2} \* \* \? \*\)|rate\(1 day\))$`).MatchString(expr) {
		t.Errorf("schedule %q, want once a day: cron(M H * * ? *) or rate(1 day)", expr)
	}

	// Either always on, or switched by a condition on a parameter that
	// defaults to on.
	state := get(p, "State")
	switch {
	case state == nil:
		if en := get(p, "Enabled"); en != nil && scalar(en) != "true" {
			t.Errorf("Enabled = %q: the keep-alive must be on by default", scalar(en))
		}
	case state.Tag == "!If" && len(state.Content) == 3:
		cond := get(s.root, "Conditions", state.Content[0].Value)
		if cond == nil || scalar(state.Content[1]) != "ENABLED" || scalar(state.Content[2]) != "DISABLED" {
			t.Fatalf("State must be !If [Condition, ENABLED, DISABLED] with a defined condition")
		}
		param, on := "", ""
		if cond.Tag == "!Equals" && len(cond.Content) == 2 {
			param, on = target(cond.Content[0]), scalar(cond.Content[1])
		}
		if def := scalar(get(s.root, "Parameters", param, "Default")); param == "" || def != on {
			t.Errorf("condition %s: want !Equals [!Ref Parameter, value] with the parameter defaulting to value (on), got parameter %q default %q, on %q",
				state.Content[0].Value, param, def, on)
		}
	default:
		if scalar(state) != "ENABLED" {
			t.Errorf("State = %q, want ENABLED or !If [Condition, ENABLED, DISABLED]", scalar(state))
		}
	}
}

// TestSAMScriptParameters: every parameter the deploy script overrides is
// one the template declares; CloudFormation would refuse the deploy.
func TestSAMScriptParameters(t *testing.T) {
	s := loadSAM(t)
	script := readRepoFile(t, "scripts/deploy-aws.sh")
	found := regexp.MustCompile(`params\+?=\("(\w+)=`).FindAllStringSubmatch(script, -1)
	if len(found) == 0 {
		t.Fatal("scripts/deploy-aws.sh: no params=(\"Name=...\") overrides found")
	}
	for _, m := range found {
		if get(s.root, "Parameters", m[1]) == nil {
			t.Errorf("scripts/deploy-aws.sh overrides parameter %s, which infra/aws/template.yaml does not declare", m[1])
		}
	}
}

// TestSAMSheetPolls runs what deploy-aws.sh runs to make the template it
// deploys, for policies polling no sheet, one and three: its line rendering
// `onboard task list --json` into a copy of the template. The copy passes
// cfn-lint, and the poller has one Schedule per polled sheet, at the sheet's
// rate, invoking it with the poll's task, the shape functions/aws/lambdaapi
// reads; nothing else of the template moves. The stack deployed from it with
// the script's parameters has the poller, its role, log group, alarm and
// output when a sheet is polled, and none of them, nor the webhook
// function's ONBOARD_SHEETS_FUNCTION, when none is.
func TestSAMSheetPolls(t *testing.T) {
	if !strings.Contains(readRepoFile(t, "scripts/deploy-aws.sh"), "--template-file dist/aws/template.yaml") {
		t.Error("deploy-aws.sh does not package dist/aws/template.yaml, the template with the schedules")
	}
	source := loadSAM(t)
	if source.prop(pollFunction, "Events") != nil {
		t.Errorf("%s in infra/aws/template.yaml has events: its schedules come from the policy alone", pollFunction)
	}
	for _, c := range []struct {
		policy string
		env    []string
		polls  int
	}{
		{"testdata/onboard.yaml", appEnv, 0},
		{"infra/testdata/one-sheet.yaml", nil, 1},
		{"testdata/deploy/sheets.yaml", nil, 3},
	} {
		t.Run(filepath.Base(c.policy), func(t *testing.T) {
			env := concat(awsEnv, c.env, []string{"ONBOARD_CONFIG=" + c.policy})
			rendered := filepath.Join(t.TempDir(), "template.yaml")
			dryRun := runScriptLine(t, "deploy-aws.sh", env, "dist/aws/template.yaml", rendered)

			cli := exec.Command(onboardCLI(t), "task", "list", "--json")
			cli.Dir, cli.Env = repoRoot, append(os.Environ(), "ONBOARD_CONFIG="+c.policy)
			list, err := cli.Output()
			if err != nil {
				t.Fatal(err)
			}
			var tasks []struct{ Name, Rate string }
			if err := json.Unmarshal(list, &tasks); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for _, task := range tasks {
				if task.Rate != "" {
					want[task.Name] = task.Rate
				}
			}
			if len(want) != c.polls {
				t.Fatalf("%s schedules %v, want %d sheet polls", c.policy, want, c.polls)
			}

			cfnLint(t, rendered)
			s := loadSAMFile(t, rendered)
			s.function(t)
			got := map[string]string{}
			events := s.prop(pollFunction, "Events")
			for i := 0; events != nil && i+1 < len(events.Content); i += 2 {
				id, ev := events.Content[i].Value, events.Content[i+1]
				p := get(ev, "Properties")
				var input map[string]string
				if scalar(get(ev, "Type")) != "Schedule" || json.Unmarshal([]byte(scalar(get(p, "Input"))), &input) != nil || len(input) != 1 {
					t.Errorf("event %s: want a Schedule whose Input is {\"onboard_task\": NAME}", id)
					continue
				}
				if !regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`).MatchString(id) {
					t.Errorf("event ID %q: SAM makes logical IDs of it, which are letters and digits", id)
				}
				got[input["onboard_task"]] = scalar(get(p, "Schedule"))
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s's schedules %v, want %v", pollFunction, got, want)
			}
			if a, b := len(s.prop(webhookFunction, "Events").Content), len(source.prop(webhookFunction, "Events").Content); a != b {
				t.Errorf("rendering changed %s's events", webhookFunction)
			}

			stack := s.deployed(t, deployParameters(t, dryRun))
			if bad := stack.dangling(stack.root); len(bad) > 0 {
				t.Errorf("the stack refers to %v, which it does not have", bad)
			}
			var have []string
			for _, id := range pollerResources {
				if stack.resources[id] != nil {
					have = append(have, id)
				}
			}
			output := get(stack.root, "Outputs", pollerOutput) != nil
			sheetsFunction := stack.prop(webhookFunction, "Environment", "Variables", "ONBOARD_SHEETS_FUNCTION")
			if c.polls == 0 {
				if len(have) > 0 || output || sheetsFunction != nil {
					t.Errorf("a stack polling no sheet has %v, output %s: %v, %s's ONBOARD_SHEETS_FUNCTION: %v; want none of them",
						have, pollerOutput, output, webhookFunction, sheetsFunction != nil)
				}
				return
			}
			stack.function(t)
			if !slices.Equal(have, pollerResources) || !output || target(sheetsFunction) != pollFunction {
				t.Errorf("a stack polling a sheet has %v, output %s: %v, %s's ONBOARD_SHEETS_FUNCTION: %q; want %v, the output and %s",
					have, pollerOutput, output, webhookFunction, target(sheetsFunction), pollerResources, pollFunction)
			}
			if n := len(stack.prop(pollFunction, "Events").Content) / 2; n != c.polls {
				t.Errorf("the deployed %s has %d schedules, want %d", pollFunction, n, c.polls)
			}
		})
	}
}

// deployParameters is what a DRY_RUN=1 deploy-aws.sh passes its stack's
// parameters: the --parameter-overrides of its aws cloudformation deploy.
func deployParameters(t *testing.T, dryRun string) map[string]string {
	t.Helper()
	for l := range strings.Lines(dryRun) {
		if !strings.HasPrefix(l, "+ aws cloudformation deploy ") {
			continue
		}
		params := map[string]string{}
		_, overrides, _ := strings.Cut(l, " --parameter-overrides ")
		for _, kv := range strings.Fields(overrides) {
			k, v, _ := strings.Cut(kv, "=")
			params[k] = v
		}
		return params
	}
	t.Fatalf("no aws cloudformation deploy in deploy-aws.sh's DRY_RUN=1 output:\n%s", dryRun)
	return nil
}

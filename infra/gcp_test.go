package infra

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/aac"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/onboard-dev/onboard/core/app"
)

const gcpDir = "gcp"

// The secrets the GCP deployment creates: every name the code reads from a
// secret manager (core/app.SecretNames, checked below) and those the AAC and
// Periscope targets will read.
var wantSecrets = []string{
	"AAC_ACCOUNT_REFRESH_TOKEN", "AAC_CLIENT_ID", "AAC_REFRESH_TOKENS", "GOOGLE_SHEETS_CREDENTIALS", "LOOKERSDK_CLIENT_ID",
	"LOOKERSDK_CLIENT_SECRET", "ONBOARD_SCIM_TOKEN", "ONBOARD_WEBHOOK_SECRET", "PERISCOPE_SITES", "SENDGRID_API_KEY",
}

func TestTerraformFmt(t *testing.T) {
	tf := tool(t, "terraform", "https://developer.hashicorp.com/terraform/install")
	cmd := exec.Command(tf, "fmt", "-check", "-recursive", "-diff", gcpDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("terraform fmt -check -recursive %s: %v\n%s\nrun: terraform fmt -recursive infra/gcp", gcpDir, err, out)
	}
}

// TestGCPFunctions: runtime go126, entry points that the Go code registers,
// each with the right signature for how it is triggered, and the functions'
// own service account.
func TestGCPFunctions(t *testing.T) {
	m := loadModule(t, gcpDir)
	registered := registeredFunctions(t, ".", "functions/gcp")
	fns := m.byType("google_cloudfunctions2_function")
	if len(fns) != 2 {
		t.Fatalf("want 2 google_cloudfunctions2_function (ProvisionHTTP, ProvisionPubSub), got %d", len(fns))
	}

	wantKind := m.triggerKinds(t)
	var entries []string
	for _, fn := range fns {
		if rt, _ := m.str(fn.attr("build_config", "runtime")); rt != "go126" {
			t.Errorf("%s: build_config.runtime = %q, want go126 (go.mod says go 1.26)", fn, rt)
		}
		entry, ok := m.str(fn.attr("build_config", "entry_point"))
		if !ok {
			t.Errorf("%s: build_config.entry_point must be a literal", fn)
			continue
		}
		entries = append(entries, entry)
		kind, found := registered[entry]
		switch {
		case !found:
			t.Errorf("%s: entry_point %q is not registered in the Go code (functions.HTTP/CloudEvent under functions/gcp or the root package); registered: %v", fn, entry, registered)
		case wantKind[fn.addr()] != "" && kind != wantKind[fn.addr()]:
			t.Errorf("%s: entry_point %q is registered with functions.%s, but its trigger needs functions.%s", fn, entry, kind, wantKind[fn.addr()])
		}
		if !m.refersTo(fn.attr("service_config", "service_account_email"), "google_service_account.fn") {
			t.Errorf("%s: service_config.service_account_email must be google_service_account.fn (not the default compute account)", fn)
		}
		if !m.refersTo(fn.attr("build_config", "source", "storage_source", "object"), "google_storage_bucket_object.source") {
			t.Errorf("%s: build source must be the uploaded google_storage_bucket_object.source", fn)
		}
		env := m.functionEnv(t, fn)
		for k, want := range map[string]string{"ONBOARD_SECRETS": "gcp", "ONBOARD_STORE": "firestore"} {
			if got, _ := m.str(env[k]); got != want {
				t.Errorf("%s: environment %s = %q, want %q", fn, k, got, want)
			}
		}
		if !m.refersTo(env["ONBOARD_GCP_PROJECT"], "var.project") {
			t.Errorf("%s: environment ONBOARD_GCP_PROJECT must be var.project", fn)
		}
		if cfg, _ := m.str(env["ONBOARD_CONFIG"]); !strings.HasSuffix(cfg, "/onboard.yaml") {
			t.Errorf("%s: environment ONBOARD_CONFIG = %q, want the shipped onboard.yaml", fn, cfg)
		}
		if !m.refersTo(env["LOOKERSDK_BASE_URL"], "var.looker_base_url") {
			t.Errorf("%s: environment LOOKERSDK_BASE_URL must be var.looker_base_url", fn)
		}
	}
	sort.Strings(entries)
	if want := []string{"ProvisionHTTP", "ProvisionPubSub"}; !slices.Equal(entries, want) {
		t.Errorf("entry points %v, want %v", entries, want)
	}
}

// triggerKinds maps each function to the registration its trigger needs: the
// push subscription's target receives a CloudEvent (the Functions Framework
// converts the push body), the public webhook a plain HTTP request.
func (m *tfModule) triggerKinds(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, fn := range m.byType("google_cloudfunctions2_function") {
		for _, sub := range m.byType("google_pubsub_subscription") {
			if m.refersTo(sub.attr("push_config", "push_endpoint"), fn.addr()) {
				out[fn.addr()] = "CloudEvent"
			}
		}
		for _, inv := range m.byType("google_cloud_run_v2_service_iam_member") {
			if s, _ := m.str(inv.attr("member")); s == "allUsers" && m.refersTo(inv.attr("name"), fn.addr()) {
				out[fn.addr()] = "HTTP"
			}
		}
	}
	return out
}

// functionEnv returns the function's environment variables by name, through
// local.function_env.
func (m *tfModule) functionEnv(t *testing.T, fn *tfBlock) map[string]*tfExpr {
	t.Helper()
	e := fn.attr("service_config", "environment_variables")
	if e == nil {
		t.Fatalf("%s: no service_config.environment_variables", fn)
	}
	if st, ok := e.Expression.(*hclsyntax.ScopeTraversalExpr); ok && st.Traversal.RootName() == "local" {
		name := st.Traversal[1].(hcl.TraverseAttr).Name
		l := m.locals[name]
		if l == nil {
			t.Fatalf("%s: local.%s is not defined", fn, name)
		}
		return objectItems(l.Expression, l.src)
	}
	return objectItems(e.Expression, e.src)
}

// TestGCPPubSubDeadLetters: the push subscription we own retries with
// backoff, dead-letters after max_delivery_attempts, authenticates with its
// own identity, never expires; the dead-letter topic has a subscription that
// keeps what arrives; the Pub/Sub service agent can do the dead-lettering.
func TestGCPPubSubDeadLetters(t *testing.T) {
	m := loadModule(t, gcpDir)
	var push []*tfBlock
	for _, s := range m.byType("google_pubsub_subscription") {
		if s.block("push_config") != nil {
			push = append(push, s)
		}
		if s.block("expiration_policy") == nil {
			t.Errorf("%s: no expiration_policy: Pub/Sub deletes a subscription after 31 idle days; set ttl = \"\"", s)
		} else if ttl, ok := m.str(s.attr("expiration_policy", "ttl")); !ok || ttl != "" {
			t.Errorf("%s: expiration_policy.ttl = %q, want \"\" (never expire)", s, ttl)
		}
	}
	if len(push) != 1 {
		t.Fatalf("want exactly one push subscription, got %d", len(push))
	}
	sub := push[0]

	if sub.block("dead_letter_policy") == nil {
		t.Fatalf("%s: no dead_letter_policy", sub)
	}
	n, ok := m.num(sub.attr("dead_letter_policy", "max_delivery_attempts"))
	if !ok || n < 5 || n > 100 {
		t.Errorf("%s: dead_letter_policy.max_delivery_attempts = %d (static: %v), want 5..100", sub, n, ok)
	}
	dlqTopic := m.referencedOfType(sub.attr("dead_letter_policy", "dead_letter_topic"), "google_pubsub_topic")
	srcTopic := m.referencedOfType(sub.attr("topic"), "google_pubsub_topic")
	if dlqTopic == "" || dlqTopic == srcTopic {
		t.Fatalf("%s: dead_letter_topic must be a google_pubsub_topic of its own (got %q, source %q)", sub, dlqTopic, srcTopic)
	}
	if sub.attr("retry_policy", "minimum_backoff") == nil || sub.attr("retry_policy", "maximum_backoff") == nil {
		t.Errorf("%s: retry_policy with minimum_backoff and maximum_backoff wanted (exponential backoff between deliveries)", sub)
	}

	// Authenticated push, with an identity that is not the functions' own.
	oidc := sub.attr("push_config", "oidc_token", "service_account_email")
	pushSA := m.referencedOfType(oidc, "google_service_account")
	if pushSA == "" || pushSA == "google_service_account.fn" {
		t.Errorf("%s: push_config.oidc_token.service_account_email must be a dedicated google_service_account, got %q", sub, pushSA)
	}
	target := m.referencedOfType(sub.attr("push_config", "push_endpoint"), "google_cloudfunctions2_function")
	if target == "" {
		t.Fatalf("%s: push_endpoint does not point at a google_cloudfunctions2_function", sub)
	}
	if !strings.Contains(sub.attr("push_config", "push_endpoint").text(), "/projects/") {
		t.Errorf("%s: push_endpoint should end in /projects/P/topics/T so the Functions Framework builds a CloudEvent", sub)
	}
	fn := m.resource(target)
	ack, ok1 := m.num(sub.attr("ack_deadline_seconds"))
	timeout, ok2 := m.num(fn.attr("service_config", "timeout_seconds"))
	if !ok1 || !ok2 || ack < timeout || ack > 600 {
		t.Errorf("%s: ack_deadline_seconds %d must cover %s's timeout %d and be at most 600", sub, ack, fn, timeout)
	}
	if !m.hasBinding("google_cloud_run_v2_service_iam_member", "roles/run.invoker", target, pushSA) {
		t.Errorf("the push identity %s needs roles/run.invoker on %s", pushSA, target)
	}

	// Dead letters are kept: a pull subscription on the dead-letter topic.
	kept := false
	for _, s := range m.byType("google_pubsub_subscription") {
		if s.block("push_config") == nil && m.refersTo(s.attr("topic"), dlqTopic) {
			kept = true
			if s.attr("message_retention_duration") == nil {
				t.Errorf("%s: set message_retention_duration so dead letters are kept long enough to read", s)
			}
		}
	}
	if !kept {
		t.Errorf("%s has no subscription: a topic without one drops the dead letters", dlqTopic)
	}

	// The Pub/Sub service agent publishes to the DLQ and acks the source.
	const agent = "@gcp-sa-pubsub.iam.gserviceaccount.com"
	var pub, ack2 bool
	for _, b := range m.byType("google_pubsub_topic_iam_member") {
		if m.refersTo(b.attr("topic"), dlqTopic) && slices.Contains(m.roles(b), "roles/pubsub.publisher") &&
			strings.Contains(m.resolvedText(b.attr("member")), agent) {
			pub = true
		}
	}
	for _, b := range m.byType("google_pubsub_subscription_iam_member") {
		if m.refersTo(b.attr("subscription"), sub.addr()) && slices.Contains(m.roles(b), "roles/pubsub.subscriber") &&
			strings.Contains(m.resolvedText(b.attr("member")), agent) {
			ack2 = true
		}
	}
	if !pub {
		t.Errorf("the Pub/Sub service agent (service-N%s) needs roles/pubsub.publisher on %s", agent, dlqTopic)
	}
	if !ack2 {
		t.Errorf("the Pub/Sub service agent (service-N%s) needs roles/pubsub.subscriber on %s", agent, sub.addr())
	}
}

// referencedOfType returns the first resource of typ that e refers to.
func (m *tfModule) referencedOfType(e *tfExpr, typ string) string {
	if e == nil {
		return ""
	}
	for _, r := range refs(e.Expression) {
		if strings.HasPrefix(r, typ+".") && m.resource(r) != nil {
			return r
		}
	}
	return ""
}

// hasBinding: a resource of typ grants role on something referring to
// target, to a member referring to who.
func (m *tfModule) hasBinding(typ, role, target, who string) bool {
	for _, b := range m.byType(typ) {
		if !slices.Contains(m.roles(b), role) || !m.refersTo(b.attr("member"), who) {
			continue
		}
		for _, a := range []string{"name", "service", "topic", "subscription", "secret_id"} {
			if m.refersTo(b.attr(a), target) {
				return true
			}
		}
	}
	return false
}

// TestGCPSecrets: one secret per name the code reads, created empty, each
// readable by the functions' account through its own binding.
func TestGCPSecrets(t *testing.T) {
	m := loadModule(t, gcpDir)
	secrets := m.byType("google_secret_manager_secret")
	if len(secrets) == 0 {
		t.Fatal("no google_secret_manager_secret")
	}
	if v := m.byType("google_secret_manager_secret_version"); len(v) > 0 {
		t.Errorf("%v: secret values must never be in Terraform (state holds them in clear); set them with gcloud", v)
	}
	for _, body := range m.bodies {
		hclsyntax.VisitAll(body.Body, func(n hclsyntax.Node) hcl.Diagnostics {
			if a, ok := n.(*hclsyntax.Attribute); ok && (a.Name == "secret_data" || a.Name == "secret_data_wo") {
				t.Errorf("%s: %s sets a secret value in Terraform", body.file, a.Name)
			}
			return nil
		})
	}

	// The names: literal, the expected list, and every name the code reads.
	names := stringLiterals(m.locals["secret_names"].Expression)
	sort.Strings(names)
	if !slices.Equal(names, wantSecrets) {
		t.Errorf("local.secret_names = %v, want %v", names, wantSecrets)
	}
	for _, n := range app.SecretNames() {
		if !slices.Contains(names, n) {
			t.Errorf("core/app reads secret %s, which infra/gcp does not create", n)
		}
	}

	for _, s := range secrets {
		if !m.refersTo(s.attr("for_each"), "local.secret_names") {
			t.Errorf("%s: for_each must be local.secret_names (one secret per name, secret_id = each.value)", s)
		}
		bound := false
		for _, b := range m.byType("google_secret_manager_secret_iam_member") {
			if !slices.Contains(m.roles(b), "roles/secretmanager.secretAccessor") {
				continue
			}
			perSecret := m.refersTo(b.attr("for_each"), s.addr()) && b.attr("secret_id").text() == "each.value.secret_id"
			single := b.attr("for_each") == nil && m.refersTo(b.attr("secret_id"), s.addr())
			if (perSecret || single) && m.refersTo(b.attr("member"), "google_service_account.fn") {
				bound = true
			}
		}
		if !bound {
			t.Errorf("%s: no roles/secretmanager.secretAccessor binding per secret for google_service_account.fn", s)
		}
	}
	for _, b := range m.byType("google_project_iam_member") {
		for _, r := range m.roles(b) {
			if strings.HasPrefix(r, "roles/secretmanager.") {
				t.Errorf("%s grants %s project-wide: grant it per secret", b, r)
			}
		}
	}
}

var primitiveRole = regexp.MustCompile(`^roles/(owner|editor|viewer)$`)

// TestGCPLeastPrivilege: no primitive role anywhere, no authoritative IAM
// resource (they would wipe other grants), project-wide roles only from a
// short reviewed list, and allUsers only on the webhook.
func TestGCPLeastPrivilege(t *testing.T) {
	m := loadModule(t, gcpDir)
	for _, body := range m.bodies {
		for _, s := range stringLiterals(body.Body) {
			if primitiveRole.MatchString(s) {
				t.Errorf("%s: primitive role %q: grant a predefined role on the resource instead", body.file, s)
			}
		}
	}
	for _, r := range m.resources {
		if strings.HasSuffix(r.Type, "_iam_binding") || strings.HasSuffix(r.Type, "_iam_policy") {
			t.Errorf("%s: authoritative IAM resource; use an *_iam_member", r)
		}
	}

	// Project-wide grants, by identity: every other grant is on one resource.
	allowed := map[string][]string{
		// Firestore has no finer IAM than the database; the grant carries a
		// condition naming it.
		"google_service_account.fn": {"roles/datastore.user"},
		// Google's documented set for a custom Cloud Build account.
		"google_service_account.build": {"roles/artifactregistry.writer", "roles/logging.logWriter", "roles/storage.objectAdmin"},
	}
	for _, b := range m.byType("google_project_iam_member") {
		who := m.referencedOfType(b.attr("member"), "google_service_account")
		for _, r := range m.roles(b) {
			if !slices.Contains(allowed[who], r) {
				t.Errorf("%s: project-wide %s for %q is not in the reviewed list %v", b, r, who, allowed)
			}
		}
		if who == "google_service_account.fn" && b.block("condition") == nil {
			t.Errorf("%s: the functions' Firestore grant must carry a condition naming the database", b)
		}
	}
	if len(m.roles(m.resource("google_project_iam_member.fn_firestore"))) == 0 {
		t.Error("google_project_iam_member.fn_firestore (roles/datastore.user for the functions) is missing")
	}

	// allUsers: only the webhook function's invoker; the Pub/Sub function is
	// internal-only and invokable by the push identity alone.
	kinds := m.triggerKinds(t)
	for _, r := range m.resources {
		for _, s := range stringLiterals(r.Body) {
			if s != "allUsers" && s != "allAuthenticatedUsers" {
				continue
			}
			target := m.referencedOfType(r.attr("name"), "google_cloudfunctions2_function")
			if r.Type != "google_cloud_run_v2_service_iam_member" || kinds[target] != "HTTP" {
				t.Errorf("%s grants %s: only the webhook function may be public", r, s)
			}
		}
	}
	for _, fn := range m.byType("google_cloudfunctions2_function") {
		ingress, _ := m.str(fn.attr("service_config", "ingress_settings"))
		switch kinds[fn.addr()] {
		case "HTTP":
			if ingress != "ALLOW_ALL" {
				t.Errorf("%s: the webhook must be reachable by Zapier and forms (ALLOW_ALL), got %q", fn, ingress)
			}
		case "CloudEvent":
			if ingress != "ALLOW_INTERNAL_ONLY" {
				t.Errorf("%s: the Pub/Sub function should only take internal traffic (ALLOW_INTERNAL_ONLY), got %q", fn, ingress)
			}
		default:
			t.Errorf("%s: neither the push subscription's target nor the public webhook", fn)
		}
	}
}

// TestGCPFirestore: a native-mode database and a TTL on expires_at.
func TestGCPFirestore(t *testing.T) {
	m := loadModule(t, gcpDir)
	dbs := m.byType("google_firestore_database")
	if len(dbs) != 1 {
		t.Fatalf("want one google_firestore_database, got %d", len(dbs))
	}
	if typ, _ := m.str(dbs[0].attr("type")); typ != "FIRESTORE_NATIVE" {
		t.Errorf("%s: type = %q, want FIRESTORE_NATIVE", dbs[0], typ)
	}
	if p, _ := m.str(dbs[0].attr("deletion_policy")); p != "ABANDON" {
		t.Errorf("%s: deletion_policy = %q; keep ABANDON so destroy never deletes the audit log", dbs[0], p)
	}
	fields := m.byType("google_firestore_field")
	if len(fields) == 0 {
		t.Fatal("no google_firestore_field: documents would never expire")
	}
	for _, f := range fields {
		if name, _ := m.str(f.attr("field")); name != "expires_at" {
			t.Errorf("%s: field = %q, want expires_at", f, name)
		}
		if f.block("ttl_config") == nil {
			t.Errorf("%s: no ttl_config", f)
		}
	}
	v := m.variables["firestore_ttl_collection_groups"]
	if v == nil {
		t.Fatal("variable firestore_ttl_collection_groups is missing")
	}
	def, ok := m.value(&tfExpr{v.Body.Attributes["default"].Expr, v.src})
	if !ok || !def.CanIterateElements() || def.LengthInt() == 0 {
		t.Fatal("firestore_ttl_collection_groups needs a non-empty default")
	}
	var groups []string
	for it := def.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.Type() == cty.String {
			groups = append(groups, e.AsString())
		}
	}
	// core/state/firestorestore: expires_at is set on these two; audit
	// records have none and are kept.
	if want := []string{"onboard_idempotency", "onboard_values"}; !slices.Equal(groups, want) {
		t.Errorf("firestore_ttl_collection_groups default = %v, want %v (the store's collections with expires_at)", groups, want)
	}

	// The store, its IAM condition and the database are the same one.
	if d, _ := m.str(&tfExpr{m.variables["firestore_database"].Body.Attributes["default"].Expr, nil}); d != "(default)" {
		t.Errorf("firestore_database default = %q, want (default)", d)
	}
	if !m.refersTo(dbs[0].attr("name"), "var.firestore_database") {
		t.Errorf("%s: name must be var.firestore_database", dbs[0])
	}
	for _, fn := range m.byType("google_cloudfunctions2_function") {
		if !m.refersTo(m.functionEnv(t, fn)["ONBOARD_FIRESTORE_DATABASE"], "var.firestore_database") {
			t.Errorf("%s: environment ONBOARD_FIRESTORE_DATABASE must be var.firestore_database", fn)
		}
	}
	grant := m.resource("google_project_iam_member.fn_firestore")
	if grant == nil || !m.refersTo(grant.attr("condition", "expression"), "var.firestore_database") {
		t.Error("the functions' datastore.user grant must be conditioned on var.firestore_database")
	}
}

// TestGCPVariablesOutputs: documented, typed variables and the outputs the
// deploy script reads.
func TestGCPVariablesOutputs(t *testing.T) {
	m := loadModule(t, gcpDir)
	for n, v := range m.variables {
		if v.Body.Attributes["description"] == nil || v.Body.Attributes["type"] == nil {
			t.Errorf("variable %q needs a description and a type", n)
		}
	}
	for _, n := range []string{"project", "region", "name", "looker_base_url", "source_zip"} {
		if m.variables[n] == nil {
			t.Errorf("variable %q is missing", n)
		}
	}
	script := readRepoFile(t, "scripts/deploy-gcp.sh")
	for _, n := range []string{"http_url", "pubsub_topic", "dead_letter_topic", "dead_letter_subscription"} {
		if m.outputs[n] == nil {
			t.Errorf("output %q is missing", n)
		}
	}
	for _, n := range regexp.MustCompile(`output -raw (\w+)`).FindAllStringSubmatch(script, -1) {
		if m.outputs[n[1]] == nil {
			t.Errorf("scripts/deploy-gcp.sh reads output %q, which infra/gcp does not define", n[1])
		}
	}
	for _, n := range regexp.MustCompile(`-var "(\w+)=`).FindAllStringSubmatch(script, -1) {
		if m.variables[n[1]] == nil {
			t.Errorf("scripts/deploy-gcp.sh sets variable %q, which infra/gcp does not declare", n[1])
		}
	}
}

// TestGCPScriptListsMatch: the deploy script enables the APIs Terraform
// manages and prints a command for every secret Terraform creates.
func TestGCPScriptListsMatch(t *testing.T) {
	m := loadModule(t, gcpDir)
	script := readRepoFile(t, "scripts/deploy-gcp.sh")
	list := func(name string) []string {
		re := regexp.MustCompile(`(?s)\n` + name + `=\(\n(.*?)\n\)`)
		g := re.FindStringSubmatch(script)
		if g == nil {
			t.Fatalf("scripts/deploy-gcp.sh: no %s=( ... ) list", name)
		}
		out := strings.Fields(g[1])
		sort.Strings(out)
		return out
	}
	apis := stringLiterals(m.locals["services"].Expression)
	sort.Strings(apis)
	if got := list("SERVICES"); !slices.Equal(got, apis) {
		t.Errorf("scripts/deploy-gcp.sh SERVICES %v != infra/gcp local.services %v", got, apis)
	}
}

// TestGCPAACKeepAlive: a daily Cloud Scheduler job, in the functions'
// region, publishes the keep-alive task to the topic the Pub/Sub function is
// fed from, as the attribute ProvisionPubSub reads (functions/gcp); a
// variable turns it off; its API is enabled.
func TestGCPAACKeepAlive(t *testing.T) {
	m := loadModule(t, gcpDir)
	job := m.resource("google_cloud_scheduler_job.aac_keep_alive")
	if job == nil {
		t.Fatal("no google_cloud_scheduler_job.aac_keep_alive")
	}

	v := m.variables["aac_keep_alive"]
	if v == nil {
		t.Fatal("variable aac_keep_alive (turns the keep-alive off) is missing")
	}
	if typ := v.Body.Attributes["type"]; typ == nil || (&tfExpr{typ.Expr, v.src}).text() != "bool" {
		t.Error("variable aac_keep_alive: type must be bool")
	}
	def := v.Body.Attributes["default"]
	if def == nil {
		t.Error("variable aac_keep_alive: default must be true (an unrotated chain expires)")
	} else if val, ok := m.value(&tfExpr{def.Expr, v.src}); !ok || val.Type() != cty.Bool || val.False() {
		t.Error("variable aac_keep_alive: default must be true (an unrotated chain expires)")
	}
	if !m.refersTo(job.attr("count"), "var.aac_keep_alive") {
		t.Errorf("%s: count must follow var.aac_keep_alive", job)
	}

	feeding := m.feedingTopic(t)
	if got := m.referencedOfType(job.attr("pubsub_target", "topic_name"), "google_pubsub_topic"); got != feeding {
		t.Errorf("%s: pubsub_target.topic_name refers to %q, want %s (the Pub/Sub function's topic)", job, got, feeding)
	}
	if text := job.attr("pubsub_target", "topic_name").text(); !strings.HasSuffix(text, ".id") {
		t.Errorf("%s: pubsub_target.topic_name = %s; Cloud Scheduler wants the full name projects/P/topics/T (the topic's .id)", job, text)
	}
	var attrs map[string]*tfExpr
	if a := job.attr("pubsub_target", "attributes"); a != nil {
		attrs = objectItems(a.Expression, a.src)
	}
	if task, _ := m.str(attrs["onboard_task"]); task != aac.TaskKeepAlive || !slices.Contains(app.Tasks(), task) {
		t.Errorf("%s: pubsub_target.attributes.onboard_task = %q, want %q", job, task, aac.TaskKeepAlive)
	}

	if sched, _ := m.str(job.attr("schedule")); !regexp.MustCompile(`^\d{1,2} \d{1,2} \* \* \*$`).MatchString(sched) {
		t.Errorf("%s: schedule = %q, want once a day (\"M H * * *\")", job, sched)
	}
	if tz, _ := m.str(job.attr("time_zone")); tz == "" {
		t.Errorf("%s: set time_zone, so the schedule does not depend on a default", job)
	}
	if !m.refersTo(job.attr("region"), "var.region") {
		t.Errorf("%s: region must be var.region, the functions' region", job)
	}
	if !m.refersTo(job.attr("depends_on"), "google_project_service.apis") {
		t.Errorf("%s: depends_on google_project_service.apis, or it races the API being enabled", job)
	}
	if !slices.Contains(stringLiterals(m.locals["services"].Expression), "cloudscheduler.googleapis.com") {
		t.Error("local.services does not enable cloudscheduler.googleapis.com")
	}
}

// feedingTopic is the topic the push subscription feeds ProvisionPubSub from.
func (m *tfModule) feedingTopic(t *testing.T) string {
	t.Helper()
	var feeding string
	for _, s := range m.byType("google_pubsub_subscription") {
		if m.referencedOfType(s.attr("push_config", "push_endpoint"), "google_cloudfunctions2_function") != "" {
			feeding = m.referencedOfType(s.attr("topic"), "google_pubsub_topic")
		}
	}
	if feeding == "" {
		t.Fatal("no push subscription feeding a function")
	}
	return feeding
}

// TestGCPSheetPolls: each task the policy schedules (a poll per Google
// Sheet) gets a Cloud Scheduler job publishing it as the keep-alive does, to
// the topic the Pub/Sub function is fed from, on the task's own cron; the
// Sheets API is enabled for the function's calls.
func TestGCPSheetPolls(t *testing.T) {
	m := loadModule(t, gcpDir)
	var polls *tfBlock
	for _, job := range m.byType("google_cloud_scheduler_job") {
		if job.attr("for_each") != nil {
			polls = job
		}
	}
	if polls == nil {
		t.Fatal("no google_cloud_scheduler_job with a for_each (a job per scheduled task of the policy)")
	}
	if !m.refersTo(polls.attr("for_each"), "var.policy_tasks") {
		t.Errorf("%s: for_each must come from var.policy_tasks (onboard task list --json)", polls)
	}
	if v := m.variables["policy_tasks"]; v == nil || v.Body.Attributes["default"] == nil {
		t.Error("variable policy_tasks needs a default (no sheet: no job)")
	}
	if got, want := m.referencedOfType(polls.attr("pubsub_target", "topic_name"), "google_pubsub_topic"), m.feedingTopic(t); got != want {
		t.Errorf("%s: pubsub_target.topic_name refers to %q, want %s", polls, got, want)
	}
	var attrs map[string]*tfExpr
	if a := polls.attr("pubsub_target", "attributes"); a != nil {
		attrs = objectItems(a.Expression, a.src)
	}
	if e := attrs["onboard_task"]; e == nil || e.text() != "each.key" {
		t.Errorf("%s: pubsub_target.attributes.onboard_task must be each.key, the task's name", polls)
	}
	if e := polls.attr("schedule"); e == nil || e.text() != "each.value.cron" {
		t.Errorf("%s: schedule must be each.value.cron, the task's own", polls)
	}
	if tz, _ := m.str(polls.attr("time_zone")); tz != "Etc/UTC" {
		t.Errorf("%s: time_zone = %q, want Etc/UTC (onboard task list's cron lines are UTC)", polls, tz)
	}
	if !m.refersTo(polls.attr("region"), "var.region") || !m.refersTo(polls.attr("depends_on"), "google_project_service.apis") {
		t.Errorf("%s: region must be var.region and depends_on google_project_service.apis", polls)
	}
	if !slices.Contains(stringLiterals(m.locals["services"].Expression), "sheets.googleapis.com") {
		t.Error("local.services does not enable sheets.googleapis.com: the function's calls to the Sheets API would be refused")
	}
}

// TestGCPSheetPollsFromTheTaskList runs what deploy-gcp.sh runs: its line
// writing `onboard task list --json` into the var file, and Terraform
// evaluating the jobs from it (in a module of just the variables and the
// local they are made from, which needs no provider). One job per polled
// sheet, on its cron, with a valid job ID of its own; the targets' tasks,
// which have no cron, get none.
func TestGCPSheetPollsFromTheTaskList(t *testing.T) {
	tf := tool(t, "terraform", "https://developer.hashicorp.com/terraform/install")
	dir := t.TempDir()
	varFile := filepath.Join(dir, "policy-tasks.tfvars.json")

	const policy = "testdata/deploy/sheets.yaml"
	runScriptLine(t, "deploy-gcp.sh", append(gcpEnv, "ONBOARD_CONFIG="+policy), "dist/gcp/policy-tasks.tfvars.json", varFile)
	if !strings.Contains(readRepoFile(t, "scripts/deploy-gcp.sh"), "-var-file=../../dist/gcp/policy-tasks.tfvars.json") {
		t.Fatal("deploy-gcp.sh does not pass dist/gcp/policy-tasks.tfvars.json to Terraform")
	}

	m := loadModule(t, gcpDir)
	local := m.locals["policy_schedules"]
	if local == nil {
		t.Fatal("no local.policy_schedules")
	}
	var module strings.Builder
	for _, r := range refs(local.Expression) {
		if name, ok := strings.CutPrefix(r, "var."); ok {
			v := m.variables[name]
			rng := v.Body.SrcRange
			fmt.Fprintf(&module, "variable %q %s\n", name, v.src[rng.Start.Byte:rng.End.Byte])
		}
	}
	fmt.Fprintf(&module, "locals {\n  policy_schedules = %s\n}\noutput \"schedules\" {\n  value = local.policy_schedules\n}\n", local.text())
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(module.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	terraform := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(tf, append([]string{"-chdir=" + dir}, args...)...)
		cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("terraform %v: %v\n%s%s\n%s", args, err, out, stderr, module.String())
		}
		return out
	}
	terraform("init", "-input=false", "-no-color")
	terraform("apply", "-input=false", "-auto-approve", "-no-color", "-var-file="+varFile)
	var jobs map[string]struct {
		Cron  string `json:"cron"`
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(terraform("output", "-json", "schedules"), &jobs); err != nil {
		t.Fatal(err)
	}

	var tasks struct {
		PolicyTasks []struct{ Name, Cron string } `json:"policy_tasks"`
	}
	raw, _ := os.ReadFile(varFile)
	if err := json.Unmarshal(raw, &tasks); err != nil {
		t.Fatalf("%s: %v\n%s", varFile, err, raw)
	}
	want := map[string]string{}
	for _, task := range tasks.PolicyTasks {
		if task.Cron != "" {
			want[task.Name] = task.Cron
		}
	}
	if len(want) != 3 {
		t.Fatalf("%s schedules %v, want its three sheets", policy, want)
	}
	ids := map[string]bool{}
	jobID := regexp.MustCompile(`^onboard-[a-zA-Z0-9_-]{1,480}$`)
	for name, cron := range want {
		job, ok := jobs[name]
		switch {
		case !ok:
			t.Errorf("no job for %s (jobs: %v)", name, jobs)
		case job.Cron != cron:
			t.Errorf("%s: cron %q, want %q", name, job.Cron, cron)
		case !jobID.MatchString(job.JobID) || ids[job.JobID]:
			t.Errorf("%s: job ID %q is not a valid Cloud Scheduler ID of its own", name, job.JobID)
		}
		ids[job.JobID] = true
	}
	if len(jobs) != len(want) {
		t.Errorf("jobs for %v, want only the scheduled %v", jobs, want)
	}
}

package awssecrets_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/onboard-dev/onboard/core/secrets"
	"github.com/onboard-dev/onboard/core/secrets/awssecrets"
	"github.com/onboard-dev/onboard/internal/emulators"
)

const canary = "aws-CANARY-0b7d4e"

func TestMain(m *testing.M) { os.Exit(emulators.Run(m)) }

// motoEnv is a moto-backed config whose HTTP client counts GetSecretValue
// calls, plus a unique name prefix: moto is shared by the whole binary.
type motoEnv struct {
	cfg    aws.Config
	admin  *secretsmanager.Client
	prefix string
	reads  *atomic.Int32
}

type countingTransport struct{ reads *atomic.Int32 }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") == "secretsmanager.GetSecretValue" {
		c.reads.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func newMoto(t *testing.T) *motoEnv {
	t.Helper()
	cfg := emulators.AWSConfig(t, emulators.Moto(t))
	reads := &atomic.Int32{}
	cfg.HTTPClient = &http.Client{Transport: countingTransport{reads}}
	return &motoEnv{
		cfg:    cfg,
		admin:  secretsmanager.NewFromConfig(cfg),
		prefix: t.Name() + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/",
		reads:  reads,
	}
}

func (m *motoEnv) create(t *testing.T, id, value string) {
	t.Helper()
	if _, err := m.admin.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
		Name: aws.String(id), SecretString: aws.String(value),
	}); err != nil {
		t.Fatalf("CreateSecret(%s): %v", id, err)
	}
}

func (m *motoEnv) put(t *testing.T, id, value string) {
	t.Helper()
	if _, err := m.admin.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(id), SecretString: aws.String(value),
	}); err != nil {
		t.Fatalf("PutSecretValue(%s): %v", id, err)
	}
}

func fetch(t *testing.T, src secrets.Source, name, want string) {
	t.Helper()
	got, err := src.Fetch(t.Context(), name)
	if err != nil {
		t.Fatalf("Fetch(%q): %v", name, err)
	}
	if got != want {
		t.Fatalf("Fetch(%q) = %q, want %q", name, got, want)
	}
}

func wantNotFound(t *testing.T, src secrets.Source, name string) {
	t.Helper()
	_, err := src.Fetch(t.Context(), name)
	var nf *secrets.NotFoundError
	if !errors.As(err, &nf) || nf.Name != name {
		t.Fatalf("Fetch(%q) err = %v, want NotFoundError naming %q", name, err, name)
	}
}

func TestSecretPerName(t *testing.T) {
	m := newMoto(t)
	m.create(t, m.prefix+"LOOKERSDK_CLIENT_SECRET", canary)
	src := awssecrets.New(m.cfg, awssecrets.Options{Prefix: m.prefix})

	fetch(t, src, "LOOKERSDK_CLIENT_SECRET", canary)
	wantNotFound(t, src, "SENDGRID_API_KEY")

	m.put(t, m.prefix+"LOOKERSDK_CLIENT_SECRET", "rotated")
	fetch(t, src, "LOOKERSDK_CLIENT_SECRET", "rotated")
}

func TestJSONSecret(t *testing.T) {
	m := newMoto(t)
	id := m.prefix + "config"
	m.create(t, id, `{
		"LOOKERSDK_CLIENT_SECRET": "`+canary+`",
		"LOOKERSDK_TIMEOUT": 120,
		"LOOKERSDK_VERIFY_SSL": false,
		"PERISCOPE_SITES": {"acme": "k1"},
		"SENDGRID_API_KEY": "",
		"AAC_CLIENT_ID": null
	}`)
	src := awssecrets.New(m.cfg, awssecrets.Options{SecretID: id})

	fetch(t, src, "LOOKERSDK_CLIENT_SECRET", canary)
	fetch(t, src, "LOOKERSDK_TIMEOUT", "120")
	fetch(t, src, "LOOKERSDK_VERIFY_SSL", "false")
	fetch(t, src, "PERISCOPE_SITES", `{"acme":"k1"}`)
	for _, name := range []string{"SENDGRID_API_KEY", "AAC_CLIENT_ID", "ONBOARD_WEBHOOK_SECRET"} {
		wantNotFound(t, src, name)
	}
	if n := m.reads.Load(); n != 1 {
		t.Fatalf("GetSecretValue calls = %d, want 1 for all names", n)
	}
	// Formatting the source must not print the document it holds.
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		if out := fmt.Sprintf(verb, src); strings.Contains(out, canary) {
			t.Fatalf("%s of the source leaks a value: %s", verb, out)
		}
	}
}

// TestJSONSecretOneCallPerRefresh is the cost claim: a cold-start Prefetch of
// every name, and a later refresh, each cost one API call.
func TestJSONSecretOneCallPerRefresh(t *testing.T) {
	m := newMoto(t)
	id := m.prefix + "config"
	names := []string{"A", "B", "C", "D", "E"}
	m.create(t, id, `{"A":"1","B":"2","C":"3","D":"4","E":"5"}`)
	src := awssecrets.New(m.cfg, awssecrets.Options{SecretID: id, MaxAge: -1})
	now := time.Unix(0, 0)
	c := secrets.NewCache(src, time.Minute, secrets.WithClock(func() time.Time { return now }))

	if err := c.Prefetch(t.Context(), names); err != nil {
		t.Fatalf("Prefetch: %v", err)
	}
	if n := m.reads.Load(); n != 1 {
		t.Fatalf("GetSecretValue calls for %d names = %d, want 1", len(names), n)
	}

	m.put(t, id, `{"A":"one","B":"2","C":"3","D":"4","E":"5"}`)
	now = now.Add(time.Minute)
	if err := c.Prefetch(t.Context(), names); err != nil {
		t.Fatalf("second Prefetch: %v", err)
	}
	if v, _ := c.Get(t.Context(), "A"); v != "one" {
		t.Fatalf("after TTL A = %q, want the rotated value", v)
	}
	if n := m.reads.Load(); n != 2 {
		t.Fatalf("GetSecretValue calls after one refresh = %d, want 2", n)
	}
}

func TestJSONDocumentReusedForMaxAge(t *testing.T) {
	m := newMoto(t)
	id := m.prefix + "config"
	m.create(t, id, `{"A":"1"}`)
	src := awssecrets.New(m.cfg, awssecrets.Options{SecretID: id})

	fetch(t, src, "A", "1")
	m.put(t, id, `{"A":"2"}`)
	fetch(t, src, "A", "1") // within DefaultMaxAge
	if n := m.reads.Load(); n != 1 {
		t.Fatalf("GetSecretValue calls = %d, want 1", n)
	}
}

func TestMissingJSONSecretIsAFailure(t *testing.T) {
	m := newMoto(t)
	id := m.prefix + "absent"
	src := awssecrets.New(m.cfg, awssecrets.Options{SecretID: id})

	_, err := src.Fetch(t.Context(), "A")
	if err == nil || secrets.IsNotFound(err) || !strings.Contains(err.Error(), id) {
		t.Fatalf("err = %v, want a failure naming the missing JSON secret", err)
	}
}

func TestMalformedJSONSecretDoesNotLeak(t *testing.T) {
	m := newMoto(t)
	for _, doc := range []string{canary, `{"A": ` + canary + `}`, `["` + canary + `"]`} {
		id := m.prefix + strconv.Itoa(len(doc))
		m.create(t, id, doc)
		src := awssecrets.New(m.cfg, awssecrets.Options{SecretID: id})
		_, err := src.Fetch(t.Context(), "A")
		if err == nil || secrets.IsNotFound(err) {
			t.Fatalf("doc %d: err = %v, want a parse failure", len(doc), err)
		}
		// A json.SyntaxError quotes one character of the value: too little
		// for a substring check on the canary, so check for the error itself.
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) || strings.Contains(err.Error(), "invalid character") {
			t.Fatalf("doc %d: error carries the JSON parser's message: %v", len(doc), err)
		}
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			if out := fmt.Sprintf(verb, err); strings.Contains(out, canary) {
				t.Fatalf("%s of the parse error leaks the value: %s", verb, out)
			}
		}
	}
}

func TestPrefetchNamesMissingKeys(t *testing.T) {
	m := newMoto(t)
	id := m.prefix + "config"
	m.create(t, id, `{"LOOKERSDK_CLIENT_ID":"id","LOOKERSDK_CLIENT_SECRET":"`+canary+`"}`)
	c := secrets.NewCache(awssecrets.New(m.cfg, awssecrets.Options{SecretID: id}), time.Minute)

	err := c.Prefetch(t.Context(), []string{"LOOKERSDK_CLIENT_ID", "LOOKERSDK_CLIENT_SECRET", "SENDGRID_API_KEY", "AAC_BASE_URL"})
	var pe *secrets.PrefetchError
	if !errors.As(err, &pe) || !slices.Equal(pe.Missing(), []string{"AAC_BASE_URL", "SENDGRID_API_KEY"}) {
		t.Fatalf("Prefetch err = %v, want the two missing keys", err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Fatalf("error leaks a value: %v", err)
	}
}

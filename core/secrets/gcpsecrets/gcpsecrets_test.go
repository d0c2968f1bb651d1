package gcpsecrets_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/onboard-dev/onboard/core/secrets"
	"github.com/onboard-dev/onboard/core/secrets/gcpsecrets"
	"github.com/onboard-dev/onboard/core/secrets/gcpsecrets/gcpsecretstest"
)

const canary = "gcp-CANARY-51d0c3"

func newSource(t *testing.T, srv *gcpsecretstest.Server, cfg gcpsecrets.Config) *gcpsecrets.Source {
	t.Helper()
	src, err := gcpsecrets.New(t.Context(), cfg, srv.ClientOptions()...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return src
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

func TestLatestAndPinnedVersions(t *testing.T) {
	srv := gcpsecretstest.NewServer(t)
	srv.AddVersion("LOOKERSDK_CLIENT_SECRET", "v1")
	pinned := srv.AddVersion("SENDGRID_API_KEY", "sg-old")
	srv.AddVersion("SENDGRID_API_KEY", "sg-new")

	src := newSource(t, srv, gcpsecrets.Config{
		Project:  gcpsecretstest.Project,
		Versions: map[string]string{"SENDGRID_API_KEY": "1"},
	})
	if pinned != 1 {
		t.Fatalf("AddVersion returned %d, want 1", pinned)
	}

	fetch(t, src, "LOOKERSDK_CLIENT_SECRET", "v1")
	fetch(t, src, "SENDGRID_API_KEY", "sg-old")

	srv.AddVersion("LOOKERSDK_CLIENT_SECRET", "v2 with\nnewline\n")
	fetch(t, src, "LOOKERSDK_CLIENT_SECRET", "v2 with\nnewline\n")
}

func TestMissingSecretIsNotFound(t *testing.T) {
	srv := gcpsecretstest.NewServer(t)
	src := newSource(t, srv, gcpsecrets.Config{Project: gcpsecretstest.Project})

	_, err := src.Fetch(t.Context(), "AAC_REFRESH_TOKENS")
	var nf *secrets.NotFoundError
	if !errors.As(err, &nf) || nf.Name != "AAC_REFRESH_TOKENS" {
		t.Fatalf("err = %v, want NotFoundError naming AAC_REFRESH_TOKENS", err)
	}
}

func TestPinnedVersionMissingIsAFailureNotAbsence(t *testing.T) {
	srv := gcpsecretstest.NewServer(t)
	srv.AddVersion("K", "v1")
	src := newSource(t, srv, gcpsecrets.Config{Project: gcpsecretstest.Project, Versions: map[string]string{"K": "7"}})

	_, err := src.Fetch(t.Context(), "K")
	if err == nil || secrets.IsNotFound(err) || !strings.Contains(err.Error(), "pinned version 7") {
		t.Fatalf("err = %v, want a failure naming the pinned version", err)
	}
}

func TestOtherProjectIsDeniedNotAbsent(t *testing.T) {
	srv := gcpsecretstest.NewServer(t)
	srv.AddVersion("K", "v1")
	src := newSource(t, srv, gcpsecrets.Config{Project: "someone-else"})

	_, err := src.Fetch(t.Context(), "K")
	if secrets.IsNotFound(err) || status.Code(err) != codes.PermissionDenied {
		t.Fatalf("err = %v, want the PERMISSION_DENIED status, not NotFound", err)
	}
}

func TestChecksumMismatchRejected(t *testing.T) {
	srv := gcpsecretstest.NewServer(t)
	srv.AddVersion("K", canary)
	srv.CorruptChecksum("K")
	src := newSource(t, srv, gcpsecrets.Config{Project: gcpsecretstest.Project})

	_, err := src.Fetch(t.Context(), "K")
	if err == nil || !strings.Contains(err.Error(), "CRC32C") {
		t.Fatalf("err = %v, want a CRC32C failure", err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Fatalf("error leaks the value: %v", err)
	}
}

func TestInvalidInputRejected(t *testing.T) {
	srv := gcpsecretstest.NewServer(t)
	for _, cfg := range []gcpsecrets.Config{
		{Project: ""},
		{Project: "p/../q"},
		{Project: gcpsecretstest.Project, Versions: map[string]string{"K": "1/../2"}},
		{Project: gcpsecretstest.Project, Versions: map[string]string{"a/b": "1"}},
		{Project: strings.Repeat("p", 101)},
		{Project: gcpsecretstest.Project, Versions: map[string]string{strings.Repeat("K", 256): "1"}},
		{Project: gcpsecretstest.Project, Versions: map[string]string{"K": strings.Repeat("1", 64)}},
	} {
		if _, err := gcpsecrets.New(t.Context(), cfg, srv.ClientOptions()...); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
	// The longest names Secret Manager allows pass.
	newSource(t, srv, gcpsecrets.Config{Project: strings.Repeat("p", 100), Versions: map[string]string{strings.Repeat("K", 255): strings.Repeat("1", 63)}})
	src := newSource(t, srv, gcpsecrets.Config{Project: gcpsecretstest.Project})
	for _, name := range []string{"K/versions/1", strings.Repeat("K", 256), ""} {
		if _, err := src.Fetch(t.Context(), name); err == nil || secrets.IsNotFound(err) {
			t.Fatalf("Fetch(%q): err = %v, want a validation failure", name, err)
		}
	}
	if _, err := src.Fetch(t.Context(), strings.Repeat("K", 255)); !secrets.IsNotFound(err) {
		t.Fatalf("Fetch of an absent secret with the longest name: err = %v, want not found", err)
	}
}

// TestCacheOverSecretManager runs the cold-start path the functions use:
// Prefetch through the real client, then a rotation picked up after the TTL.
func TestCacheOverSecretManager(t *testing.T) {
	srv := gcpsecretstest.NewServer(t)
	srv.AddVersion("ONBOARD_WEBHOOK_SECRET", canary)
	src := newSource(t, srv, gcpsecrets.Config{Project: gcpsecretstest.Project})
	now := time.Unix(0, 0)
	c := secrets.NewCache(src, time.Minute, secrets.WithClock(func() time.Time { return now }))

	err := c.Prefetch(t.Context(), []string{"ONBOARD_WEBHOOK_SECRET", "SENDGRID_API_KEY", "PERISCOPE_SITES"})
	var pe *secrets.PrefetchError
	if !errors.As(err, &pe) || !slices.Equal(pe.Missing(), []string{"PERISCOPE_SITES", "SENDGRID_API_KEY"}) {
		t.Fatalf("Prefetch err = %v, want the two missing names", err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Fatalf("Prefetch error leaks a value: %v", err)
	}

	srv.AddVersion("ONBOARD_WEBHOOK_SECRET", "rotated")
	if v, _ := c.Get(t.Context(), "ONBOARD_WEBHOOK_SECRET"); v != canary {
		t.Fatalf("within TTL got %q, want the cached value", v)
	}
	now = now.Add(time.Minute)
	if v, err := c.Get(t.Context(), "ONBOARD_WEBHOOK_SECRET"); v != "rotated" || err != nil {
		t.Fatalf("after TTL got %q, %v; want the rotated value", v, err)
	}
}

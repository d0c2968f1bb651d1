package firestorestore_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/firestorestore"
	"github.com/onboard-dev/onboard/core/state/statetest"
	"github.com/onboard-dev/onboard/internal/emulators"
)

func TestMain(m *testing.M) { os.Exit(emulators.Run(m)) }

const project = "onboard-test"

var prefixSeq atomic.Int64

// newPrefix gives t collections of its own: subtests assert on everything
// the audit collection holds.
func newPrefix(t *testing.T) string {
	return fmt.Sprintf("t%d_%s_", prefixSeq.Add(1), regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_"))
}

func emulatorClient(t *testing.T) *firestore.Client {
	t.Helper()
	host := emulators.Firestore(t)
	client, err := firestore.NewClient(t.Context(), project,
		option.WithEndpoint(host), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func TestConformance(t *testing.T) {
	client := emulatorClient(t)
	statetest.Run(t, func(t *testing.T, now func() time.Time) state.Store {
		s, err := firestorestore.New(client, firestorestore.Options{Prefix: newPrefix(t), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// The layout is documented for people browsing the console and for the TTL
// policy; check it holds.
func TestDocumentLayout(t *testing.T) {
	client := emulatorClient(t)
	prefix := newPrefix(t)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s, err := firestorestore.New(client, firestorestore.Options{Prefix: prefix, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, _, err := s.Claim(ctx, "zap/8812", "fp", "a", time.Minute, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "token", []byte("t"), 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, state.AuditRecord{Person: "Ada@Example.com"}); err != nil {
		t.Fatal(err)
	}

	rec, err := client.Collection(prefix + "idempotency").Doc("zap%2F8812").Get(ctx)
	if err != nil {
		t.Fatalf("record document: %v", err)
	}
	if exp, err := rec.DataAt("expires_at"); err != nil || !exp.(time.Time).Equal(now.Add(time.Hour)) {
		t.Errorf("expires_at = %v (%v), want a timestamp an hour on, for the TTL policy", exp, err)
	}
	if key, _ := rec.DataAt("key"); key != "zap/8812" {
		t.Errorf("key field = %v", key)
	}
	val, err := client.Collection(prefix + "values").Doc("token").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := val.DataAt("expires_at"); err == nil {
		t.Error("a value without TTL has expires_at, so the TTL policy would delete it")
	}
	audits, err := client.Collection(prefix + "audit").Documents(ctx).GetAll()
	if err != nil || len(audits) != 1 {
		t.Fatalf("audit documents: %d, %v", len(audits), err)
	}
	if id := audits[0].Ref.ID; !strings.HasPrefix(id, "2026-11-22T10:00:00.000000000Z#") {
		t.Errorf("audit id %q, want time#unique", id)
	}
	if p, _ := audits[0].DataAt("person_lc"); p != "ada@example.com" {
		t.Errorf("person_lc = %v", p)
	}
}

func TestOpenFromEnv(t *testing.T) {
	host := emulators.Firestore(t)
	prefix := newPrefix(t)
	env := map[string]string{"ONBOARD_GCP_PROJECT": project, "FIRESTORE_EMULATOR_HOST": host, "ONBOARD_FIRESTORE_PREFIX": prefix}
	s, err := state.Open(t.Context(), "firestore", func(k string) string { return env[k] },
		map[string]state.Backend{"firestore": firestorestore.Backend})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "k", []byte("v"), 0, 0); err != nil {
		t.Fatalf("Put through OpenFromEnv: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The write landed in the configured project and prefix.
	direct, err := firestorestore.New(emulatorClient(t), firestorestore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := direct.Get(t.Context(), "k"); err != nil || string(v.Data) != "v" {
		t.Fatalf("Get = %q, %v", v.Data, err)
	}
}

func TestInvalidPrefix(t *testing.T) {
	if _, err := firestorestore.New(&firestore.Client{}, firestorestore.Options{Prefix: "a/b"}); err == nil {
		t.Fatal("a prefix with '/' was accepted")
	}
}

package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/dynamostore"
	"github.com/onboard-dev/onboard/core/state/statetest"
	"github.com/onboard-dev/onboard/internal/emulators"
)

func TestMain(m *testing.M) { os.Exit(emulators.Run(m)) }

var tableSeq atomic.Int64

// newTable creates a table of its own for t: audit partitions are shared
// by everything in a table, and subtests assert on all of them.
func newTable(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	name := fmt.Sprintf("onboard-%d-%s", tableSeq.Add(1), regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "-"))
	if len(name) > 255 {
		name = name[:255]
	}
	if err := dynamostore.CreateTable(t.Context(), client, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// motoClient sends one request at a time. moto evaluates a condition and
// writes the item without a lock, so two concurrent conditional writes can
// both succeed there; DynamoDB applies writes to an item one at a time.
// Serializing on the wire reproduces that guarantee, while the callers
// (and everything in the store) still run concurrently: the concurrency
// tests then check that the conditions are right, which is ours to get
// right, and not moto's thread safety, which DynamoDB does not share.
func motoClient(t *testing.T) *dynamodb.Client {
	t.Helper()
	cfg := emulators.AWSConfig(t, emulators.Moto(t))
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	return dynamodb.NewFromConfig(cfg)
}

func TestConformance(t *testing.T) {
	client := motoClient(t)
	statetest.Run(t, func(t *testing.T, now func() time.Time) state.Store {
		return dynamostore.NewOptions(client, newTable(t, client), dynamostore.Options{Now: now})
	})
}

// CreateTable makes the table the infrastructure template makes: the names
// are a contract with it.
func TestCreateTable(t *testing.T) {
	client := motoClient(t)
	table := newTable(t, client)
	if err := dynamostore.CreateTable(t.Context(), client, table); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	desc, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]types.KeyType{}
	for _, k := range desc.Table.KeySchema {
		keys[aws.ToString(k.AttributeName)] = k.KeyType
	}
	if len(keys) != 2 || keys["pk"] != types.KeyTypeHash || keys["sk"] != types.KeyTypeRange {
		t.Errorf("key schema = %v, want pk HASH, sk RANGE", keys)
	}
	ttl, err := client.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; aws.ToString(d.AttributeName) != "expires_at" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("TTL = %s on %q, want ENABLED on expires_at", d.TimeToLiveStatus, aws.ToString(d.AttributeName))
	}
}

// The layout is documented for people inspecting the table; check it holds.
func TestItemLayout(t *testing.T) {
	client := motoClient(t)
	table := newTable(t, client)
	now := time.Date(2026, 11, 22, 10, 0, 0, 500_000_000, time.UTC)
	s := dynamostore.NewOptions(client, table, dynamostore.Options{Now: func() time.Time { return now }})
	ctx := t.Context()
	if _, _, err := s.Claim(ctx, "req-1", "fp", "a", time.Minute, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "token", []byte("t"), 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, state.AuditRecord{Person: "Ada@Example.com", Target: "looker"}); err != nil {
		t.Fatal(err)
	}
	get := func(pk, sk string) map[string]types.AttributeValue {
		t.Helper()
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk},
		}})
		if err != nil || out.Item == nil {
			t.Fatalf("item %s/%s: %v %v", pk, sk, out, err)
		}
		return out.Item
	}
	rec := get("idem#req-1", "idem")
	wantN := map[string]int64{
		"expires_at":  time.Date(2026, 11, 22, 11, 0, 1, 0, time.UTC).Unix(),                // rounded up to the second
		"lease_until": time.Date(2026, 11, 22, 10, 1, 0, 500_000_000, time.UTC).UnixMilli(), // milliseconds
	}
	for name, want := range wantN {
		if n, ok := rec[name].(*types.AttributeValueMemberN); !ok || n.Value != fmt.Sprint(want) {
			t.Errorf("record %s = %#v, want N %d", name, rec[name], want)
		}
	}
	if v := get("value#token", "value"); v["expires_at"] != nil {
		t.Errorf("value without TTL has expires_at %v", v["expires_at"])
	}
	get("audit-days", "2026-11-22")
	out, err := client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "audit#2026-11-22"}},
	})
	if err != nil || len(out.Items) != 1 {
		t.Fatalf("audit partition: %v, %v", out, err)
	}
	sk := out.Items[0]["sk"].(*types.AttributeValueMemberS).Value
	if !regexp.MustCompile(`^2026-11-22T10:00:00\.500000000Z#\S+$`).MatchString(sk) {
		t.Errorf("audit sort key %q, want time#unique", sk)
	}
	if p := out.Items[0]["person_lc"].(*types.AttributeValueMemberS).Value; p != "ada@example.com" {
		t.Errorf("person_lc = %q", p)
	}
}

// Deadlines are stored rounded up and compared with the time rounded down,
// so at a sub-second (or sub-millisecond) instant before a deadline the item
// is still live, and at the deadline it is not. Rounding now up instead
// would let a claim or create-only Put overwrite a live item.
func TestDeadlineRounding(t *testing.T) {
	client := motoClient(t)
	clock := statetest.NewClock(time.Date(2026, 11, 22, 10, 0, 0, 500_000_000, time.UTC))
	s := dynamostore.NewOptions(client, newTable(t, client), dynamostore.Options{Now: clock.Now})
	ctx := t.Context()

	if _, err := s.Put(ctx, "v", []byte("a"), 0, 500*time.Millisecond); err != nil { // expires at 10:00:01
		t.Fatal(err)
	}
	clock.Advance(400 * time.Millisecond)
	if _, err := s.Put(ctx, "v", []byte("b"), 0, 0); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("create-only Put 100ms before expiry = %v, want ErrConflict", err)
	}
	clock.Advance(100 * time.Millisecond)
	if _, err := s.Put(ctx, "v", []byte("b"), 0, 0); err != nil {
		t.Fatalf("create-only Put at expiry: %v", err)
	}

	clock.Advance(500 * time.Microsecond) // 10:00:01.0005
	if got, _, err := s.Claim(ctx, "k", "fp", "a", 500*time.Microsecond, 0); err != nil || got != state.Claimed {
		t.Fatalf("Claim = %v, %v", got, err)
	}
	clock.Advance(400 * time.Microsecond) // lease ends at 10:00:01.001
	if got, _, err := s.Claim(ctx, "k", "fp", "b", time.Minute, 0); err != nil || got != state.InProgress {
		t.Fatalf("Claim 0.1ms before the lease ends = %v, %v; want in_progress", got, err)
	}
	clock.Advance(100 * time.Microsecond)
	if got, _, err := s.Claim(ctx, "k", "fp", "b", time.Minute, 0); err != nil || got != state.Claimed {
		t.Fatalf("Claim when the lease ends = %v, %v; want claimed", got, err)
	}
}

func TestBackend(t *testing.T) {
	endpoint := emulators.Moto(t)
	client := motoClient(t)
	table := newTable(t, client)
	// The loader's endpoint is a dead one: getenv's must win.
	load := func(_ context.Context, getenv func(string) string) (aws.Config, error) {
		cfg := emulators.AWSConfig(t, "http://127.0.0.1:1")
		cfg.Region = getenv("AWS_REGION")
		return cfg, nil
	}
	env := map[string]string{"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_DYNAMODB": endpoint}
	s, err := dynamostore.Backend(load)(t.Context(), table, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "k", []byte("v"), 0, 0); err != nil {
		t.Fatalf("Put through Backend: %v", err)
	}
	// The write landed in the named table.
	direct := dynamostore.New(client, table)
	if v, err := direct.Get(t.Context(), "k"); err != nil || string(v.Data) != "v" {
		t.Fatalf("Get = %q, %v", v.Data, err)
	}

	noEnv := func(string) string { return "" }
	if _, err := dynamostore.Backend(load)(t.Context(), "", noEnv); err == nil || !strings.Contains(err.Error(), "dynamodb:<table>") {
		t.Errorf("Backend without a table: %v, want an error asking for dynamodb:<table>", err)
	}
	failing := func(context.Context, func(string) string) (aws.Config, error) {
		return aws.Config{}, errors.New("AWS_REGION is not set")
	}
	if _, err := dynamostore.Backend(failing)(t.Context(), table, noEnv); err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("Backend with a failing loader: %v, want its error", err)
	}
}

// answerLost delivers the first PutItem and then reports the connection
// reset, as a timeout after DynamoDB wrote does: the SDK sends it again.
type answerLost struct {
	next http.RoundTripper
	op   string // the DynamoDB operation whose first answer is lost
	once atomic.Bool
}

func (a *answerLost) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := a.next.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.Header.Get("X-Amz-Target"), "."+a.op) && a.once.CompareAndSwap(false, true) {
		resp.Body.Close()
		return nil, syscall.ECONNRESET
	}
	return resp, err
}

// storeLosingAnswer is a store on moto whose first answer to op is lost
// after moto carried it out, so the SDK retries a write already made.
func storeLosingAnswer(t *testing.T, op string) (*dynamostore.Store, *answerLost) {
	t.Helper()
	cfg := emulators.AWSConfig(t, emulators.Moto(t))
	lost := &answerLost{next: &http.Transport{MaxConnsPerHost: 1}, op: op}
	cfg.HTTPClient = &http.Client{Transport: lost}
	client := dynamodb.NewFromConfig(cfg)
	return dynamostore.New(client, newTable(t, client)), lost
}

// A claim whose first attempt was written but whose answer was lost still
// holds the key when the SDK's retry finds it there (CI saw in_progress).
func TestClaimWhoseAnswerWasLost(t *testing.T) {
	store, lost := storeLosingAnswer(t, "PutItem")
	outcome, rec, err := store.Claim(t.Context(), "k", "fp", "a", time.Minute, time.Hour)
	if err != nil || outcome != state.Claimed || rec.Owner != "a" {
		t.Fatalf("claim: %v %+v %v", outcome, rec, err)
	}
	if !lost.once.Load() {
		t.Fatal("no answer was lost: the test tested nothing")
	}
	if outcome, _, _ := store.Claim(t.Context(), "k", "fp", "b", time.Minute, time.Hour); outcome != state.InProgress {
		t.Errorf("another owner: %v, want in_progress", outcome)
	}
}

// A Put whose first attempt was written but whose answer was lost returns
// the version it wrote when the SDK's retry finds it there, not a conflict:
// a person's record written on release read as "lease lost", failing a
// request that had done everything.
func TestPutWhoseAnswerWasLost(t *testing.T) {
	store, lost := storeLosingAnswer(t, "UpdateItem")
	v, err := store.Put(t.Context(), "k", []byte("one"), 0, 0)
	if err != nil || v != 1 {
		t.Fatalf("put: version %d, %v; want 1", v, err)
	}
	if !lost.once.Load() {
		t.Fatal("no answer was lost: the test tested nothing")
	}
	if v, err := store.Put(t.Context(), "k", []byte("two"), 1, 0); err != nil || v != 2 {
		t.Fatalf("the next put: version %d, %v; want 2", v, err)
	}
	if _, err := store.Put(t.Context(), "k", []byte("stale"), 1, 0); !errors.Is(err, state.ErrConflict) {
		t.Errorf("a put expecting an old version: %v, want a conflict", err)
	}
	if got, err := store.Get(t.Context(), "k"); err != nil || string(got.Data) != "two" || got.Version != 2 {
		t.Errorf("get: %+v %v", got, err)
	}
}

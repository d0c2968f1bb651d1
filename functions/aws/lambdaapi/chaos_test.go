package lambdaapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/statetest"
	"github.com/onboard-dev/onboard/functions/aws/internal/awstest"
	"github.com/onboard-dev/onboard/internal/fakehttp"
)

// The chaos tests send many people through SQS batches into the function
// while Looker and SendGrid fail the way they do in production, redeliver
// what the function hands back as SQS would, and check that everyone ends
// with exactly one complete Looker user and one welcome email, and that no
// half-made (login-less) user is left behind.

// defaultChaosSeed fixes the fault schedule; ONBOARD_CHAOS_SEED replays another.
const defaultChaosSeed = 20260311

const (
	chaosBatch       = 10 // records per invocation, SQS's default batch size
	chaosInvocations = 10 // invocations running at once, as Lambda scales its pollers
	chaosMaxRounds   = 12 // redelivery rounds before the run counts as not converging
	chaosStrangers   = 5  // same-named login-less users that are someone else's
)

// The two runs wait on different things (retry back-off, moto), so they
// overlap.

func TestChaosFileStore(t *testing.T) {
	t.Parallel()
	runChaos(t, 200, nil, nil)
}

func TestChaosDynamoDB(t *testing.T) {
	t.Parallel()
	store := statetest.DynamoDB(t)
	runChaos(t, 100, map[string]string{"ONBOARD_STORE": "dynamodb:chaos"}, map[string]state.Backend{
		"dynamodb": func(context.Context, string, func(string) string) (state.Store, error) { return store, nil },
	})
}

func chaosSeed(t *testing.T) uint64 {
	v := os.Getenv("ONBOARD_CHAOS_SEED")
	if v == "" {
		return defaultChaosSeed
	}
	seed, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("ONBOARD_CHAOS_SEED=%q is not a number", v)
	}
	return seed
}

// chaosPerson is person i: every tenth has no name, which makes onboard
// find a create's user by its mark among all users.
func chaosPerson(i int) (email, first, last string) {
	email = fmt.Sprintf("p%03d@example.com", i)
	if i%10 == 9 {
		return email, "", ""
	}
	return email, fmt.Sprintf("Pat%03d", i), "Chaos"
}

func runChaos(t *testing.T, people int, env map[string]string, stores map[string]state.Backend) {
	seed := chaosSeed(t)
	t.Logf("chaos seed %d; replay with ONBOARD_CHAOS_SEED=%d go test -run '^%s$' ./functions/aws/lambdaapi/", seed, seed, t.Name())
	started := time.Now()

	fakes := awstest.Start(t)
	looker, sendgrid := awstest.Server[*lookertest.Server](t, fakes), awstest.Server[*sendgridtest.Server](t, fakes)
	strangers := map[string]bool{}
	for i := range chaosStrangers {
		_, first, last := chaosPerson(i * people / chaosStrangers)
		strangers[looker.AddUser(lookertest.SeedUser{FirstName: first, LastName: last})] = true
	}
	schedule := fakehttp.NewSchedule(seed)
	lookerChances := []fakehttp.Chance[lookertest.Fault]{
		{Fault: lookertest.Fault{Status: http.StatusServiceUnavailable}, Share: 0.10},
		{Fault: lookertest.Fault{DropConnection: true}, Share: 0.02},
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		lookerChances = append(lookerChances,
			fakehttp.Chance[lookertest.Fault]{Fault: lookertest.Fault{Method: m, Status: http.StatusInternalServerError, AfterActing: true}, Share: 0.10},
			fakehttp.Chance[lookertest.Fault]{Fault: lookertest.Fault{Method: m, DropConnection: true, AfterActing: true}, Share: 0.02})
	}
	lookerChaos := fakehttp.NewChaos(schedule, lookerChances...)
	looker.InjectChaos(lookerChaos)
	sendgridChaos := fakehttp.NewChaos(schedule,
		fakehttp.Chance[fakehttp.Reply]{Fault: fakehttp.Reply{Status: http.StatusServiceUnavailable}, Share: 0.05},
		fakehttp.Chance[fakehttp.Reply]{Fault: fakehttp.Reply{Status: http.StatusTooManyRequests, RetryAfter: "1"}, Share: 0.05})
	sendgrid.InjectChaos(sendgridChaos)

	h := harnessFor(t, fakes, env, 0, stores)
	queue := &chaosQueue{rng: rand.New(rand.NewPCG(seed, 0))}
	for i := range people {
		email, first, last := chaosPerson(i)
		body, _ := json.Marshal(map[string]string{"email": email, "name": strings.TrimSpace(first + " " + last)})
		queue.send(awstest.SQSRecord(fmt.Sprintf("msg-%03d", i), string(body)))
	}
	rounds := 0
	for ; len(queue.pending) > 0; rounds++ {
		if rounds == chaosMaxRounds {
			t.Fatalf("%d messages still failing after %d rounds of redelivery", len(queue.pending), rounds)
		}
		queue.round(t, h)
	}
	t.Logf("converged in %d rounds, %s; Looker faults fired %v, SendGrid refusals %v, duplicate deliveries %d",
		rounds, time.Since(started).Round(time.Millisecond), lookerChaos.Fired(), sendgridChaos.Fired(), queue.duplicates)
	kinds := map[string]int{}
	for i, n := range lookerChaos.Fired() {
		f := lookerChances[i].Fault
		kinds[fmt.Sprintf("reset=%t after acting=%t", f.DropConnection, f.AfterActing)] += n
	}
	for kind, n := range kinds {
		if n == 0 {
			t.Errorf("no Looker fault with %s fired: the run proves nothing about it", kind)
		}
	}
	for i, n := range sendgridChaos.Fired() {
		if n == 0 {
			t.Errorf("SendGrid refusal %d never fired", i)
		}
	}
	assertChaosOutcome(t, fakes, people, strangers)
}

// chaosQueue is a standard SQS queue as Lambda's event source mapping
// uses it: records go out in batches, those a batch's answer does not list
// in batchItemFailures are deleted, the listed ones come back (receive
// count up) after their visibility timeout, and now and then a deleted
// record is delivered once more (at-least-once delivery).
type chaosQueue struct {
	rng        *rand.Rand
	pending    []events.SQSMessage
	receives   map[string]int
	duplicated map[string]bool
	duplicates int
}

func (q *chaosQueue) send(m events.SQSMessage) { q.pending = append(q.pending, m) }

// round delivers every pending record once, in concurrent invocations.
func (q *chaosQueue) round(t *testing.T, h *harness) {
	t.Helper()
	if q.receives == nil {
		q.receives, q.duplicated = map[string]int{}, map[string]bool{}
	}
	var batches [][]events.SQSMessage
	for batch := range slices.Chunk(q.pending, chaosBatch) {
		for i := range batch {
			q.receives[batch[i].MessageId]++
			batch[i].Attributes = map[string]string{"ApproximateReceiveCount": strconv.Itoa(q.receives[batch[i].MessageId])}
		}
		batches = append(batches, batch)
	}
	failed := make([][]string, len(batches))
	var wg sync.WaitGroup
	slots := make(chan struct{}, chaosInvocations)
	for i, batch := range batches {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			var err error
			if failed[i], err = invokeSQS(h, batch); err != nil {
				t.Errorf("invocation failed as a whole: %v", err)
			}
		})
	}
	wg.Wait()
	var next []events.SQSMessage
	for i, batch := range batches {
		for _, m := range batch {
			switch {
			case slices.Contains(failed[i], m.MessageId):
				next = append(next, m)
			case !q.duplicated[m.MessageId] && q.rng.Float64() < 0.03:
				q.duplicated[m.MessageId] = true
				q.duplicates++
				next = append(next, m)
			}
		}
	}
	q.pending = next
}

// invokeSQS is harness.sqs for goroutines: it returns what failed.
func invokeSQS(h *harness, records []events.SQSMessage) ([]string, error) {
	payload, err := json.Marshal(events.SQSEvent{Records: records})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := lambda.NewHandler(h.fn.Handle).Invoke(ctx, payload)
	if err != nil {
		return nil, err
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("answer %s: %w", out, err)
	}
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids, nil
}

// assertChaosOutcome: one complete user and one welcome per person, the
// strangers untouched, and no other user.
func assertChaosOutcome(t *testing.T, fakes *awstest.Fakes, people int, strangers map[string]bool) {
	t.Helper()
	looker, sendgrid := awstest.Server[*lookertest.Server](t, fakes), awstest.Server[*sendgridtest.Server](t, fakes)
	viewer, analysts := looker.RoleID("Viewer"), looker.GroupID("Analysts")
	byEmail := map[string][]lookertest.User{}
	for _, u := range looker.Users() {
		switch {
		case strangers[u.ID]:
			if u.CredentialsEmail != nil || len(u.RoleIDs) != 0 || len(u.GroupIDs) != 0 {
				t.Errorf("stranger %s (%s %s) was adopted or changed: %+v", u.ID, u.FirstName, u.LastName, u)
			}
		case u.CredentialsEmail == nil:
			t.Errorf("orphan: user %s (%q %q) has no login", u.ID, u.FirstName, u.LastName)
		default:
			email := strings.ToLower(u.CredentialsEmail.Email)
			byEmail[email] = append(byEmail[email], u)
		}
	}
	welcomes := map[string]int{}
	for _, m := range sendgrid.Messages() {
		for _, to := range m.To {
			welcomes[strings.ToLower(to.Email)]++
		}
		if !strings.Contains(m.Text, "/account/setup/") {
			t.Errorf("welcome to %v without a setup link", m.To)
		}
	}
	for i := range people {
		email, first, last := chaosPerson(i)
		users := byEmail[email]
		if len(users) != 1 {
			t.Errorf("%s has %d Looker users, want 1", email, len(users))
			continue
		}
		u := users[0]
		if u.FirstName != first || u.LastName != last || u.IsDisabled {
			t.Errorf("%s: user %+v", email, u)
		}
		if roles := looker.UserRoleIDs(u.ID); !slices.Equal(roles, []string{viewer}) {
			t.Errorf("%s: roles %v, want [%s]", email, roles, viewer)
		}
		if groups := looker.UserGroupIDs(u.ID); !slices.Equal(groups, []string{analysts}) {
			t.Errorf("%s: groups %v, want [%s]", email, groups, analysts)
		}
		if attrs := looker.UserAttributeValues(u.ID); attrs["department"] != "analytics" {
			t.Errorf("%s: attributes %v", email, attrs)
		}
		if welcomes[email] != 1 {
			t.Errorf("%s got %d welcome emails, want 1", email, welcomes[email])
		}
		delete(byEmail, email)
		delete(welcomes, email)
	}
	for email, users := range byEmail {
		t.Errorf("users for %s, who was never sent: %+v", email, users)
	}
	for email, n := range welcomes {
		t.Errorf("%d welcome emails to %s, who was never sent", n, email)
	}
}

package lambdaapi_test

import (
	"fmt"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/functions/aws/internal/awstest"
)

// aacHarness runs the function with the AAC example profile (Looker and
// AAC) against fakes of both.
func aacHarness(t *testing.T) (*harness, *aactest.Server) {
	t.Helper()
	fakes := awstest.StartFor(t, "onboard-aac.yaml")
	return harnessFor(t, fakes, nil, 0, nil), awstest.Server[*aactest.Server](t, fakes)
}

// An SQS batch of ten runs eight records at a time, yet its invites reach
// AAC as one batch call.
func TestSQSBatchMakesOneAACInviteCall(t *testing.T) {
	h, fake := aacHarness(t)
	var records []events.SQSMessage
	for i := range 10 {
		records = append(records, awstest.SQSRecord(fmt.Sprintf("m%d", i), fmt.Sprintf(`{"email":"person%d@example.com"}`, i)))
	}
	if failed := h.sqs(t, records...); len(failed) != 0 {
		t.Fatalf("batchItemFailures %v, want none", failed)
	}
	if sizes := fake.InviteSizes(); len(sizes) != 1 || sizes[0] != 10 {
		t.Fatalf("invite calls carried %v people, want one call for all 10", sizes)
	}
	for i := range 10 {
		if _, ok := h.looker.UserByEmail(fmt.Sprintf("person%d@example.com", i)); !ok {
			t.Errorf("person%d is not in Looker", i)
		}
	}
}

// A FIFO group's records run one after another, so a later record cannot
// share the first call; but nothing waits for it either: the first call
// carries every group's first record, and the batch finishes.
func TestSQSFIFOGroupsShareTheFirstAACInviteCall(t *testing.T) {
	h, fake := aacHarness(t)
	var records []events.SQSMessage
	add := func(id, group string) {
		r := awstest.SQSRecord(id, fmt.Sprintf(`{"email":"%s@example.com"}`, id))
		r.Attributes["MessageGroupId"] = group
		records = append(records, r)
	}
	add("g1-first", "g1")
	add("g1-second", "g1")
	add("g1-third", "g1")
	for i := range 5 {
		add(fmt.Sprintf("solo%d", i), fmt.Sprintf("s%d", i))
	}
	if failed := h.sqs(t, records...); len(failed) != 0 {
		t.Fatalf("batchItemFailures %v, want none", failed)
	}
	sizes := fake.InviteSizes()
	if len(sizes) != 3 || sizes[0] != 6 {
		t.Fatalf("invite calls carried %v people, want 6 (every group's first), then 1 and 1", sizes)
	}
}

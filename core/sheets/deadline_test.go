package sheets

import (
	"context"
	"testing"
	"time"
)

// A Lambda's minute leaves the rows fifty seconds and the write-back ten.
func TestRowsStopASixthOfThePollsTimeEarly(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx, stop := keepForWriteBack(parent)
	defer stop()
	parentDeadline, _ := parent.Deadline()
	deadline, ok := ctx.Deadline()
	if kept := parentDeadline.Sub(deadline); !ok || kept < 9*time.Second || kept > 10*time.Second {
		t.Errorf("the rows stop %s before the poll's deadline, want 10s", kept)
	}
	unbounded, stop := keepForWriteBack(context.Background())
	defer stop()
	if _, ok := unbounded.Deadline(); ok {
		t.Error("a poll without a deadline (onboard sheets sync) got one")
	}
}

package aac_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac/aactest"
)

// BenchmarkBulkInvites runs a 20-person bulk body against an AAC that takes
// 20 ms per answer, beside a target that takes 300 ms per person (Looker's
// order), four people at a time as the HTTP handler does. "event-batch" is
// today's core.Batch; "window-only" bounds the same work with a plain
// semaphore, as before core.Batch, so only the micro-batch window gathers
// invites. Compare invite-calls/op and ns/op side by side.
func BenchmarkBulkInvites(b *testing.B) {
	const people, concurrency = 20, 4
	for _, mode := range []string{"event-batch", "window-only"} {
		b.Run(mode, func(b *testing.B) {
			w := newWorld(b, aactest.Options{Latency: 20 * time.Millisecond}, nil)
			w.seedSecret(workspace, w.wsID)
			e := engineFor(b, w)
			b.ResetTimer()
			for n := range b.N {
				req := func(i int) core.Request {
					return core.Request{Action: core.ActionProvision, Email: fmt.Sprintf("bench%d-%d@example.com", n, i)}
				}
				if mode == "event-batch" {
					batch := core.NewBatch(concurrency)
					batch.Add(people)
					for i := range people {
						_ = batch.Go(context.Background(), func(ctx context.Context) { _, _ = e.Handle(ctx, req(i), core.Meta{}) },
							func(e error) { b.Errorf("panic: %v", errors.Unwrap(e)) })
					}
					batch.Wait()
					continue
				}
				slots := make(chan struct{}, concurrency)
				done := make(chan struct{}, people)
				for i := range people {
					slots <- struct{}{}
					go func() {
						defer func() { <-slots; done <- struct{}{} }()
						_, _ = e.Handle(context.Background(), req(i), core.Meta{})
					}()
				}
				for range people {
					<-done
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(len(w.fake.InviteSizes()))/float64(b.N), "invite-calls/op")
		})
	}
}

package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/sheets"
	"github.com/onboard-dev/onboard/core/sheets/sheetstest"
)

// sandboxPollEvery is how often serve polls a sandbox sheet: a newcomer
// sees rows get their status in seconds rather than the deployed minutes.
const sandboxPollEvery = 10 * time.Second

// pollSheets runs each scheduled poll of the policy while serve runs, as
// the deployment's schedule does: every sheet's `every`, or
// sandboxPollEvery when the sheets are the sandbox's fake. Each run logs its
// outcome (the "sheet row done" lines). The returned stop waits for a poll
// under way to finish.
func pollSheets(ctx context.Context, a *app.App, faked bool) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, s := range app.Schedules(a.Config) {
		every := s.Every
		if faked {
			every = sandboxPollEvery
		}
		wg.Go(func() {
			for {
				_ = a.RunTask(ctx, s.Task, nil)
				select {
				case <-ctx.Done():
					return
				case <-time.After(every):
				}
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// sheetsView shows the sandbox's fake sheets as text, status column and
// all, so a newcomer can watch rows get their outcome.
func sheetsView(fake *sheetstest.Server, list []sheets.Sheet) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, s := range list {
			tab := s.Tab
			if tab == "" {
				tab = sheets.SandboxTab
			}
			fmt.Fprintf(w, "%s, tab %q:\n", s.SpreadsheetID, tab)
			for i, row := range fake.Values(s.SpreadsheetID, tab) {
				fmt.Fprintf(w, "  %d | %s\n", i+1, strings.Join(row, " | "))
			}
		}
	}
}

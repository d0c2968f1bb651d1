package plugin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/plugin"
)

// A schedule says the same as a cron line and as an EventBridge rate.
func TestScheduleAsCronAndRate(t *testing.T) {
	for _, c := range []struct {
		every      time.Duration
		cron, rate string
	}{
		{time.Minute, "*/1 * * * *", "rate(1 minute)"},
		{5 * time.Minute, "*/5 * * * *", "rate(5 minutes)"},
		{30 * time.Minute, "*/30 * * * *", "rate(30 minutes)"},
		{time.Hour, "0 */1 * * *", "rate(1 hour)"},
		{6 * time.Hour, "0 */6 * * *", "rate(6 hours)"},
		{24 * time.Hour, "0 0 * * *", "rate(24 hours)"},
	} {
		if err := plugin.CheckEvery(c.every); err != nil {
			t.Errorf("%s: %v", c.every, err)
		}
		s := plugin.Schedule{Every: c.every}
		if s.Cron() != c.cron || s.Rate() != c.rate {
			t.Errorf("%s: %q %q, want %q %q", c.every, s.Cron(), s.Rate(), c.cron, c.rate)
		}
	}
}

// An interval no cron line can say is refused, naming the ones that work.
func TestScheduleRefusesIntervalsCronCannotSay(t *testing.T) {
	for _, every := range []time.Duration{0, 30 * time.Second, 90 * time.Second, 7 * time.Minute, 45 * time.Minute, 5 * time.Hour, 48 * time.Hour} {
		err := plugin.CheckEvery(every)
		if err == nil || !strings.Contains(err.Error(), "minutes dividing an hour") {
			t.Errorf("%s: %v", every, err)
		}
	}
}

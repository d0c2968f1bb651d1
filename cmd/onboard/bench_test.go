package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/onboard-dev/onboard/core/looker"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/internal/fakehttp"
)

// BenchmarkImportUnderRateLimit runs `onboard import` (the built CLI) of
// new people at --concurrency 4, 16 and 64 side by side, each against its
// own fake Looker allowing 40 calls a second (429 with Retry-After
// beyond), with no ceiling configured, so the pace is all learned. It
// reports, per concurrency, the rate achieved as a share of the rate
// allowed, the share of Looker calls refused with 429, and the CLI's peak
// RSS.
func BenchmarkImportUnderRateLimit(b *testing.B) {
	bin := buildCLI(b)
	people := fakehttp.BenchPeople(b)
	dir := b.TempDir()
	csvPath := filepath.Join(dir, "people.csv")
	var csv strings.Builder
	csv.WriteString("email,name\n")
	for i := range people {
		fmt.Fprintf(&csv, "bulk-%d@example.com,Bulk Person%d\n", i, i)
	}
	if err := os.WriteFile(csvPath, []byte(csv.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	cfgPath, err := filepath.Abs(filepath.Join("..", "..", "testdata", "onboard.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := targets.LoadConfig(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	concurrencies := []int{4, 16, 64}
	for b.Loop() {
		var wg sync.WaitGroup
		results := make([]importRun, len(concurrencies))
		for i, c := range concurrencies {
			fake := lookertest.NewTestServer(b, lookertest.Options{ClientSecret: "bench-secret"})
			looker.SeedFake(fake, cfg)
			throttle := fakehttp.NewThrottle(b, fake.URL, fakehttp.Allowed, fakehttp.AllowedBurst)
			wg.Go(func() {
				results[i] = runImport(b, bin, csvPath, cfgPath, c, throttle)
				if n := len(fake.Users()); n != people {
					b.Errorf("--concurrency %d: %d users made in Looker, want %d", c, n, people)
				}
			})
		}
		wg.Wait()
		for i, c := range concurrencies {
			r := results[i]
			b.ReportMetric(r.achieved, fmt.Sprintf("achieved/allowed@c%d", c))
			b.ReportMetric(r.refusedShare*100, fmt.Sprintf("%%refused@c%d", c))
			b.ReportMetric(r.peakRSSMiB, fmt.Sprintf("peak-RSS-MiB@c%d", c))
		}
	}
}

type importRun struct{ achieved, refusedShare, peakRSSMiB float64 }

func runImport(tb testing.TB, bin, csvPath, cfgPath string, concurrency int, throttle *fakehttp.Throttle) importRun {
	cmd := exec.Command(bin, "import", "--concurrency", strconv.Itoa(concurrency), csvPath)
	cmd.Dir = tb.TempDir()
	cmd.Env = append(cleanEnv(),
		"ONBOARD_CONFIG="+cfgPath,
		"ONBOARD_STORE=file:"+filepath.Join(cmd.Dir, "state"),
		"LOOKERSDK_BASE_URL="+throttle.URL,
		"LOOKERSDK_CLIENT_ID="+lookertest.DefaultClientID,
		"LOOKERSDK_CLIENT_SECRET=bench-secret",
		"LOOKERSDK_MAX_RPS=0",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Errorf("--concurrency %d: import failed: %v\n%s", concurrency, err, tail(out, 2000))
	}
	var rssKiB int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rssKiB = ru.Maxrss
	}
	return importRun{achieved: throttle.Achieved(), refusedShare: throttle.RefusedShare(), peakRSSMiB: float64(rssKiB) / 1024}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

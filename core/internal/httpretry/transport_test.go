package httpretry

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Rounds of concurrent calls reuse the first round's connections: with
// net/http's default transport all but two are closed after each round.
func TestTransportKeepsARoundsConnections(t *testing.T) {
	const width = 8
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	client := &http.Client{Transport: NewTransport()}
	for range 3 {
		var wg sync.WaitGroup
		// Every call of a round holds its connection until all have one.
		var started sync.WaitGroup
		started.Add(width)
		for range width {
			wg.Go(func() {
				resp, err := client.Get(srv.URL)
				started.Done()
				if err != nil {
					t.Error(err)
					return
				}
				started.Wait()
				resp.Body.Close()
			})
		}
		wg.Wait()
		// A connection goes back to the pool in the transport's own
		// goroutine, after Close returns.
		time.Sleep(20 * time.Millisecond)
	}
	// net/http's default transport opens 8+6+6 here.
	if n, most := opened.Load(), int32(width); n > most {
		t.Errorf("three rounds of %d calls opened %d connections, want at most %d", width, n, most)
	}
}

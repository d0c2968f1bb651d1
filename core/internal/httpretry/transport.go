package httpretry

import "net/http"

// IdleConnsPerHost is how many idle connections a target's client keeps
// to each host: enough for several requests' widest rounds (a Looker new
// user's four calls at once, an AAC or Periscope bulk body's people in
// parallel) to find theirs open. net/http's default of two closed the rest
// after each round, so the next round paid a TCP and TLS handshake per
// call again, on its critical path.
const IdleConnsPerHost = 32

// NewTransport is net/http's default transport keeping IdleConnsPerHost.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = IdleConnsPerHost
	return t
}

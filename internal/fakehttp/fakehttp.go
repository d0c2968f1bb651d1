// Package fakehttp holds what every fake SaaS server needs and no vendor
// defines: ways to fail like a network does.
package fakehttp

import "net/http"

// DropConnection closes the client's connection without an answer, the way
// a crashed server or a load balancer reset looks to a client.
func DropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // net/http aborts the response instead
}

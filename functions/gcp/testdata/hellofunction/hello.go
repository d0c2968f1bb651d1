// Package hello is the smallest functions-framework-go function: one HTTP
// function answering 200. BenchmarkColdStart builds it as its own module
// root, the way scripts/build-gcp.sh builds onboard, as the yardstick of
// onboard's start-up and size.
package hello

import (
	"net/http"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
)

func init() {
	functions.HTTP("Hello", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("hello\n"))
	})
}

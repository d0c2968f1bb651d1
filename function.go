// Package onboard registers onboard's Cloud Functions. The Go buildpack only
// reads the package at the module root, so this is all that lives here; the
// code is under core/ and functions/.
package onboard

import (
	// The buildpack generates a main that serves what this package registers
	// only when this package imports the functions package itself; otherwise
	// its main calls onboard.<entry point>, which does not exist, and the
	// deploy fails to build. scripts/build-gcp.sh checks this.
	_ "github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/onboard-dev/onboard/functions/gcp"
)

func init() { gcp.Register() }

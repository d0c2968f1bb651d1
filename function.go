// Package onboard registers onboard's Cloud Functions. The Go buildpack only
// reads the package at the module root, so this is all that lives here; the
// code is under core/ and functions/.
package onboard

import "github.com/onboard-dev/onboard/functions/gcp"

func init() { gcp.Register() }

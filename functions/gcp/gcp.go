// Package gcp holds onboard's Google Cloud Functions entry points. It only
// translates: requests go to the shared core, answers come back unchanged.
package gcp

import (
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/onboard-dev/onboard/core/app"
)

// Register starts building the instance (config, secrets, Looker login) in
// the background and registers the functions, so a cold start overlaps that
// work with the framework's own start-up.
func Register() {
	instance := app.Start(app.Options{})
	functions.HTTP("ProvisionHTTP", instance.ServeHTTP)
}

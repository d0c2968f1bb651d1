// Package gcp holds onboard's Google Cloud Functions entry points. It only
// translates: requests go to the shared core, answers come back unchanged.
package gcp

import (
	"net/http"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/sheets/gsheets"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/firestorestore"
)

// Functions are the entry points of one instance. Register binds them to the
// functions framework; tests bind them to an instance built against fakes.
type Functions struct {
	instance *app.Instance
}

// New returns the entry points serving instance.
func New(instance *app.Instance) *Functions { return &Functions{instance: instance} }

// Options are what the deployed function builds its instance with. Only
// this cloud's secret manager and database are offered, so the Lambda build
// never links Google's clients and vice versa.
func Options() app.Options {
	return app.Options{
		SecretBackends: map[string]app.SecretBackend{"gcp": SecretManager()},
		StoreBackends:  map[string]state.Backend{"firestore": firestorestore.Backend},
		// A file store would be per instance (and lost with it), so
		// idempotency would not hold across instances: Firestore unless
		// ONBOARD_STORE says otherwise.
		DefaultStore: "firestore",
		Deployed:     true,
		// Cloud Scheduler's sheet polls read the sheets as the function's
		// own service account.
		SourceClients: map[string]plugin.SourceClient{"sheets": gsheets.Connect},
	}
}

// Register starts building the instance (config, secrets, Looker login) in
// the background and registers the functions, so a cold start overlaps that
// work with the framework's own start-up.
func Register() {
	f := New(app.Start(Options()))
	functions.HTTP("ProvisionHTTP", f.ProvisionHTTP)
	functions.CloudEvent("ProvisionPubSub", f.ProvisionPubSub)
}

// ProvisionHTTP answers webhooks (Zapier, Apps Script, any form).
func (f *Functions) ProvisionHTTP(w http.ResponseWriter, r *http.Request) {
	f.instance.ServeHTTP(w, r)
}

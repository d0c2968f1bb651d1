//go:build !onboard_nofakes

package periscope

import (
	"crypto/rand"
	"encoding/json"
	"net/http"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/periscope/periscopetest"
	"github.com/onboard-dev/onboard/core/plugin"
)

func init() {
	plugin.RegisterFake(Plugin.Name, func(cfg *core.Config, _ string) (*plugin.Fake, error) { return StartFake(cfg) })
}

// StartFake runs one fake for every site the profiles name. Groups are not
// seeded: onboard ensures them, which the sandbox shows.
func StartFake(cfg *core.Config) (*plugin.Fake, error) {
	keys := map[string]string{}
	for _, site := range Sites(cfg) {
		keys[site] = "sandbox-" + rand.Text()
	}
	srv := periscopetest.NewServer(periscopetest.Options{Sites: keys})
	doc, _ := json.Marshal(keys) // a map of strings always encodes
	return &plugin.Fake{
		Settings: map[string]string{SettingBaseURL: srv.URL, SettingName: string(doc)},
		Server:   srv, Close: srv.Close,
		Writes: func() []string {
			var writes []string
			for _, r := range srv.Requests() {
				if r.Method != http.MethodGet {
					writes = append(writes, r.Method+" "+r.Path+" "+r.Email)
				}
			}
			return writes
		},
	}, nil
}

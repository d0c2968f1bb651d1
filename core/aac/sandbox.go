//go:build !onboard_nofakes

package aac

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/plugin"
)

func init() {
	plugin.RegisterFake(Plugin.Name, func(cfg *core.Config, _ string) (*plugin.Fake, error) { return StartFake(cfg) })
}

// StartFake runs a fake Alteryx Analytics Cloud: every workspace the
// profiles name exists, with the roles they name (held by its admin, which
// is how onboard finds role objects), and each has a fresh token chain
// whose first refresh token onboard gets in AAC_REFRESH_TOKENS, as an admin
// would give it. The fake's tokens rotate and die once used, like AAC's.
// It listens on a new port each run, and chains are stored per AAC host,
// so a run never meets a previous run's dead chain.
func StartFake(cfg *core.Config) (*plugin.Fake, error) {
	roles := map[string][]string{}
	for _, name := range cfg.ProfileNames() {
		if ap := ProfileOf(cfg.Profiles[name]); ap != nil {
			roles[ap.Workspace] = append(roles[ap.Workspace], ap.Roles...)
		}
	}
	srv := aactest.NewServer(aactest.Options{})
	seeds := map[string]string{}
	for ws, rs := range roles {
		slices.Sort(rs)
		seeds[ws] = srv.NewWorkspaceGrant(srv.AddWorkspace(ws, slices.Compact(rs)...)).RefreshToken
	}
	doc, _ := json.Marshal(seeds) // a map of strings always encodes
	return &plugin.Fake{
		Settings: map[string]string{
			SettingBaseURL:       srv.URL,
			SettingRefreshTokens: string(doc),
			// A bare refresh token says nothing of where to refresh it.
			SettingTokenURL: srv.TokenURL(),
			SettingClientID: srv.ClientID(),
		},
		Server: srv, Close: srv.Close,
		Writes: func() []string {
			var writes []string
			for _, r := range srv.Requests("") {
				if r.Method != http.MethodGet && r.Op != aactest.OpToken {
					writes = append(writes, r.Method+" "+r.Path)
				}
			}
			return writes
		},
	}, nil
}

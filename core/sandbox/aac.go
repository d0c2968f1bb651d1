package sandbox

import (
	"encoding/json"
	"os"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/aac/aactest"
)

// startAAC runs a fake Alteryx Analytics Cloud when a profile configures
// aac: every workspace the profiles name exists, with the roles they name
// (held by its admin, which is how onboard finds role objects), and each
// has a fresh token chain whose first refresh token onboard gets as
// AAC_REFRESH_TOKENS, as an admin would give it. The fake's tokens rotate
// and die once used, like AAC's. The fake listens on a new port each run,
// and chains are stored per AAC host, so a run never meets a previous run's
// dead chain. A real AAC_BASE_URL in the environment is left alone: sandbox
// mode is about Looker, and a real AAC's chains must not be touched.
func (s *Sandbox) startAAC(cfg *core.Config) {
	if os.Getenv("AAC_BASE_URL") != "" {
		return
	}
	roles := map[string][]string{}
	for _, name := range cfg.ProfileNames() {
		if ap := aac.ProfileOf(cfg.Profiles[name]); ap != nil {
			roles[ap.Workspace] = append(roles[ap.Workspace], ap.Roles...)
		}
	}
	if len(roles) == 0 {
		return
	}
	s.AAC = aactest.NewServer(aactest.Options{})
	seeds := map[string]string{}
	for ws, rs := range roles {
		seeds[ws] = s.AAC.NewWorkspaceGrant(s.AAC.AddWorkspace(ws, unique(rs)...)).RefreshToken
	}
	doc, _ := json.Marshal(seeds) // a map of strings always encodes
	s.Env["AAC_BASE_URL"] = s.AAC.URL
	s.Env["AAC_REFRESH_TOKENS"] = string(doc)
	// A bare refresh token says nothing of where to refresh it.
	s.Env["AAC_TOKEN_URL"] = s.AAC.TokenURL()
	s.Env["AAC_CLIENT_ID"] = s.AAC.ClientID()
}

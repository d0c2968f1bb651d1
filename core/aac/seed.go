package aac

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core/state"
)

// Credentials are what AAC's "Generate" dialog shows once: the refresh
// token, and the access token issued with it. The access token is optional;
// its claims name the token endpoint and client id, and while it is fresh
// the first request needs no refresh at all.
type Credentials struct {
	RefreshToken string `json:"refresh_token"`
	AccessToken  string `json:"access_token,omitempty"`
}

// ParseCredentials reads a pasted seed: a bare refresh token, or a JSON
// object with refresh_token (and access_token), the creds.json shape
// Alteryx's own examples keep. Errors never echo the input.
func ParseCredentials(input string) (Credentials, error) {
	input = strings.TrimSpace(input)
	var c Credentials
	if strings.HasPrefix(input, "{") {
		if err := json.Unmarshal([]byte(input), &c); err != nil {
			return c, errors.New(`not a JSON object like {"access_token":"…","refresh_token":"…"}`)
		}
	} else {
		c.RefreshToken = input
	}
	c.RefreshToken, c.AccessToken = strings.TrimSpace(c.RefreshToken), strings.TrimSpace(c.AccessToken)
	switch {
	case c.RefreshToken == "":
		return c, errors.New("no refresh token given")
	case strings.ContainsAny(c.RefreshToken+c.AccessToken, " \t\r\n"):
		return c, errors.New("a token cannot contain spaces or line breaks: paste one token (or one JSON object)")
	}
	return c, nil
}

// Seed makes creds the live head of the chain under key (WorkspaceChainKey
// or AccountChainKey), replacing whatever is stored: this is how an admin
// repairs a broken chain or starts one for a new workspace. It returns the
// head it replaced, if any, for the admin's information.
func Seed(ctx context.Context, store state.Store, key string, creds Credentials, by string) (replaced *ChainInfo, err error) {
	st := chainState{RefreshToken: creds.RefreshToken, Source: SourceSeedToken, UpdatedAt: time.Now().UTC(), UpdatedBy: by}
	if cl := readClaims(creds.AccessToken); creds.AccessToken != "" {
		st.TokenURL, st.ClientID = tokenURLFromIssuer(cl.Iss), cl.ClientID
		if exp := cl.expiry(); time.Now().Before(exp) {
			issued := cl.issued()
			if issued.IsZero() {
				issued = exp.Add(-assumedLifetime)
			}
			st.AccessToken, st.Expiry, st.RefreshAfter = creds.AccessToken, exp.UTC(), refreshAfter(issued, exp).UTC()
		}
	}
	data, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	for range 5 {
		cur, err := store.Get(ctx, key)
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return nil, err
		}
		if _, err = store.Put(ctx, key, data, cur.Version, 0); errors.Is(err, state.ErrConflict) {
			continue // an instance rotated meanwhile; replace its head all the same
		}
		if err != nil {
			return nil, err
		}
		if cur.Version == 0 {
			return nil, nil
		}
		info := infoOf(cur.Data)
		return &info, nil
	}
	return nil, state.ErrConflict
}

// ChainInfo describes a stored chain head without its tokens.
type ChainInfo struct {
	Source       string
	UpdatedAt    time.Time
	UpdatedBy    string
	AccessExpiry time.Time
}

func infoOf(data []byte) ChainInfo {
	var st chainState
	_ = json.Unmarshal(data, &st)
	return ChainInfo{Source: st.Source, UpdatedAt: st.UpdatedAt, UpdatedBy: st.UpdatedBy, AccessExpiry: st.Expiry}
}

package aac

import "testing"

// The token endpoint as AAC's page shows it lacks /token; Alteryx's guide
// says to append it, and the issuer claim needs the same.
func TestTokenURLFromIssuer(t *testing.T) {
	for in, want := range map[string]string{
		"https://pingauth.alteryxcloud.com/as":              "https://pingauth.alteryxcloud.com/as/token",
		"https://pingauth.alteryxcloud.com/as/":             "https://pingauth.alteryxcloud.com/as/token",
		"https://pingauth-us1-4.alteryxcloud.com/as/token":  "https://pingauth-us1-4.alteryxcloud.com/as/token",
		"https://sso.example.com/as/token.oauth2":           "https://sso.example.com/as/token.oauth2",
		"https://pingauth.alteryxcloud.com/tokens-are-here": "https://pingauth.alteryxcloud.com/tokens-are-here",
		"": "",
	} {
		if got := tokenURLFromIssuer(in); got != want {
			t.Errorf("tokenURLFromIssuer(%q) = %q, want %q", in, got, want)
		}
	}
}

// A token endpoint named by unverified claims is used only on Alteryx's
// identity hosts or AAC_BASE_URL's own host.
func TestTrustsTokenURL(t *testing.T) {
	cfg := &Config{BaseURL: "https://us1.alteryxcloud.com"}
	for raw, want := range map[string]bool{
		"https://pingauth.alteryxcloud.com/as/token":        true,
		"https://pingauth-us1-4.alteryxcloud.com/as/token":  true,
		"https://PingAuth.AlteryxCloud.com/as/token":        true,
		"https://us1.alteryxcloud.com/as/token":             true, // AAC_BASE_URL's host
		"http://pingauth.alteryxcloud.com/as/token":         false,
		"https://pingauth.alteryxcloud.com:8443/as/token":   false,
		"https://pingauth.alteryxcloud.com.evil.example/as": false,
		"https://pingauth.alteryxcloud.com@evil.example/as": false,
		"https://evil-pingauth.alteryxcloud.com/as/token":   false,
		"https://pingauth-.alteryxcloud.com/as/token":       false,
		"https://pingauthx.alteryxcloud.com/as/token":       false,
		"https://pingauth-a.b.alteryxcloud.com/as/token":    false,
		"https://pingauth-a_b.alteryxcloud.com/as/token":    false,
		"https://x.pingauth.alteryxcloud.com/as/token":      false,
		"https://alteryxcloud.com/as/token":                 false,
		"https://workspace.us1.alteryxcloud.com/as/token":   false, // a customer-named workspace host
		"https://us1.alteryxcloud.com:444/as/token":         false,
		"http://us1.alteryxcloud.com/as/token":              false,
		"https://evil.example/as/token":                     false,
		"https://pingauth.alteryxcloud.com/as/token?x=1":    false,
		"https:pingauth.alteryxcloud.com/as/token":          false,
		"": false,
	} {
		if got := cfg.trustsTokenURL(raw); got != want {
			t.Errorf("trustsTokenURL(%q) = %v, want %v", raw, got, want)
		}
	}
}

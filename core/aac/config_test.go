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

// Package leakcheck finds secrets in text in any form an upstream, a proxy
// or a library could have echoed them in. Tests run it over answers, logs and
// audit records. It is written apart from logging.Redactor, so that it
// checks the redactor rather than mirrors it.
package leakcheck

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// Find returns one line per secret found in text, naming the secret (by
// the key it has in secrets) and the form it was found in; nil when none is.
func Find(text string, secrets map[string]string) []string {
	lower := strings.ToLower(text)
	var found []string
	for name, secret := range secrets {
		for form, f := range forms(secret) {
			// Case-insensitive: percent escapes and hex come in either case.
			if strings.Contains(lower, strings.ToLower(f)) {
				found = append(found, fmt.Sprintf("%s (%s)", name, form))
				break
			}
		}
	}
	return found
}

func forms(secret string) map[string]string {
	jsonOnce := jsonEscape(secret)
	out := map[string]string{
		"raw":          secret,
		"query escape": url.QueryEscape(secret),
		"path escape":  url.PathEscape(secret),
		"JSON":         jsonOnce,
		"JSON twice":   jsonEscape(jsonOnce), // a JSON body quoted in a JSON log line
		"hex":          hex.EncodeToString([]byte(secret)),
	}
	for offset := range 3 {
		for name, enc := range map[string]*base64.Encoding{"base64": base64.StdEncoding, "base64url": base64.URLEncoding} {
			for _, v := range []string{secret, url.QueryEscape(secret)} {
				b := enc.EncodeToString(append(make([]byte, offset), v...))
				// Inner characters only: those at the ends also carry bits
				// of whatever surrounds the secret.
				if len(b) > 12 {
					b = b[4 : len(b)-4]
				}
				out[fmt.Sprintf("%s at offset %d of %q", name, offset, v)] = b
			}
		}
	}
	return out
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return strings.TrimSuffix(strings.TrimPrefix(string(b), `"`), `"`)
}

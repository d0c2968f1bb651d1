package core

import (
	"strings"
	"testing"
)

// The fuzz targets of the decoders core owns. `make fuzz` runs each for a
// bounded time; `go test` replays the seeds below and testdata/fuzz.

func FuzzNormalizeEmail(f *testing.F) {
	for _, seed := range []string{
		"ada@example.com", " Ada.L@EXAMPLE.Com ", "jose@Bücher.example", "a@xn--.example.com", "a@xn--bcher-kva.example",
		"Ada <ada@example.com>", "ad\u200ba@example.com", "\u0430da@example.com", "иван@пример.рф", "a@b", "a@-b.com",
		`"a b"@example.com`, "a@example.com.", "a@@example.com",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		email, err := NormalizeEmail(raw)
		if err != nil {
			if AsError(err).Field != "email" {
				t.Fatalf("refusal names field %q, want email", AsError(err).Field)
			}
			return
		}
		again, err := NormalizeEmail(email)
		if err != nil || again != email {
			t.Fatalf("NormalizeEmail(%q) = %q, but normalising that gives %q, %v", raw, email, again, err)
		}
		if strings.Count(email, "@") != 1 {
			t.Fatalf("accepted %q has %d @", email, strings.Count(email, "@"))
		}
		domain := EmailDomain(email)
		if !validHostname(domain) || domain != strings.ToLower(domain) {
			t.Fatalf("accepted %q has domain %q, not a lower-case ASCII hostname", email, domain)
		}
	})
}

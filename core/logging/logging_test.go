package logging

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/internal/leakcheck"
)

// A rotating secret's last two generations are masked and older ones are
// let go, so the masker stays small; fixed secrets stay masked throughout.
func TestRedactorRotate(t *testing.T) {
	var out bytes.Buffer
	r := &Redactor{}
	log := New(&out, slog.LevelInfo, r)
	r.Add("static-SECRET-1")
	r.Rotate("chain", "refresh-GEN-1", "access-GEN-1")
	r.Rotate("chain", "refresh-GEN-2", "access-GEN-2")
	r.Rotate("chain", "refresh-GEN-2", "access-GEN-2") // read again: not a new generation
	log.Info("m", "v", "static-SECRET-1 refresh-GEN-1 access-GEN-2")
	if s := out.String(); strings.Contains(s, "static-SECRET-1") || strings.Contains(s, "refresh-GEN-1") || strings.Contains(s, "access-GEN-2") {
		t.Fatalf("a live value was logged: %s", s)
	}
	r.Rotate("chain", "refresh-GEN-3", "access-GEN-3")
	out.Reset()
	log.Info("m", "v", "refresh-GEN-1 refresh-GEN-2 refresh-GEN-3 static-SECRET-1")
	s := out.String()
	if !strings.Contains(s, "refresh-GEN-1") {
		t.Errorf("a value three generations old is still scanned for: %s", s)
	}
	if strings.Contains(s, "refresh-GEN-2") || strings.Contains(s, "refresh-GEN-3") || strings.Contains(s, "static-SECRET-1") {
		t.Errorf("a value that can still be live was logged: %s", s)
	}
	if n := len(r.rotating["chain"][0]) + len(r.rotating["chain"][1]); n != 4 {
		t.Errorf("the slot holds %d values, want 4", n)
	}
}

// leakySecret has every character class an encoder treats specially.
const leakySecret = `s3cr/t+K&y "<é>?=%`

// echoes are the ways an upstream, a proxy or a library echoes a secret it
// was sent: each must come out masked, wherever it sits in the text.
func echoes(secret string) map[string]string {
	form := url.Values{"client_id": {"abc"}, "client_secret": {secret}}.Encode()
	jsonBody, _ := json.Marshal(map[string]string{"client_secret": secret})
	var plainJSON bytes.Buffer
	enc := json.NewEncoder(&plainJSON)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"token": secret})
	out := map[string]string{
		"raw":                 "refused: " + secret + " is wrong",
		"query escaped":       "echo: " + form,
		"path escaped":        "GET /x/" + url.PathEscape(secret) + "/y",
		"lower-case escapes":  "echo: " + regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(form, strings.ToLower),
		"JSON":                "upstream said " + string(jsonBody),
		"JSON without HTML":   "upstream said " + plainJSON.String(),
		"JSON escaped slash":  `{"token":"` + strings.ReplaceAll(strings.Trim(string(must(json.Marshal(secret))), `"`), "/", `\/`) + `"}`,
		"hex":                 "dump " + hex.EncodeToString([]byte(secret)),
		"HEX":                 "dump " + strings.ToUpper(hex.EncodeToString([]byte(secret))),
		"base64 of the form":  "body=" + base64.StdEncoding.EncodeToString([]byte(form)),
		"base64url raw":       "tok=" + base64.RawURLEncoding.EncodeToString([]byte(secret)) + ".",
		"basic auth":          "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("client:"+secret)),
		"basic auth offset 1": "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("client1:"+secret)),
		"basic auth offset 2": "Authorization: Basic " + base64.URLEncoding.EncodeToString([]byte("client12:"+secret)),
	}
	return out
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestRedactorMasksEncodedForms(t *testing.T) {
	r := &Redactor{}
	r.Add(leakySecret)
	for name, text := range echoes(leakySecret) {
		got := r.Redact(text)
		if found := leakcheck.Find(got, map[string]string{"secret": leakySecret}); found != nil || !strings.Contains(got, Mask) {
			t.Errorf("%s: %q was masked to %q, leaving %v", name, text, got, found)
		}
	}
	if got := r.Redact("nothing to see, 123456"); got != "nothing to see, 123456" {
		t.Errorf("clean text changed: %q", got)
	}
}

// A JSON answer stays valid JSON with every string masked, whatever the
// encoder escaped, and a mask never splits an escape sequence.
func TestRedactJSON(t *testing.T) {
	r := &Redactor{}
	r.Add(leakySecret, "nsecret-tail")
	doc, _ := json.Marshal(map[string]any{
		"error":   "looker: POST /login: 502 " + echoes(leakySecret)["query escaped"],
		"targets": map[string]any{"looker": map[string]any{"changes": []string{"got " + leakySecret}}},
		"nested":  string(must(json.Marshal(map[string]string{"s": leakySecret}))),
		"escape":  "line\nsecret-tail", // "\nsecret-tail" must not become "\[redacted]"
		"count":   12,
	})
	got := r.RedactJSON(doc)
	if !json.Valid(got) {
		t.Fatalf("not JSON any more: %s", got)
	}
	if found := leakcheck.Find(string(got), map[string]string{"secret": leakySecret}); found != nil {
		t.Errorf("%v left in %s", found, got)
	}
	var back map[string]any
	_ = json.Unmarshal(got, &back)
	if back["count"] != float64(12) || back["escape"] != "line\nsecret-tail" {
		t.Errorf("untouched values changed: %s", got)
	}
	if plain := r.RedactJSON([]byte("not json " + leakySecret)); strings.Contains(string(plain), leakySecret) {
		t.Errorf("text that is not JSON was not masked: %s", plain)
	}
}

// A log line masks secrets in its message and in string and error
// attributes, whatever their nesting.
func TestLoggerMasksEveryTextAttribute(t *testing.T) {
	var out bytes.Buffer
	r := &Redactor{}
	log := New(&out, slog.LevelInfo, r)
	r.Add(leakySecret)
	echo := echoes(leakySecret)["query escaped"]
	log.Info("refused: "+echo, "reason", echo, "error", errors.New(echo), slog.Group("upstream", "body", echo))
	if found := leakcheck.Find(out.String(), map[string]string{"secret": leakySecret}); found != nil || strings.Count(out.String(), Mask) != 4 {
		t.Errorf("%v in %s", found, out.String())
	}
}

// Masking runs on every log attribute and every answer: with many secrets
// registered it must stay one cheap pass over the text.
func BenchmarkRedact(b *testing.B) {
	r := &Redactor{}
	for i := range 40 { // random-looking, as keys and tokens are
		sum := sha256.Sum256([]byte{byte(i)})
		r.Add(base64.RawURLEncoding.EncodeToString(sum[:20]))
	}
	line := strings.Repeat("request_id=4f1c2a target=looker operation=POST /users status=201 ", 4)
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Redact(line)
	}
}

package logging

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Mask is what a secret is replaced with.
const Mask = "[redacted]"

// minSecretLen is the shortest value worth registering: masking "1" would
// shred every number in the log.
const minSecretLen = 6

// Redactor masks registered secret values wherever they appear in a log
// line, an answer body, an error or an audit record. Code never shows a
// secret on purpose; this catches the accident (an upstream error echoing a
// token, or the form it was sent in). Each value is also looked for in the
// forms an upstream echoes it in: URL query and path escaping, JSON string
// escaping, base64 (standard and URL alphabets, padded or not, at any offset
// of the encoded text) and hex. The forms are computed when a value is
// registered, so masking is one pass over the text whatever the number of
// secrets. The zero value is ready to use; a nil Redactor masks nothing.
type Redactor struct {
	mu      sync.Mutex // serialises registrations; masking reads matcher only
	secrets []string
	known   map[string]bool
	// rotating holds, per slot, the values of a secret that keeps changing
	// (a token chain's pair): this generation's and the one before.
	rotating map[string][2][]string
	matcher  atomic.Pointer[matcher]
}

// Rotate registers the current values of a secret that changes, such as a
// rotating token pair: they replace the slot's values of two generations
// ago, so a long-lived instance masks what can still be live without
// scanning every token it ever saw. Registering the current values again
// changes nothing.
func (r *Redactor) Rotate(slot string, values ...string) {
	var keep []string
	for _, v := range values {
		if len(v) >= minSecretLen {
			keep = append(keep, v)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rotating == nil {
		r.rotating = map[string][2][]string{}
	}
	gens := r.rotating[slot]
	if slices.Equal(gens[0], keep) {
		return
	}
	r.rotating[slot] = [2][]string{keep, gens[0]}
	r.rebuild()
}

// Add registers secret values; very short ones are ignored.
func (r *Redactor) Add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil {
		r.known = map[string]bool{}
	}
	added := false
	for _, v := range values {
		if len(v) >= minSecretLen && !r.known[v] {
			r.known[v] = true
			r.secrets = append(r.secrets, v)
			added = true
		}
	}
	if added {
		r.rebuild()
	}
}

// rebuild replaces the matcher; r.mu is held.
func (r *Redactor) rebuild() {
	values := slices.Clone(r.secrets)
	for _, gens := range r.rotating {
		for _, gen := range gens {
			values = append(values, gen...)
		}
	}
	r.matcher.Store(newMatcher(values))
}

// Redact returns s with every registered secret, in any of its forms, masked.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	return r.matcher.Load().redact(s)
}

// RedactJSON masks secrets in a JSON document's strings and keeps it valid
// JSON: each string is decoded, masked and encoded again, so a secret is
// found whatever escaping the encoder chose and a mask never splits an
// escape sequence. Text that is not JSON is masked as plain text.
func (r *Redactor) RedactJSON(doc []byte) []byte {
	if r == nil {
		return doc
	}
	m := r.matcher.Load()
	if m == nil || len(doc) < m.minLen {
		return doc
	}
	if !json.Valid(doc) {
		return []byte(m.redact(string(doc)))
	}
	var out []byte
	last := 0
	for i := 0; i < len(doc); i++ {
		if doc[i] != '"' {
			continue
		}
		end := i + 1
		for doc[end] != '"' { // valid JSON: every string is closed
			if doc[end] == '\\' {
				end++
			}
			end++
		}
		literal := doc[i : end+1]
		var s string
		if json.Unmarshal(literal, &s) == nil {
			if masked := m.redact(s); masked != s {
				enc, _ := json.Marshal(masked)
				out = append(append(out, doc[last:i]...), enc...)
				last = end + 1
			}
		}
		i = end
	}
	if out == nil {
		return doc
	}
	return append(out, doc[last:]...)
}

// Scrub masks values in s in every form a Redactor looks for. It is for
// code that shortens upstream text before it reaches a Redactor: a secret's
// encoded form cut in two is no longer found, so masking must come first.
// Values shorter than 4 bytes are not searched for.
func Scrub(s string, values ...string) string {
	var long []string
	for _, v := range values {
		if len(v) >= headLen {
			long = append(long, v)
		}
	}
	if len(long) == 0 {
		return s
	}
	return newMatcher(long).redact(s)
}

// matcher finds every registered form of every secret in one pass: a
// bitmap of the forms' first four bytes (hashed) rules out almost every
// position at the cost of one lookup, and only the rest compare against the
// forms that start there. It is immutable; a registration builds a new one.
type matcher struct {
	minLen int
	starts [1 << 16 / 64]uint64
	forms  map[uint32][]string // by first four bytes, longest first
}

// headLen is how many leading bytes index a form; every form is longer.
const headLen = 4

func headAt(s string, i int) uint32 {
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

// bit spreads a head over the bitmap (Fibonacci hashing).
func bit(head uint32) uint32 { return (head * 2654435761) >> 16 }

func newMatcher(values []string) *matcher {
	m := &matcher{forms: map[uint32][]string{}}
	seen := map[string]bool{}
	for _, v := range values {
		for _, f := range encodings(v) {
			if len(f) < headLen || seen[f] {
				continue
			}
			seen[f] = true
			head := headAt(f, 0)
			b := bit(head)
			m.starts[b/64] |= 1 << (b % 64)
			m.forms[head] = append(m.forms[head], f)
			if m.minLen == 0 || len(f) < m.minLen {
				m.minLen = len(f)
			}
		}
	}
	for _, fs := range m.forms {
		// Longest first, so a secret that contains another is masked whole.
		slices.SortFunc(fs, func(a, b string) int { return len(b) - len(a) })
	}
	return m
}

func (m *matcher) redact(s string) string {
	if m == nil || len(s) < m.minLen {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i+headLen <= len(s); {
		head := headAt(s, i)
		if bt := bit(head); m.starts[bt/64]&(1<<(bt%64)) != 0 {
			if n := m.matchAt(s[i:], head); n > 0 {
				b.WriteString(s[last:i])
				b.WriteString(Mask)
				i += n
				last = i
				continue
			}
		}
		i++
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func (m *matcher) matchAt(s string, head uint32) int {
	for _, f := range m.forms[head] {
		if strings.HasPrefix(s, f) {
			return len(f)
		}
	}
	return 0
}

// encodings returns v in the forms an upstream, a proxy or a library may
// echo it in.
func encodings(v string) []string {
	query, path := url.QueryEscape(v), url.PathEscape(v)
	jsonHTML, jsonPlain := jsonEscape(v, true), jsonEscape(v, false)
	forms := []string{
		v, query, path,
		// Other encoders write percent escapes in lower case, or escape
		// "/" in JSON strings.
		lowerPercentEscapes(query), lowerPercentEscapes(path),
		jsonHTML, jsonPlain,
		strings.ReplaceAll(jsonHTML, "/", `\/`), strings.ReplaceAll(jsonPlain, "/", `\/`),
		hex.EncodeToString([]byte(v)), strings.ToUpper(hex.EncodeToString([]byte(v))),
	}
	// A form body is base64-encoded with the value URL-escaped in it.
	forms = append(forms, base64Fragments(v)...)
	if query != v {
		forms = append(forms, base64Fragments(query)...)
	}
	return forms
}

// base64Fragments returns the base64 text that encodes v wherever v starts
// in the encoded bytes (at offset 0, 1 or 2 of a 3-byte group, as in
// "Basic base64(id:secret)"), in both alphabets, padded or not: the
// characters that depend on v alone. A leftover character at either end
// carries at most 4 bits of v.
func base64Fragments(v string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for offset := range 3 {
			encoded := enc.EncodeToString(append(make([]byte, offset), v...))
			from := (8*offset + 5) / 6      // first character with no bit of the bytes before v
			to := 8 * (offset + len(v)) / 6 // past the last one with no bit of the bytes after v
			out = append(out, encoded[from:to])
		}
	}
	return out
}

func jsonEscape(v string, escapeHTML bool) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(v)
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(buf.String(), "\n"), `"`), `"`)
}

func lowerPercentEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerHex(b[i+1]), lowerHex(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerHex(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

package sheetstest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The JWT-bearer grant (RFC 7523) Google's token endpoint takes for a
// service account, and the scopes that reach the Sheets API.
const (
	jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	tokenLifetime  = time.Hour
	// maxAssertionLife is Google's limit on an assertion's exp - iat.
	maxAssertionLife = time.Hour
	clockSkew        = 5 * time.Minute
)

var (
	readScopes = []string{
		"https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/spreadsheets.readonly",
		"https://www.googleapis.com/auth/drive", "https://www.googleapis.com/auth/drive.readonly",
		"https://www.googleapis.com/auth/drive.file",
	}
	writeScopes = []string{
		"https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive",
		"https://www.googleapis.com/auth/drive.file",
	}
)

// ServiceAccount is a Google service account whose key the fake made.
type ServiceAccount struct {
	Email string
	KeyID string

	key      *rsa.PrivateKey
	tokenURI string
	deleted  bool // the key was deleted: assertions it signs are refused
}

// CredentialsJSON is the account's key file, as the Cloud console
// downloads it, with token_uri pointing at the fake.
func (a *ServiceAccount) CredentialsJSON() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		panic(err)
	}
	b, _ := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  "sheetstest",
		"private_key_id":              a.KeyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                a.Email,
		"client_id":                   "100000000000000000001",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   a.tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/" + url.PathEscape(a.Email),
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	return b
}

// keys are RSA keys shared by every fake in the process, the n-th account
// of each server getting the n-th: making a 2048-bit key takes a good part
// of a second under the race detector.
var keys struct {
	mu   sync.Mutex
	list []*rsa.PrivateKey
}

func sharedKey(n int) *rsa.PrivateKey {
	keys.mu.Lock()
	defer keys.mu.Unlock()
	for len(keys.list) <= n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys.list = append(keys.list, k)
	}
	return keys.list[n]
}

// IssuedTokens are the access tokens the token endpoint has handed out, so
// a test can look for them where no credential may appear (a log).
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.tokens))
}

// NewServiceAccount makes a service account with a key of its own. A
// duplicate email panics.
func (s *Server) NewServiceAccount(email string) *ServiceAccount {
	s.mu.Lock()
	defer s.mu.Unlock()
	if email == "" || s.accounts[email] != nil {
		panic(fmt.Sprintf("sheetstest: service account %q empty or taken", email))
	}
	id := make([]byte, 20)
	_, _ = rand.Read(id)
	a := &ServiceAccount{Email: email, KeyID: hex.EncodeToString(id), key: sharedKey(len(s.accounts)), tokenURI: s.URL + "/token"}
	s.accounts[email] = a
	return a
}

// DeleteKey deletes an account's key, as an admin does in the Cloud
// console: the token endpoint refuses what it signs from now on. Tokens
// already issued last until they expire.
func (s *Server) DeleteKey(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[email]
	if a == nil {
		panic("sheetstest: unknown service account " + email)
	}
	a.deleted = true
}

// grant is what an access token stands for.
type grant struct {
	email   string
	scopes  []string
	expires time.Time
}

// exchange serves POST /token; called with s.mu held.
func (s *Server) exchange(req *Request, audience string) answer {
	form, err := url.ParseQuery(string(req.Body))
	if err != nil {
		return oauthError(http.StatusBadRequest, "invalid_request", "Malformed request body.")
	}
	if grantType := form.Get("grant_type"); grantType != jwtBearerGrant {
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+grantType)
	}
	claims, a, valid := s.verifyAssertion(form.Get("assertion"), audience)
	if !valid {
		return a
	}
	req.Caller = claims.Iss
	token := make([]byte, 32)
	_, _ = rand.Read(token)
	access := "ya29.sheetstest-" + base64.RawURLEncoding.EncodeToString(token)
	s.tokens[access] = grant{email: claims.Iss, scopes: strings.Fields(claims.Scope), expires: s.opts.Now().Add(tokenLifetime)}
	return success(map[string]any{"access_token": access, "expires_in": int(tokenLifetime.Seconds()) - 1, "token_type": "Bearer"})
}

type claimSet struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Exp   int64  `json:"exp"`
	Iat   int64  `json:"iat"`
	Sub   string `json:"sub"`
}

// verifyAssertion checks a signed JWT the way Google's token endpoint does
// for a service account: RS256 by a live key of the account it names, for
// this endpoint, short-lived and current, asking for some scope.
func (s *Server) verifyAssertion(jwt, audience string) (claimSet, answer, bool) {
	badSignature := oauthError(http.StatusBadRequest, "invalid_grant", "Invalid JWT Signature.")
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return claimSet{}, oauthError(http.StatusBadRequest, "invalid_grant", "Invalid JWT: malformed assertion."), false
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var claims claimSet
	if decodeSegment(parts[0], &header) != nil || decodeSegment(parts[1], &claims) != nil {
		return claimSet{}, oauthError(http.StatusBadRequest, "invalid_grant", "Invalid JWT: malformed assertion."), false
	}
	a := s.accounts[claims.Iss]
	if a == nil {
		return claimSet{}, oauthError(http.StatusBadRequest, "invalid_grant", "Invalid grant: account not found"), false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || header.Alg != "RS256" || a.deleted || (header.Kid != "" && header.Kid != a.KeyID) ||
		rsa.VerifyPKCS1v15(&a.key.PublicKey, crypto.SHA256, digest[:], sig) != nil {
		return claimSet{}, badSignature, false
	}
	if claims.Aud != audience {
		return claimSet{}, oauthError(http.StatusBadRequest, "invalid_grant", "Invalid JWT: Failed audience check."), false
	}
	now := s.opts.Now()
	iat, exp := time.Unix(claims.Iat, 0), time.Unix(claims.Exp, 0)
	if exp.Sub(iat) > maxAssertionLife || exp.Before(now) || iat.After(now.Add(clockSkew)) {
		return claimSet{}, oauthError(http.StatusBadRequest, "invalid_grant",
			"Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."), false
	}
	if claims.Sub != "" {
		return claimSet{}, oauthError(http.StatusUnauthorized, "unauthorized_client",
			"Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."), false
	}
	if strings.TrimSpace(claims.Scope) == "" {
		return claimSet{}, oauthError(http.StatusBadRequest, "invalid_scope", "Empty or missing scope not allowed."), false
	}
	return claims, answer{}, true
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func oauthError(status int, code, description string) answer {
	return answer{status: status, body: map[string]string{"error": code, "error_description": description}}
}

// authorize finds the account behind a request's bearer token; called
// with s.mu held.
func (s *Server) authorize(op Op, authorization string) (string, answer, bool) {
	token, found := strings.CutPrefix(authorization, "Bearer ")
	if !found || token == "" {
		return "", googleError(http.StatusForbidden, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."), false
	}
	g, known := s.tokens[token]
	if !known || !s.opts.Now().Before(g.expires) {
		a := statusError(http.StatusUnauthorized)
		a.header = http.Header{"Www-Authenticate": {`Bearer realm="https://accounts.google.com/", error="invalid_token"`}}
		return "", a, false
	}
	allowed := readScopes
	if op.write() {
		allowed = writeScopes
	}
	if !slices.ContainsFunc(g.scopes, func(sc string) bool { return slices.Contains(allowed, sc) }) {
		return "", googleError(http.StatusForbidden, "Request had insufficient authentication scopes.", map[string]any{
			"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
			"domain": "googleapis.com", "metadata": map[string]string{"service": "sheets.googleapis.com"},
		}), false
	}
	return g.email, answer{}, true
}

// window counts one caller's requests of one kind in one minute.
type window struct {
	minute time.Time
	n      int
}

// takeQuota counts a request against its caller's quota, refilled at each
// minute of the clock; called with s.mu held.
func (s *Server) takeQuota(email string, op Op) (answer, bool) {
	limit := s.opts.QuotaPerMinute
	if limit < 0 {
		return answer{}, false
	}
	key := email + " read"
	if op.write() {
		key = email + " write"
	}
	minute := s.opts.Now().Truncate(time.Minute)
	w := s.quota[key]
	if w == nil || !w.minute.Equal(minute) {
		w = &window{minute: minute}
		s.quota[key] = w
	}
	if w.n >= limit {
		return quotaError(op.write(), limit), true
	}
	w.n++
	return answer{}, false
}

// Package sheets reads a Google Sheets tab and writes cells back, through
// Google's own client (google.golang.org/api/sheets/v4) with credentials
// from golang.org/x/oauth2/google: a service account's key
// (GOOGLE_SHEETS_CREDENTIALS) or the application-default credentials.
// Calls go through the retry discipline every target client shares
// (core/internal/httpretry): a 429 is retried after the wait Google asks
// for (the quota's minute when it names none), a 5xx or a lost connection
// after a backoff, and in a plan (core.PlanFrom) a write is recorded and
// never sent. Errors name the spreadsheet and what to do, and carry no
// credential.
package gsheets

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/compute/metadata"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"
	sheetsapi "google.golang.org/api/sheets/v4"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/sheets"
	"github.com/onboard-dev/onboard/core/sheets/internal/a1"
)

// Name is the client's name in plans, the audit log and errors.
const Name = "sheets"

// Scope is the one OAuth scope the client asks for: read and write.
const Scope = sheetsapi.SpreadsheetsScope

// The operations, as plans and errors name them.
const (
	opGet              = "GET /v4/spreadsheets/{spreadsheetId}"
	opValuesGet        = "GET /v4/spreadsheets/{spreadsheetId}/values/{range}"
	opBatchUpdate      = "POST /v4/spreadsheets/{spreadsheetId}:batchUpdate"
	opValuesBatchWrite = "POST /v4/spreadsheets/{spreadsheetId}/values:batchUpdate"
)

// tabFields is all a read asks of spreadsheets.get: each tab's identity,
// place and grid.
const tabFields = "sheets.properties(sheetId,title,index,hidden,gridProperties(rowCount,columnCount))"

// Client reads and writes spreadsheets as one Google account. It is safe
// for concurrent use.
type Client struct {
	svc     *sheetsapi.Service
	caller  httpretry.Caller
	timeout time.Duration
	tokens  *tokenLog
	// account is the email of the identity the client calls as ("" when
	// the credentials do not say); anonymous says whom to share with then.
	account, anonymous string
	// credentialSource names the setting the credentials came from.
	credentialSource string
}

// New builds a client. Errors name the setting at fault and quote no part
// of a key.
func New(ctx context.Context, cfg Config) (*Client, error) {
	base, err := parseBaseURL(cmp.Or(cfg.BaseURL, DefaultBaseURL))
	if err != nil {
		return nil, fmt.Errorf("sheets: %s: %w", BaseURLSetting, err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("sheets: Timeout must not be negative, got %s", cfg.Timeout)
	}
	transport := http.DefaultTransport
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		transport = cfg.HTTPClient.Transport
	}
	c := &Client{timeout: cmp.Or(cfg.Timeout, DefaultTimeout), tokens: &tokenLog{issued: cfg.TokenIssued}}
	// The token exchange runs inside a call's round trip, so it cannot
	// take the call's context: its own client bounds it.
	exchange := &http.Client{Transport: transport, Timeout: c.timeout}
	source, err := c.credentials(context.WithValue(context.Background(), oauth2.HTTPClient, exchange), cfg, base)
	if err != nil {
		return nil, err
	}
	c.tokens.source = source
	hc := &http.Client{Transport: &oauth2.Transport{Source: c.tokens, Base: transport}}
	// The SDK's own debug log (GOOGLE_SDK_GO_LOGGING_LEVEL) would write
	// whole answers, everyone's email in them, past onboard's redacting
	// logger: it gets a logger that drops everything.
	c.svc, err = sheetsapi.NewService(ctx, option.WithHTTPClient(hc), option.WithEndpoint(base.String()+"/"),
		option.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, fmt.Errorf("sheets: %w", err)
	}
	c.caller = httpretry.Caller{Sleep: cfg.Sleep, Policy: httpretry.Policy{
		MaxAttempts: cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts),
		BaseDelay:   cmp.Or(cfg.BaseDelay, DefaultBaseDelay),
		MaxDelay:    cmp.Or(cfg.MaxDelay, DefaultMaxDelay),
	}}
	return c, nil
}

// Account is the email of the account the client calls Google as, the
// one to share spreadsheets with; "" when the credentials do not say.
func (c *Client) Account() string { return c.account }

// keyFile is what the client reads of a credentials file itself.
type keyFile struct {
	Type        string `json:"type"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
	TokenURI    string `json:"token_uri"`
}

// credentials finds the token source, from the key in cfg or the
// application-default credentials, and checks where its tokens come from.
func (c *Client) credentials(ctx context.Context, cfg Config, base *url.URL) (oauth2.TokenSource, error) {
	c.account = cfg.Account
	if len(cfg.CredentialsJSON) > 0 {
		c.credentialSource = CredentialsSetting
		var key keyFile
		if err := json.Unmarshal(cfg.CredentialsJSON, &key); err != nil {
			return nil, fmt.Errorf("sheets: %s is not a key file: not JSON", CredentialsSetting)
		}
		if err := key.check(); err != nil {
			return nil, fmt.Errorf("sheets: %s: %w", CredentialsSetting, err)
		}
		if err := checkTokenURI(key.TokenURI, base); err != nil {
			return nil, fmt.Errorf("sheets: %s: %w", CredentialsSetting, err)
		}
		c.account = cmp.Or(key.ClientEmail, c.account)
		creds, err := google.CredentialsFromJSONWithTypeAndParams(ctx, cfg.CredentialsJSON, google.ServiceAccount,
			google.CredentialsParams{Scopes: []string{Scope}})
		if err != nil {
			return nil, fmt.Errorf("sheets: %s: Google's library refused the key file", CredentialsSetting)
		}
		return creds.TokenSource, nil
	}
	c.credentialSource = "the application-default credentials (GOOGLE_APPLICATION_CREDENTIALS, or gcloud auth application-default login)"
	creds, err := google.FindDefaultCredentials(ctx, Scope)
	if err != nil {
		return nil, fmt.Errorf("sheets: no Google credentials: set %s to a service account's key (JSON), or GOOGLE_APPLICATION_CREDENTIALS to its file, or run gcloud auth application-default login (%v)", CredentialsSetting, err)
	}
	var key keyFile
	if len(creds.JSON) == 0 {
		// The metadata server's: Google's own, on Google's network.
		c.anonymous = "the service account onboard runs as (make deploy-gcp prints it)"
		key.TokenURI = "https://oauth2.googleapis.com/token"
		if c.account == "" {
			key.ClientEmail = metadataAccount(ctx)
		}
	} else if json.Unmarshal(creds.JSON, &key) != nil {
		return nil, errors.New("sheets: the application-default credentials file is not JSON")
	}
	switch key.Type {
	case "authorized_user":
		c.anonymous = "the Google account you signed in with (gcloud auth application-default login)"
	case "service_account":
		// Checked now: the library reads the key only at the first call,
		// and its parser's message is not one to repeat.
		if err := key.check(); err != nil {
			return nil, fmt.Errorf("sheets: application-default credentials: %w", err)
		}
	}
	if err := checkTokenURI(key.TokenURI, base); err != nil {
		return nil, fmt.Errorf("sheets: application-default credentials: %w", err)
	}
	c.account = cmp.Or(key.ClientEmail, c.account)
	return creds.TokenSource, nil
}

// metadataTimeout bounds asking the metadata server for the account's
// email: it answers in milliseconds on Google's network, and without the
// email an error still says whom to share with in words.
const metadataTimeout = 2 * time.Second

// metadataAccount asks the metadata server which service account its
// tokens are for, so that "share it with ..." names the real address (the
// function's own account on Cloud Functions); "" when it does not answer.
func metadataAccount(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	email, err := metadata.EmailWithContext(ctx, "default")
	if err != nil || !strings.Contains(email, "@") {
		return ""
	}
	return email
}

// check reads a service account's key file far enough to say what is
// wrong with it, in words of its own: a parser's message may quote the key.
func (k keyFile) check() error {
	switch {
	case k.Type != "service_account":
		return fmt.Errorf("want a service account's key file (\"type\": \"service_account\"), got type %q", cut(k.Type, 40))
	case !strings.Contains(k.ClientEmail, "@"):
		return errors.New("the key file has no client_email")
	}
	block, _ := pem.Decode([]byte(k.PrivateKey))
	if block == nil {
		return errors.New("the key file's private_key is not a PEM key")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return errors.New("the key file's private_key is not an RSA key")
		}
	}
	return nil
}

// googleHost is a host of Google's APIs, private endpoints included.
var googleHost = regexp.MustCompile(`^([a-z0-9-]+\.)*googleapis\.com$`)

// checkTokenURI allows a key's token endpoint only where the token it
// gets may go: Google's, for Google's API; the overridden API's own
// origin, for anything else. Either way the signed assertion and the
// token it buys never reach a third host.
func checkTokenURI(tokenURI string, base *url.URL) error {
	if tokenURI == "" {
		tokenURI = google.JWTTokenURL
	}
	u, err := url.Parse(tokenURI)
	if err != nil || u.Host == "" {
		return errors.New("the key file's token_uri is not a URL")
	}
	googleToken := u.Scheme == "https" && (googleHost.MatchString(u.Host) || u.Host == "accounts.google.com")
	if googleHost.MatchString(base.Hostname()) {
		if !googleToken {
			return fmt.Errorf("the key's token_uri is %s, not Google's: use a key Google issued, or set %s to that server's Sheets API", u.Redacted(), BaseURLSetting)
		}
		return nil
	}
	if u.Scheme != base.Scheme || u.Host != base.Host {
		return fmt.Errorf("%s is %s, not Google, and the key's token_uri is %s: a token is only sent where it came from; use the key that server hands out",
			BaseURLSetting, base.Redacted(), u.Redacted())
	}
	return nil
}

// tokenLog is the token source every call draws from: it tells
// TokenIssued of each new token and remembers the recent ones, so an
// answer echoing one is masked.
type tokenLog struct {
	source oauth2.TokenSource
	issued func(string)

	mu     sync.Mutex
	recent []string // the last two tokens issued
}

func (l *tokenLog) Token() (*oauth2.Token, error) {
	tok, err := l.source.Token()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	fresh := !slices.Contains(l.recent, tok.AccessToken)
	if fresh {
		l.recent = append(l.recent, tok.AccessToken)
		if len(l.recent) > 2 {
			l.recent = l.recent[1:]
		}
	}
	l.mu.Unlock()
	if fresh && l.issued != nil {
		l.issued(tok.AccessToken)
	}
	return tok, nil
}

func (l *tokenLog) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recent)
}

// ReadTable reads a tab, the first visible one when tab is "", in two
// reads whatever its size: spreadsheets.get for the tabs and their grids,
// values.get for the cells.
func (c *Client) ReadTable(ctx context.Context, spreadsheetID, tab string) (*sheets.Table, error) {
	if err := checkSpreadsheetID(spreadsheetID); err != nil {
		return nil, err
	}
	var ss *sheetsapi.Spreadsheet
	err := c.do(ctx, opGet, call{spreadsheet: spreadsheetID, tab: tab}, "", func(ctx context.Context) (err error) {
		ss, err = c.svc.Spreadsheets.Get(spreadsheetID).Fields(tabFields).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, err
	}
	props, err := pickTab(spreadsheetID, ss, tab)
	if err != nil {
		return nil, err
	}
	t := &sheets.Table{Spreadsheet: spreadsheetID, Tab: props.Title, SheetID: props.SheetId}
	if g := props.GridProperties; g != nil {
		t.GridRows, t.GridColumns = int(g.RowCount), int(g.ColumnCount)
	}
	var vr *sheetsapi.ValueRange
	err = c.do(ctx, opValuesGet, call{spreadsheet: spreadsheetID, tab: t.Tab}, "", func(ctx context.Context) (err error) {
		vr, err = c.svc.Spreadsheets.Values.Get(spreadsheetID, a1.Sheet(t.Tab)).
			MajorDimension("ROWS").ValueRenderOption("FORMATTED_VALUE").Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, row := range vr.Values {
		cells := make([]string, len(row))
		for j, v := range row {
			cells[j] = fmt.Sprint(v)
		}
		if i == 0 {
			t.Header = cells
		} else {
			t.Rows = append(t.Rows, cells)
		}
	}
	return t, nil
}

// pickTab finds the tab named, or the first visible one.
func pickTab(spreadsheetID string, ss *sheetsapi.Spreadsheet, title string) (*sheetsapi.SheetProperties, error) {
	var tabs []*sheetsapi.SheetProperties
	for _, s := range ss.Sheets {
		if s.Properties != nil {
			tabs = append(tabs, s.Properties)
		}
	}
	slices.SortFunc(tabs, func(a, b *sheetsapi.SheetProperties) int { return cmp.Compare(a.Index, b.Index) })
	var titles []string
	for _, p := range tabs {
		if title == "" && !p.Hidden || title != "" && p.Title == title {
			return p, nil
		}
		titles = append(titles, fmt.Sprintf("%q", p.Title))
	}
	if title == "" {
		return nil, &Error{Spreadsheet: spreadsheetID, kind: ErrNoTab,
			msg: fmt.Sprintf("sheets: spreadsheet %s has no visible tab", spreadsheetID)}
	}
	return nil, &Error{Spreadsheet: spreadsheetID, kind: ErrNoTab,
		msg: fmt.Sprintf("sheets: spreadsheet %s has no tab %q: check sheet (its tabs: %s)", spreadsheetID, title, strings.Join(titles, ", "))}
}

// spreadsheetIDPattern is what a spreadsheet id is made of.
var spreadsheetIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func checkSpreadsheetID(id string) error {
	if !spreadsheetIDPattern.MatchString(id) {
		return fmt.Errorf("sheets: spreadsheet_id %q: want the id in the sheet's address, between /d/ and /edit", cut(id, 80))
	}
	return nil
}

// WriteCells writes cells of t's tab in one values.batchUpdate, cells of
// one column in consecutive rows as one range. Values are written RAW:
// text from a form (an error quoting it) never becomes a formula. Cells
// past the tab's grid grow it first, with one more write, and t's grid
// with it. It returns how many cells Google updated (0 in a plan, which
// sends nothing).
func (c *Client) WriteCells(ctx context.Context, t *sheets.Table, cells []sheets.Cell) (int, error) {
	if len(cells) == 0 {
		return 0, nil
	}
	sorted := slices.Clone(cells)
	slices.SortFunc(sorted, func(a, b sheets.Cell) int { return cmp.Or(cmp.Compare(a.Column, b.Column), cmp.Compare(a.Row, b.Row)) })
	needRows, needCols := 0, 0
	for i, cl := range sorted {
		if cl.Row < 1 || cl.Column < 1 || cl.Column > a1.MaxColumn {
			return 0, fmt.Errorf("sheets: no cell at row %d, column %d", cl.Row, cl.Column)
		}
		if i > 0 && sorted[i-1].Row == cl.Row && sorted[i-1].Column == cl.Column {
			return 0, fmt.Errorf("sheets: cell %s written twice in one batch", a1.Cells(t.Tab, cl.Column, cl.Row, cl.Column, cl.Row))
		}
		needRows, needCols = max(needRows, cl.Row), max(needCols, cl.Column)
	}
	if needRows > t.GridRows || needCols > t.GridColumns {
		if err := c.growGrid(ctx, t, needRows, needCols); err != nil {
			return 0, err
		}
	}
	var data []*sheetsapi.ValueRange
	var shown []string
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j].Column == sorted[i].Column && sorted[j].Row == sorted[j-1].Row+1 {
			j++
		}
		column := make([]any, 0, j-i)
		for _, cl := range sorted[i:j] {
			column = append(column, cl.Value)
			shown = append(shown, a1.ColumnLetters(cl.Column)+fmt.Sprint(cl.Row)+"="+cl.Value)
		}
		first, last := sorted[i], sorted[j-1]
		data = append(data, &sheetsapi.ValueRange{
			Range: a1.Cells(t.Tab, first.Column, first.Row, last.Column, last.Row), MajorDimension: "COLUMNS",
			Values: [][]any{column},
		})
		i = j
	}
	var updated int
	detail := fmt.Sprintf("%s, %s: %s", t.Spreadsheet, a1.Sheet(t.Tab), strings.Join(shown, "; "))
	err := c.do(ctx, opValuesBatchWrite, call{spreadsheet: t.Spreadsheet, tab: t.Tab, write: true}, detail, func(ctx context.Context) error {
		resp, err := c.svc.Spreadsheets.Values.BatchUpdate(t.Spreadsheet, &sheetsapi.BatchUpdateValuesRequest{
			ValueInputOption: "RAW", Data: data,
		}).Context(ctx).Do()
		if err == nil {
			updated = int(resp.TotalUpdatedCells)
		}
		return err
	})
	return updated, err
}

// growGrid makes t's tab at least rows by columns. It sets the size
// rather than appending to it, so a retry of a write whose answer was
// lost does not grow the tab twice.
func (c *Client) growGrid(ctx context.Context, t *sheets.Table, rows, columns int) error {
	rows, columns = max(rows, t.GridRows), max(columns, t.GridColumns)
	detail := fmt.Sprintf("%s, %s: grid to %d rows, %d columns", t.Spreadsheet, a1.Sheet(t.Tab), rows, columns)
	err := c.do(ctx, opBatchUpdate, call{spreadsheet: t.Spreadsheet, tab: t.Tab, write: true}, detail, func(ctx context.Context) error {
		_, err := c.svc.Spreadsheets.BatchUpdate(t.Spreadsheet, &sheetsapi.BatchUpdateSpreadsheetRequest{
			Requests: []*sheetsapi.Request{{UpdateSheetProperties: &sheetsapi.UpdateSheetPropertiesRequest{
				Properties: &sheetsapi.SheetProperties{
					SheetId:         t.SheetID,
					GridProperties:  &sheetsapi.GridProperties{RowCount: int64(rows), ColumnCount: int64(columns)},
					ForceSendFields: []string{"SheetId"}, // the first tab's id is 0
				},
				Fields: "gridProperties.rowCount,gridProperties.columnCount",
			}}},
		}).Context(ctx).Do()
		return err
	})
	if err == nil && core.PlanFrom(ctx) == nil {
		t.GridRows, t.GridColumns = rows, columns
	}
	return err
}

// do runs one call through the shared caller, each attempt bounded by
// the client's timeout and its failure made an *Error or a transport error.
func (c *Client) do(ctx context.Context, op string, at call, detail string, attempt func(context.Context) error) error {
	return c.caller.Do(ctx, httpretry.Call{
		Target: Name, Op: op, Write: at.write, Idempotent: true, Detail: detail,
		Resource: "/v4/spreadsheets/" + at.spreadsheet,
		Attempt: func(ctx context.Context, _ any) error {
			ctx, cancel := context.WithTimeout(ctx, c.timeout)
			defer cancel()
			return c.answerError(op, at, attempt(ctx))
		},
	}, nil)
}

// cut bounds text quoted from input in an error.
func cut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

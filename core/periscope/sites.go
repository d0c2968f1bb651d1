package periscope

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// SettingName is the secret that maps site names to API keys.
const SettingName = "PERISCOPE_SITES"

// ParseSites reads PERISCOPE_SITES: a JSON object of site name to API key,
// like {"acme":"k1"}. Errors name the setting and, at most, a site; never a
// key, and never the raw value (a JSON syntax error would quote it).
func ParseSites(raw string) (map[string]string, error) {
	var sites map[string]string
	if err := json.Unmarshal([]byte(raw), &sites); err != nil || sites == nil {
		return nil, errors.New(SettingName + ` must be a JSON object of site name to API key, like {"acme":"<key>"}`)
	}
	if len(sites) == 0 {
		return nil, errors.New(SettingName + " names no site")
	}
	for site, key := range sites {
		// The site goes before a colon in HTTP-X-PARTNER-AUTH, so it cannot hold one.
		if site == "" || strings.ContainsFunc(site, func(r rune) bool { return r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return nil, fmt.Errorf("%s: site name %q must be non-empty, without spaces or colons (the name in the site's dashboard URL)", SettingName, site)
		}
		// A key with a line break would be refused by net/http anyway; saying
		// so here names the site instead of failing every request.
		if strings.TrimSpace(key) == "" || strings.ContainsFunc(key, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return nil, fmt.Errorf("%s: the API key of site %q is empty or holds whitespace", SettingName, site)
		}
	}
	return sites, nil
}

// SiteKeys serves the API keys of PERISCOPE_SITES, read through read on
// every use (a cache in front of the secret source makes that cheap) and
// parsed again only when the value changed, so a rotated key or a new site
// needs no redeploy.
type SiteKeys struct {
	read  func(context.Context) (string, error)
	learn func(...string) // told every key, so the logger can mask it

	mu    sync.Mutex
	raw   string
	sites map[string]string
}

// NewSiteKeys returns keys read through read. learn, when set, receives
// every key parsed; pass the log redactor's Add.
func NewSiteKeys(read func(context.Context) (string, error), learn func(...string)) *SiteKeys {
	return &SiteKeys{read: read, learn: learn}
}

// StaticKeys serves fixed keys, for tests and tools.
func StaticKeys(sites map[string]string) KeyFunc {
	return func(_ context.Context, site string) (string, error) {
		if k, ok := sites[site]; ok {
			return k, nil
		}
		return "", missingSite(site)
	}
}

func (s *SiteKeys) current(ctx context.Context) (map[string]string, error) {
	raw, err := s.read(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", SettingName, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sites != nil && raw == s.raw {
		return s.sites, nil
	}
	sites, err := ParseSites(raw)
	if err != nil {
		return nil, err
	}
	if s.learn != nil {
		for _, k := range sites {
			s.learn(k)
		}
	}
	s.raw, s.sites = raw, sites
	return sites, nil
}

// Key implements KeyFunc.
func (s *SiteKeys) Key(ctx context.Context, site string) (string, error) {
	sites, err := s.current(ctx)
	if err != nil {
		return "", err
	}
	if k, ok := sites[site]; ok {
		return k, nil
	}
	return "", missingSite(site)
}

// Sites returns the configured site names, sorted.
func (s *SiteKeys) Sites(ctx context.Context) ([]string, error) {
	sites, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(sites))
	for n := range sites {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func missingSite(site string) error {
	return fmt.Errorf("site %q is not a key of %s", site, SettingName)
}

// String, GoString and LogValue keep the keys out of any %v, %#v or log
// attribute that a SiteKeys ends up in by accident.
func (s *SiteKeys) String() string       { return "periscope.SiteKeys{…}" }
func (s *SiteKeys) GoString() string     { return s.String() }
func (s *SiteKeys) LogValue() slog.Value { return slog.StringValue(s.String()) }

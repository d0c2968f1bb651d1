package core

import "sort"

// Person is who a request is about, after policy has vetted it.
type Person struct {
	Email          string
	FirstName      string
	LastName       string
	ExternalUserID string
	// Attributes are the request's attribute values, already limited to the
	// keys the profile allows.
	Attributes map[string]string
	// Given is what onboard made for the person in each target (their
	// record), for a deprovision and for a provision that moves them from
	// another profile: targets act on it, not on a lookup by email, and a
	// mover's targets take back what it lists and the new profile lacks.
	Given map[string]TargetRecord
}

// Authorize applies policy to a normalised request: the email's domain must be
// allowed (for a provision: see DomainAllowed), the profile must exist and be
// requestable (unless an operator on the CLI asks), and only the profile's
// allowed attribute keys may be set, to allowed values. It is the boundary
// between a public form and admin rights.
func (c *Config) Authorize(req Request, operator bool) (Person, *Profile, error) {
	if req.Action != ActionDeprovision && !c.DomainAllowed(req.Email) {
		return Person{}, nil, errDomainNotAllowed()
	}
	name := req.Profile
	if name == "" {
		name = c.DefaultProfile
	}
	if name == "" {
		return Person{}, nil, Invalid("profile", "required: no default_profile is configured")
	}
	profile := c.Profiles[name]
	if profile == nil || (!operator && !profile.IsRequestable()) {
		// Unknown and forbidden look the same so a form cannot enumerate profiles.
		return Person{}, nil, Forbidden("profile", "profile is not allowed")
	}
	allowed := make(map[string]AllowedAttribute, len(profile.AttributesAllowed))
	for _, a := range profile.AttributesAllowed {
		allowed[a.Name] = a
	}
	keys := make([]string, 0, len(req.Attributes))
	for k := range req.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a, ok := allowed[k]
		if !ok {
			return Person{}, nil, Invalid("attributes."+k, "attribute is not allowed for profile %q", name)
		}
		if !a.admits(req.Attributes[k]) {
			return Person{}, nil, Invalid("attributes."+k, "value is not allowed for profile %q: give %s", name, a.describe())
		}
	}
	for _, key := range profile.SectionKeys() {
		if checker, ok := profile.Section(key).(RequestChecker); ok {
			if err := checker.CheckRequest(req, name); err != nil {
				return Person{}, nil, err
			}
		}
	}
	return Person{
		Email: req.Email, FirstName: req.FirstName, LastName: req.LastName,
		ExternalUserID: req.ExternalUserID, Attributes: req.Attributes,
	}, profile, nil
}

// DomainAllowed says whether allowed_email_domains admits email. A
// deprovision is not refused by it alone: a domain taken off the list
// stops new joiners from it, while the people onboard already gave access
// must still be able to leave. The engine refuses a deprovision outside
// the list only for someone onboard has no record of.
func (c *Config) DomainAllowed(email string) bool {
	return len(c.allowedDomains) == 0 || c.allowedDomains[EmailDomain(email)]
}

func errDomainNotAllowed() *Error { return Forbidden("email", "email domain is not allowed") }

// RequestChecker is a profile section that refuses requests its target
// cannot serve as sent, before anything runs.
type RequestChecker interface {
	CheckRequest(req Request, profile string) error
}

// CheckBulk refuses, as a whole and before anything runs, a bulk request or
// import that would deprovision more than max_deprovision people: the
// rolling breaker would stop it part way, leaving the list half done.
// force (the CLI's --force, never a request's) lets an import through.
func (c *Config) CheckBulk(reqs []Request, force bool) error {
	n := 0
	for _, r := range reqs {
		if r.Action == ActionDeprovision {
			n++
		}
	}
	if force || n <= *c.MaxDeprovision {
		return nil
	}
	return Forbidden("action", "this bulk request deprovisions %d people, more than max_deprovision (%d); nothing was done. "+
		"Check the list; if it is right, an operator can run it with onboard import --force", n, *c.MaxDeprovision)
}

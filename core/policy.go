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
}

// Authorize applies policy to a normalised request: the email's domain must be
// allowed, the profile must exist, and only the profile's allowed attribute
// keys may be set. It is the boundary between a public form and admin rights.
func (c *Config) Authorize(req Request) (Person, *Profile, *Error) {
	if len(c.allowedDomains) > 0 && !c.allowedDomains[EmailDomain(req.Email)] {
		return Person{}, nil, Forbidden("email", "email domain is not allowed")
	}
	name := req.Profile
	if name == "" {
		name = c.DefaultProfile
	}
	if name == "" {
		return Person{}, nil, Invalid("profile", "required: no default_profile is configured")
	}
	profile := c.Profiles[name]
	if profile == nil {
		// Unknown and forbidden look the same so a form cannot enumerate profiles.
		return Person{}, nil, Forbidden("profile", "profile is not allowed")
	}
	allowed := make(map[string]bool, len(profile.AttributesAllowed))
	for _, k := range profile.AttributesAllowed {
		allowed[k] = true
	}
	keys := make([]string, 0, len(req.Attributes))
	for k := range req.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !allowed[k] {
			return Person{}, nil, Invalid("attributes."+k, "attribute is not allowed for profile %q", name)
		}
	}
	if profile.Looker != nil && profile.Looker.Kind == LookerEmbed && req.ExternalUserID == "" {
		return Person{}, nil, Invalid("external_user_id", "required for profile %q, which provisions Looker embed users", name)
	}
	return Person{
		Email: req.Email, FirstName: req.FirstName, LastName: req.LastName,
		ExternalUserID: req.ExternalUserID, Attributes: req.Attributes,
	}, profile, nil
}

// CheckBulk is the deprovision circuit breaker: a bulk request or import
// that would deprovision more than max_deprovision people is refused as a
// whole, before anything runs, unless force is set.
func (c *Config) CheckBulk(reqs []Request, force bool) *Error {
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
		"Check the list, then resend with force (HTTP: ?force=true) if it is right", n, *c.MaxDeprovision)
}

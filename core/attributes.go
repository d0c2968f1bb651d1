package core

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// AllowedAttribute is one entry of a profile's attributes_allowed: a key a
// request may set, and optionally the values it may set it to. A form is
// public, so a free-text value is only right for keys where any text is
// harmless; a key that gates data (region, cost centre) names its values.
//
//	attributes_allowed:
//	  - nickname                                  # any value
//	  - {name: region, values: [EMEA, AMER]}      # one of these, exactly
//	  - {name: cost_center, pattern: '[0-9]{4}'}  # the whole value matches
type AllowedAttribute struct {
	Name    string
	Values  []string
	Pattern *regexp.Regexp
}

// UnmarshalYAML accepts a bare name or a mapping with values or pattern.
func (a *AllowedAttribute) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		a.Name = strings.TrimSpace(n.Value)
		return a.check()
	}
	var m struct {
		Name    string   `yaml:"name"`
		Values  []string `yaml:"values"`
		Pattern string   `yaml:"pattern"`
	}
	// A misspelt "value:" must not silently allow any value.
	if err := DecodeYAML(n, &m); err != nil {
		return err
	}
	a.Name, a.Values = strings.TrimSpace(m.Name), m.Values
	if m.Values != nil && m.Pattern != "" {
		return fmt.Errorf("line %d: attribute %q: give values or pattern, not both", n.Line, a.Name)
	}
	if m.Values != nil && len(m.Values) == 0 {
		return fmt.Errorf("line %d: attribute %q: values is empty, so no request could set it; remove the entry instead", n.Line, a.Name)
	}
	if m.Pattern != "" {
		// Compiled alone first: only a pattern that stands on its own stays
		// whole inside the anchors; "x)|(.*" would close the group early
		// and let any value through.
		if _, err := regexp.Compile(m.Pattern); err != nil {
			return fmt.Errorf("line %d: attribute %q: pattern: %w", n.Line, a.Name, err)
		}
		// Anchored: "[0-9]{4}" must not let "1234; DROP" through.
		re, err := regexp.Compile(`^(?:` + m.Pattern + `)$`)
		if err != nil {
			return fmt.Errorf("line %d: attribute %q: pattern: %w", n.Line, a.Name, err)
		}
		a.Pattern = re
	}
	if err := a.check(); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

func (a *AllowedAttribute) check() error {
	if a.Name == "" {
		return errors.New("attributes_allowed: empty attribute name")
	}
	return nil
}

// admits says whether a request may set the attribute to v.
func (a AllowedAttribute) admits(v string) bool {
	switch {
	case a.Values != nil:
		return slices.Contains(a.Values, v)
	case a.Pattern != nil:
		return a.Pattern.MatchString(v)
	}
	return true
}

// describe says what values are accepted, for the answer to a refused one.
func (a AllowedAttribute) describe() string {
	switch {
	case a.Values != nil:
		return "one of " + strings.Join(a.Values, ", ")
	case a.Pattern != nil:
		return "a value matching " + strings.TrimSuffix(strings.TrimPrefix(a.Pattern.String(), "^(?:"), ")$")
	}
	return "any value"
}

// Admits says whether the profile lets a request set attribute key to v.
func (p *Profile) Admits(key, v string) bool {
	i := slices.IndexFunc(p.AttributesAllowed, func(a AllowedAttribute) bool { return a.Name == key })
	return i >= 0 && p.AttributesAllowed[i].admits(v)
}

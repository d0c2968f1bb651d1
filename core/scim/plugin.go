package scim

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
)

// Plugin registers sources.scim of onboard.yaml: which of the IdP's
// attributes become which user attributes.
var Plugin = plugin.Source{Name: sourceName, Policy: decodePolicy}

const sourceName = "scim"

// Policy is sources.scim:
//
//	sources:
//	  scim:
//	    attributes:
//	      urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department: department
//	      title: job_title
//
// Each entry maps a SCIM attribute (a core attribute, a sub-attribute such
// as name.formatted, or an extension's attribute after its schema URN) to
// a user attribute key. A key reaches the targets only where the user's
// profile admits it and its value (attributes_allowed), as for any
// request.
type Policy struct {
	Attributes map[string]string `yaml:"attributes"`
}

// PolicyOf is cfg's sources.scim.
func PolicyOf(cfg *core.Config) Policy {
	p, _ := plugin.SourceSection(cfg, sourceName).(Policy)
	return p
}

func decodePolicy(node *yaml.Node, _ *core.Config) (any, error) {
	var p Policy
	if node == nil {
		return p, nil
	}
	if err := core.DecodeYAML(node, &p); err != nil {
		return nil, err
	}
	for path, key := range p.Attributes {
		if _, _, ok := attributePath(path); !ok {
			return nil, fmt.Errorf("attributes: %q is not a SCIM attribute (userName, name.formatted, urn:…:enterprise:2.0:User:department…)", path)
		}
		if strings.TrimSpace(key) == "" {
			return nil, fmt.Errorf("attributes: %q maps to an empty attribute key", path)
		}
	}
	return p, nil
}

// attributePath splits a mapped SCIM attribute into the schema extension
// holding it ("" for the core schema), the attribute and its
// sub-attribute ("" for none).
func attributePath(path string) (extension string, names []string, ok bool) {
	if strings.HasPrefix(strings.ToLower(path), "urn:") {
		i := strings.LastIndex(path, ":")
		extension, path = path[:i], path[i+1:]
	}
	names = strings.Split(path, ".")
	if len(names) > 2 || slices.Contains(names, "") {
		return "", nil, false
	}
	return extension, names, true
}

// mappedAttributes are the user attributes the policy maps from the IdP's
// that profile admits; the others are named in skipped, for the log.
func mappedAttributes(attrs map[string]any, mapping map[string]string, profile *core.Profile) (admitted map[string]string, skipped []string) {
	for path, key := range mapping {
		extension, names, _ := attributePath(path)
		var v any = attrs
		if extension != "" {
			v = lookupFold(attrs, extension)
		}
		for _, n := range names {
			m, _ := v.(map[string]any)
			v = lookupFold(m, n)
		}
		value := ""
		switch v := v.(type) {
		case string:
			value = v
		case bool, float64:
			value = fmt.Sprint(v)
		}
		if value == "" {
			continue
		}
		if !profile.Admits(key, value) {
			skipped = append(skipped, key)
			continue
		}
		if admitted == nil {
			admitted = map[string]string{}
		}
		admitted[key] = value
	}
	return admitted, skipped
}

// lookupFold reads m[name], names compared case-insensitively as SCIM's are.
func lookupFold(m map[string]any, name string) any {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

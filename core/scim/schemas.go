package scim

import (
	"strings"
	"sync"

	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// resourceType is one kind of resource the directory keeps.
type resourceType struct {
	name       string // "User"
	endpoint   string // "Users"
	kind       string // in store keys
	schema     schema.Schema
	extensions []schema.Schema
	// nameAttr is the attribute unique across the kind, case-insensitively
	// (userName; a group's displayName, since profiles map groups by it).
	nameAttr string
	// setAttr is the multi-valued attribute kept in an id set rather than
	// in the record (a group's members), "" for none.
	setAttr string
}

// resourceTypes are built on first use: building the schemas takes a
// third of a millisecond, which every cold start of a function would pay
// whether or not it ever serves SCIM.
var resourceTypes = sync.OnceValue(func() []*resourceType {
	return []*resourceType{
		{
			name: "User", endpoint: "Users", kind: kindUser,
			schema: withExternalID(schema.CoreUserSchema()), extensions: []schema.Schema{schema.ExtensionEnterpriseUser()},
			nameAttr: "userName",
		},
		{
			name: "Group", endpoint: "Groups", kind: kindGroup,
			schema: withExternalID(schema.CoreGroupSchema()), nameAttr: "displayName", setAttr: "members",
		},
	}
})

func (rt *resourceType) isUser() bool { return rt.kind == kindUser }

// withExternalID adds the common attribute externalId, which the IdP sets
// and reads back (RFC 7643 section 3.1), to a resource's schema.
func withExternalID(s schema.Schema) schema.Schema {
	s.Attributes = append(s.Attributes, schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
		CaseExact: true, Name: "externalId",
		Description: optional.NewString("An identifier for the resource as defined by the provisioning client."),
	})))
	return s
}

func resourceTypeAt(endpoint string) *resourceType {
	for _, rt := range resourceTypes() {
		if strings.EqualFold(rt.endpoint, endpoint) {
			return rt
		}
	}
	return nil
}

func (rt *resourceType) schemaIDs() []string {
	ids := []string{rt.schema.ID}
	for _, e := range rt.extensions {
		ids = append(ids, e.ID)
	}
	return ids
}

// attribute finds a top-level attribute by name, case-insensitively, in
// the core schema or, with its URN prefix, an extension; ok is false for
// an attribute the resource does not have. key is where it is stored.
func (rt *resourceType) attribute(uri, name string) (attr schema.CoreAttribute, key string, ok bool) {
	if uri == "" || strings.EqualFold(uri, rt.schema.ID) {
		if a, found := rt.schema.Attributes.ContainsAttribute(name); found {
			return a, a.Name(), true
		}
	}
	for _, ext := range rt.extensions {
		if uri == "" || strings.EqualFold(uri, ext.ID) {
			if a, found := ext.Attributes.ContainsAttribute(name); found {
				return a, ext.ID, true
			}
		}
	}
	return schema.CoreAttribute{}, "", false
}

func (rt *resourceType) extension(uri string) (schema.Schema, bool) {
	for _, ext := range rt.extensions {
		if strings.EqualFold(ext.ID, uri) {
			return ext, true
		}
	}
	return schema.Schema{}, false
}

func serviceProviderConfig() map[string]any {
	unsupported := map[string]any{"supported": false}
	return map[string]any{
		"schemas":        []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"patch":          map[string]any{"supported": true},
		"bulk":           map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":         map[string]any{"supported": true, "maxResults": maxCount},
		"changePassword": unsupported,
		"sort":           unsupported,
		"etag":           map[string]any{"supported": true},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
			"description": "Authorization: Bearer <ONBOARD_SCIM_TOKEN>",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": BasePath + "/ServiceProviderConfig"},
	}
}

func resourceTypeDocs() []map[string]any {
	var docs []map[string]any
	for _, rt := range resourceTypes() {
		var exts []map[string]any
		for _, e := range rt.extensions {
			exts = append(exts, map[string]any{"schema": e.ID, "required": false})
		}
		doc := map[string]any{
			"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
			"id":       rt.name,
			"name":     rt.name,
			"endpoint": "/" + rt.endpoint,
			"schema":   rt.schema.ID,
			"meta":     map[string]any{"resourceType": "ResourceType", "location": BasePath + "/ResourceTypes/" + rt.name},
		}
		if exts != nil {
			doc["schemaExtensions"] = exts
		}
		docs = append(docs, doc)
	}
	return docs
}

func schemaDocs() []map[string]any {
	var docs []map[string]any
	for _, rt := range resourceTypes() {
		for _, s := range append([]schema.Schema{rt.schema}, rt.extensions...) {
			doc := s.ToMap()
			doc["schemas"] = []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"}
			doc["meta"] = map[string]any{"resourceType": "Schema", "location": BasePath + "/Schemas/" + s.ID}
			docs = append(docs, doc)
		}
	}
	return docs
}

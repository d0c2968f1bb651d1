package core

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// DecodeYAML decodes one node of onboard.yaml strictly: a key the Go type
// does not name is an error giving the key and its line, because a misspelt
// "rolse:" must not silently grant nothing. yaml.v3's own KnownFields is a
// decoder option that Node.Decode forgets, so plug-ins decoding their own
// sections would otherwise lose it.
func DecodeYAML(node *yaml.Node, v any) error {
	var problems []string
	unknownKeys(node, reflect.TypeOf(v), &problems)
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return node.Decode(v)
}

var yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

func unknownKeys(node *yaml.Node, t reflect.Type, problems *[]string) {
	for node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(yamlUnmarshaler) {
		return // it checks its own keys
	}
	switch {
	case t.Kind() == reflect.Struct && node.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(node.Content); i += 2 {
			key, value := node.Content[i], node.Content[i+1]
			field, ok := fields[key.Value]
			if !ok {
				*problems = append(*problems, fmt.Sprintf("line %d: unknown key %q", key.Line, key.Value))
				continue
			}
			unknownKeys(value, field, problems)
		}
	case t.Kind() == reflect.Map && node.Kind == yaml.MappingNode:
		for i := 1; i < len(node.Content); i += 2 {
			unknownKeys(node.Content[i], t.Elem(), problems)
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && node.Kind == yaml.SequenceNode:
		for _, item := range node.Content {
			unknownKeys(item, t.Elem(), problems)
		}
	}
}

// yamlFields maps a struct's YAML keys to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case !f.IsExported() || name == "-":
		case name == "":
			fields[strings.ToLower(f.Name)] = f.Type
		default:
			fields[name] = f.Type
		}
	}
	return fields
}

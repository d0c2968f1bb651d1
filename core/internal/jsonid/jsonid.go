// Package jsonid decodes the ids SaaS APIs send sometimes as strings and
// sometimes as numbers (Looker API 4.0 documents strings yet still sends
// numbers in places, sdk-codegen #606; AAC sends numbers), so a change of
// representation never breaks decoding.
package jsonid

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ID is an id kept as its decimal or string text.
type ID string

// UnmarshalJSON accepts "42", 42 and null (the empty ID).
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*id = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("id %s is neither a number nor a string", b)
	}
	*id = ID(n.String())
	return nil
}

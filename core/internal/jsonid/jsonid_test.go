package jsonid

import (
	"encoding/json"
	"testing"
)

func TestID(t *testing.T) {
	for in, want := range map[string]ID{`"42"`: "42", `42`: "42", `null`: "", `"a-b"`: "a-b", `1234567890123`: "1234567890123"} {
		var id ID
		if err := json.Unmarshal([]byte(in), &id); err != nil || id != want {
			t.Errorf("%s: %q %v, want %q", in, id, err, want)
		}
	}
	for _, bad := range []string{`{}`, `[1]`, `true`} {
		var id ID
		if err := json.Unmarshal([]byte(bad), &id); err == nil {
			t.Errorf("%s decoded as %q", bad, id)
		}
	}
}

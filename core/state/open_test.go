package state_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/state"
)

func TestOpen(t *testing.T) {
	var gotArg string
	boom := errors.New("boom")
	backends := map[string]state.Backend{
		"file": func(_ context.Context, arg string, getenv func(string) string) (state.Store, error) {
			gotArg = arg + "|" + getenv("X")
			return nil, boom
		},
		"firestore": nil,
	}
	getenv := func(k string) string { return "env-" + k }

	for spec, wantArg := range map[string]string{
		"":                  ".onboard|env-X",
		"file:/srv/a:b":     "/srv/a:b|env-X",
		"file":              "|env-X",
		"file:relative/dir": "relative/dir|env-X",
	} {
		gotArg = ""
		_, err := state.Open(t.Context(), spec, getenv, backends)
		if gotArg != wantArg {
			t.Errorf("Open(%q) gave the backend %q, want %q", spec, gotArg, wantArg)
		}
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "ONBOARD_STORE=") {
			t.Errorf("Open(%q) error = %v, want the backend's, naming the setting", spec, err)
		}
	}

	_, err := state.Open(t.Context(), "dynamodb:onboard", getenv, backends)
	if err == nil || !strings.Contains(err.Error(), `"dynamodb" is not available in this build; use one of: file, firestore`) {
		t.Errorf("unknown scheme: %v", err)
	}
}

package app

import (
	"context"
	"errors"
	"reflect"
	"slices"

	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/state"
)

// auditRedacting is the store every App writes through. Audit records keep
// an error's text, which may quote what an upstream echoed, so each record
// passes through the redactor on its way in, every text field of it.
type auditRedacting struct {
	state.Store
	redactor *logging.Redactor
}

func (s auditRedacting) Append(ctx context.Context, recs ...state.AuditRecord) error {
	recs = slices.Clone(recs)
	for i := range recs {
		v := reflect.ValueOf(&recs[i]).Elem()
		for j := range v.NumField() {
			if f := v.Field(j); f.Kind() == reflect.String {
				f.SetString(s.redactor.Redact(f.String()))
			}
		}
	}
	return s.Store.Append(ctx, recs...)
}

// Redact masks every secret this instance has read or been issued, in any
// encoding. Entry points pass what they answer outside the HTTP handler
// (event errors, CLI output) through it; it works before the App is ready.
func (in *Instance) Redact(s string) string { return in.redactor.Redact(s) }

// RedactError is err as a caller may see it: err itself when its text holds
// no secret, else an error carrying only the masked text.
func (in *Instance) RedactError(err error) error {
	if err == nil {
		return nil
	}
	if shown := in.Redact(err.Error()); shown != err.Error() {
		return errors.New(shown)
	}
	return err
}

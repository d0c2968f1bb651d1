package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/sandbox"
	"github.com/onboard-dev/onboard/core/targets"
)

// local is an onboard instance running inside the CLI: against the targets
// the environment configures, and the sandbox's in-memory fakes for those
// it has no settings for (as make run does).
type local struct {
	instance *app.Instance
	app      *app.App
	log      *slog.Logger
	box      *sandbox.Sandbox
	redactor *logging.Redactor
	getenv   func(string) string
	close    func()
}

// startLocal builds the instance. logLevel is the default when
// ONBOARD_LOG_LEVEL is unset: commands that print their own results keep
// the JSON log to warnings.
func startLocal(ctx context.Context, stderr io.Writer, outbox string, logLevel slog.Level) (*local, error) {
	overlay := map[string]string{}
	l := &local{getenv: func(k string) string {
		if v, ok := overlay[k]; ok {
			return v
		}
		return os.Getenv(k)
	}}
	var closers []func()
	l.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	cfg, err := targets.LoadConfig(targets.ConfigPath(os.Getenv))
	if err != nil {
		return nil, err
	}
	if l.box, err = sandbox.Start(cfg, outbox, os.Getenv); err != nil {
		return nil, err
	}
	closers = append(closers, l.box.Close)
	for k, v := range l.box.Env {
		overlay[k] = v
	}
	if l.box.Faking() && os.Getenv(app.SettingWebhookSecret) == "" && os.Getenv(app.SettingInsecureNoAuth) != "1" {
		overlay[app.SettingWebhookSecret] = sandbox.Credential()
	}
	if l.box.Faking() && os.Getenv(app.SettingSCIMToken) == "" {
		overlay[app.SettingSCIMToken] = sandbox.Credential()
	}
	level := logLevel
	if v := l.getenv(app.SettingLogLevel); v != "" {
		level = logging.ParseLevel(v)
	}
	redactor := &logging.Redactor{}
	l.redactor = redactor
	l.log = logging.New(stderr, level, redactor)
	l.instance = app.Start(app.Options{Getenv: l.getenv, Pinned: l.box.Env, Log: l.log, Redactor: redactor, StoreBackends: storeBackends, SourceClients: sourceClients})
	a, err := l.instance.App(ctx)
	if err != nil {
		l.close()
		return nil, err
	}
	l.app = a
	closers = append(closers, func() { _ = a.Close() })
	return l, nil
}

// handle runs one request through the engine.
func (l *local) handle(ctx context.Context, req core.Request, meta core.Meta) (core.Result, error) {
	res, err := l.app.Engine.Handle(ctx, req, meta)
	if err != nil {
		return res, l.shown(err)
	}
	return res, nil
}

// shown is err as the CLI prints it and writes it to failures files: its
// text passes through the redactor, as a cause may quote what an upstream
// echoed.
func (l *local) shown(err error) *core.Error {
	if err == nil {
		return nil
	}
	shown := *core.AsError(err)
	shown.Message = l.instance.Redact(shown.Message)
	return &shown
}

// targetsNote tells the user what their command ran against: each target
// real (and where) or an in-memory fake.
func (l *local) targetsNote(w io.Writer) {
	for _, line := range l.box.Note() {
		fmt.Fprintf(w, "onboard: %s\n", line)
	}
}

// startLocalFor is startLocal for a CLI command that acts on the targets:
// captured emails go to .onboard/outbox, and stderr says which targets are
// real. A failure is printed as command's; ok is false then.
func startLocalFor(ctx context.Context, command string, stderr io.Writer, logLevel slog.Level) (l *local, ok bool) {
	l, err := startLocal(ctx, stderr, ".onboard/outbox", logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", command, err)
		return nil, false
	}
	l.targetsNote(stderr)
	return l, true
}

package sendgridtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// outboxStamp sorts lexically in time order; the sequence number after it
// breaks ties within a millisecond and keeps names unique.
const outboxStamp = "20060102T150405.000"

// OutboxFileName is the name under which m is written to Options.OutboxDir.
func OutboxFileName(m Message) string {
	return fmt.Sprintf("%s-%06d-%s.txt", m.ReceivedAt.UTC().Format(outboxStamp), m.Seq, m.MessageID)
}

// writeOutbox writes via a temp file and rename so a watcher (or `make run`
// tailing the directory) never sees a half-written message.
func writeOutbox(dir string, m Message) error {
	tmp, err := os.CreateTemp(dir, ".partial-*")
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(renderOutbox(m)); err != nil {
		tmp.Close()
		return fmt.Errorf("outbox: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, OutboxFileName(m))); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

func renderOutbox(m Message) []byte {
	var b bytes.Buffer
	header := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	header("Date", m.ReceivedAt.UTC().Format(time.RFC1123Z))
	header("X-Message-Id", m.MessageID)
	header("From", m.From.String())
	header("To", joinAddresses(m.To))
	header("Cc", joinAddresses(m.CC))
	header("Bcc", joinAddresses(m.BCC))
	header("Subject", m.Subject)
	header("X-Template-Id", m.TemplateID)
	for _, k := range slices.Sorted(maps.Keys(m.CustomArgs)) {
		header("X-Custom-Arg-"+k, m.CustomArgs[k])
	}
	header("X-Click-Tracking", onOff(m.ClickTracking))
	header("X-Open-Tracking", onOff(m.OpenTracking))
	b.WriteString("\n")
	section := func(title, body string) {
		if body != "" {
			fmt.Fprintf(&b, "----- %s -----\n%s\n", title, strings.TrimRight(body, "\n"))
		}
	}
	section("text/plain", m.Text)
	section("text/html", m.HTML)
	if m.TemplateID != "" {
		section("dynamic_template_data", templateDataJSON(m.TemplateData))
	}
	return b.Bytes()
}

// templateDataJSON leaves &, < and > unescaped so a setup URL with a query
// string stays copy-pasteable from the file.
func templateDataJSON(data map[string]any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(data); err != nil {
		return fmt.Sprintf("(unencodable: %v)", err)
	}
	return b.String()
}

func joinAddresses(as []Address) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

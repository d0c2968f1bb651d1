// Package docs holds the manual; its test keeps the links between pages,
// and from the README, working.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every relative link in README.md and docs/*.md resolves: the file
// exists and, for a #fragment, holds a heading with that anchor.
func TestLinksResolve(t *testing.T) {
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../README.md")
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, problem := range brokenLinks(f, string(text), readFile) {
			t.Error(problem)
		}
	}
}

// The README is a README: what onboard is, the two commands, a tour, the
// layout and the links; the manual is here.
func TestReadmeIsShort(t *testing.T) {
	text, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(text), "\n"); n > 300 {
		t.Errorf("README.md has %d lines; keep it under 300 and move the rest to docs/", n)
	}
	if !strings.Contains(string(text), "make run") || !strings.Contains(string(text), "make test") {
		t.Error("README.md must start with make run and make test")
	}
}

// The checker finds what it must: a missing file, a missing anchor.
func TestBrokenLinksAreFound(t *testing.T) {
	pages := map[string]string{"other.md": "# Other\n\n## A section, with punctuation!\n"}
	read := func(p string) (string, error) {
		if s, ok := pages[filepath.Base(p)]; ok {
			return s, nil
		}
		return "", os.ErrNotExist
	}
	text := "[ok](other.md#a-section-with-punctuation) [gone](missing.md) [bad anchor](other.md#nowhere) " +
		"[external](https://example.com/x.md) [here](#top)\n\n# Top\n"
	problems := brokenLinks("page.md", text, read)
	if len(problems) != 2 || !strings.Contains(problems[0], "missing.md") || !strings.Contains(problems[1], "#nowhere") {
		t.Errorf("problems = %q, want the missing file and the missing anchor", problems)
	}
}

var (
	link    = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	fence   = regexp.MustCompile("(?ms)^```.*?^```")
)

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

func brokenLinks(file, text string, read func(string) (string, error)) []string {
	var problems []string
	prose := fence.ReplaceAllString(text, "")
	for _, m := range link.FindAllStringSubmatch(prose, -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		path, anchor, _ := strings.Cut(target, "#")
		dest, body := file, text
		if path != "" {
			dest = filepath.Join(filepath.Dir(file), path)
			var err error
			if body, err = read(dest); err != nil {
				if _, serr := os.Stat(dest); serr == nil { // a directory or a non-markdown file
					continue
				}
				problems = append(problems, file+": link to "+target+": no such file")
				continue
			}
		}
		if anchor != "" && !hasAnchor(body, anchor) {
			problems = append(problems, file+": link to "+target+": "+dest+" has no heading #"+anchor)
		}
	}
	return problems
}

// hasAnchor uses GitHub's rule: lower case, spaces to dashes, punctuation
// other than - and _ dropped.
func hasAnchor(text, anchor string) bool {
	for _, m := range heading.FindAllStringSubmatch(fence.ReplaceAllString(text, ""), -1) {
		if slug(m[1]) == anchor {
			return true
		}
	}
	return false
}

func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

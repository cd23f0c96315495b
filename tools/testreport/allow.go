package main

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// allowance is one line of the allow-list: tests of a package that may
// skip, and why.
type allowance struct {
	pkg     string // import path, or its part after the module path
	pattern string // path.Match pattern over the full test name
	reason  string
	line    int
	used    bool
}

// allowList is every test that may skip without failing the run.
type allowList []*allowance

// parseAllowList reads lines of the form
//
//	internal/lab/session TestPlugin*   # why it may skip
//
// A line without a reason, on itself or in the comment lines directly
// above it, is refused: a skip nobody can explain is one nobody checks.
func parseAllowList(r io.Reader, name string) (allowList, error) {
	var list allowList
	var comment []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			comment = nil
			continue
		}
		if text, ok := strings.CutPrefix(line, "#"); ok {
			comment = append(comment, strings.TrimSpace(text))
			continue
		}
		entry, reason, _ := strings.Cut(line, "#")
		reason = strings.TrimSpace(reason)
		if reason == "" {
			reason = strings.Join(comment, " ")
		}
		fields := strings.Fields(entry)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"PACKAGE TEST-PATTERN # reason\", got %q", name, n, line)
		}
		if _, err := path.Match(fields[1], ""); err != nil {
			return nil, fmt.Errorf("%s:%d: test pattern %q: %v", name, n, fields[1], err)
		}
		if reason == "" {
			return nil, fmt.Errorf("%s:%d: %s %s has no reason: say why it may skip in a comment on or above the line", name, n, fields[0], fields[1])
		}
		list = append(list, &allowance{pkg: fields[0], pattern: fields[1], reason: reason, line: n})
	}
	return list, sc.Err()
}

// allows returns the entry that lets test of pkg skip, or nil.
func (l allowList) allows(pkg, test string) *allowance {
	for _, a := range l {
		if pkg != a.pkg && !strings.HasSuffix(pkg, "/"+a.pkg) {
			continue
		}
		if ok, _ := path.Match(a.pattern, test); ok {
			a.used = true
			return a
		}
	}
	return nil
}

// Package psparse checks PowerShell against a real PowerShell grammar:
// tree-sitter-powershell, through its WebAssembly build and
// web-tree-sitter, run by Node. PowerShell itself cannot run on these
// machines; this is how Passport's Windows programs are shown to be
// PowerShell at all, not only to pass Passport's own static rules.
package psparse

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Versions pinned by scripts/install.sh (npm, into .tools/node).
const (
	GrammarVersion    = "0.26.4"  // tree-sitter-powershell
	WebRuntimeVersion = "0.26.13" // web-tree-sitter
)

//go:embed check.cjs
var checkScript []byte

// Problem is a place the grammar cannot make sense of: an ERROR node
// (text it could not parse) or a MISSING one (a token it had to invent,
// such as a closing brace).
type Problem struct {
	Kind   string `json:"kind"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Text   string `json:"text"`
}

func (p Problem) String() string {
	return fmt.Sprintf("%d:%d: %s %q", p.Line, p.Column, p.Kind, p.Text)
}

// Parser runs the grammar. Find makes one.
type Parser struct {
	node, modules string
}

// Find locates Node and the pinned packages: in $PASSPORT_NODE_MODULES, or
// in .tools/node/node_modules of the checkout the working directory is in,
// where scripts/install.sh puts them. Its error says what to install.
func Find() (*Parser, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("psparse: node is not installed (Debian package nodejs; scripts/install.sh installs it)")
	}
	modules := os.Getenv("PASSPORT_NODE_MODULES")
	if modules == "" {
		modules = findUp(filepath.Join(".tools", "node", "node_modules"))
	}
	install := "run scripts/install.sh, or npm install --ignore-scripts tree-sitter-powershell@" + GrammarVersion + " web-tree-sitter@" + WebRuntimeVersion + " and set PASSPORT_NODE_MODULES to its node_modules"
	if modules == "" {
		return nil, errors.New("psparse: no .tools/node/node_modules above the working directory: " + install)
	}
	// A slice, not a map: with both missing, the grammar is named first on
	// every run.
	for _, need := range []struct{ pkg, version string }{
		{"tree-sitter-powershell", GrammarVersion},
		{"web-tree-sitter", WebRuntimeVersion},
	} {
		var meta struct{ Version string }
		b, err := os.ReadFile(filepath.Join(modules, need.pkg, "package.json"))
		if err == nil {
			err = json.Unmarshal(b, &meta)
		}
		if err != nil || meta.Version != need.version {
			return nil, fmt.Errorf("psparse: %s %s is not in %s (found %q): %s", need.pkg, need.version, modules, meta.Version, install)
		}
	}
	return &Parser{node: node, modules: modules}, nil
}

// findUp looks for rel in the working directory and every directory above
// it.
func findUp(rel string) string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, rel)); err == nil && fi.IsDir() {
			return filepath.Join(dir, rel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Problems parses each named source and returns, by name, where the
// grammar failed; a source that parses has none.
func (p *Parser) Problems(ctx context.Context, sources map[string]string) (map[string][]Problem, error) {
	script, err := os.CreateTemp("", "psparse-*.cjs")
	if err != nil {
		return nil, err
	}
	defer os.Remove(script.Name())
	if _, err := script.Write(checkScript); err != nil {
		script.Close()
		return nil, err
	}
	script.Close()
	input, err := json.Marshal(sources)
	if err != nil {
		return nil, err
	}
	// Liftoff only: V8's optimising compiler would spend half a minute of
	// CPU on the grammar's WebAssembly, mostly after the work is done,
	// for a run that takes a second without it. A Node whose V8 does not
	// know the flag runs without it.
	var stdout, stderr bytes.Buffer
	for _, flags := range [][]string{{"--liftoff-only"}, nil} {
		stdout.Reset()
		stderr.Reset()
		cmd := exec.CommandContext(ctx, p.node, append(flags, script.Name())...)
		cmd.Env = append(os.Environ(), "NODE_PATH="+p.modules)
		cmd.Stdin = bytes.NewReader(input)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err = cmd.Run()
		if err == nil || !strings.Contains(stderr.String(), "bad option") {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("psparse: node %s: %v: %s", script.Name(), err, strings.TrimSpace(stderr.String()))
	}
	out := map[string][]Problem{}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("psparse: the checker's answer is not JSON: %v", err)
	}
	for name := range sources {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("psparse: the checker said nothing about %s", name)
		}
	}
	return out, nil
}

// Describe renders problems for an error message, worst first.
func Describe(problems []Problem) string {
	sorted := append([]Problem(nil), problems...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Line < sorted[j].Line })
	parts := make([]string, len(sorted))
	for i, p := range sorted {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

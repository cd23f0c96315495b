package psparse

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProblems: the grammar accepts PowerShell and points at what is not.
func TestProblems(t *testing.T) {
	p, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := p.Problems(ctx, map[string]string{
		"good":            "param([string]$Data)\n$h = @{ a = 1 }\nif ($h.a -eq 1) { Write-Output \"ok $($h.a)\" }\n",
		"here-string":     "$s = @'\nanything { goes\n'@\nWrite-Output $s\n",
		"unclosed brace":  "function f {\n  Write-Output 'x'\n",
		"stray else":      "if ($a) { 1 } else else { 2 }\n",
		"unclosed string": "Write-Output \"never ends\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"good", "here-string"} {
		if len(got[name]) != 0 {
			t.Errorf("%s: %s", name, Describe(got[name]))
		}
	}
	for _, name := range []string{"unclosed brace", "stray else", "unclosed string"} {
		if len(got[name]) == 0 {
			t.Errorf("%s: the grammar found nothing wrong", name)
		}
	}
	if d := Describe(got["stray else"]); !strings.Contains(d, "1:") {
		t.Errorf("the stray else is not placed on line 1: %s", d)
	}
}

func TestFindNamesWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PASSPORT_NODE_MODULES", dir)
	for range 20 { // once a map's order picked the package named; it must not
		if _, err := Find(); err == nil || !strings.Contains(err.Error(), "tree-sitter-powershell "+GrammarVersion) {
			t.Fatalf("Find with empty modules: %v", err)
		}
	}
	// With the grammar in place, the runtime it still lacks is named.
	grammar := filepath.Join(dir, "tree-sitter-powershell")
	if err := os.MkdirAll(grammar, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(grammar, "package.json"), []byte(`{"version":"`+GrammarVersion+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), "web-tree-sitter "+WebRuntimeVersion) {
		t.Fatalf("Find with only the grammar: %v", err)
	}
}

package psparse

import (
	"context"
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
	t.Setenv("PASSPORT_NODE_MODULES", t.TempDir())
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), "tree-sitter-powershell "+GrammarVersion) {
		t.Fatalf("Find with empty modules: %v", err)
	}
}

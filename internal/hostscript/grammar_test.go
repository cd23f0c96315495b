package hostscript

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/psparse"
)

// windowsSources is every PowerShell text Passport ships: each source file
// and each action's whole program, with realistic data and with none.
func windowsSources(t *testing.T) map[string]string {
	t.Helper()
	sources := map[string]string{}
	entries, err := os.ReadDir("programs/windows")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".ps1") {
			b, err := os.ReadFile(filepath.Join("programs/windows", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			sources[e.Name()] = string(b)
		}
	}
	for action := range winBodies {
		sources[action+" program, no data"] = winAssemble(action, "")
	}
	g := fixedWindowsGrant()
	provision, err := ProvisionWindows(g)
	if err != nil {
		t.Fatal(err)
	}
	extend, _ := ExtendWindows(g.Username, time.Now().Add(time.Hour))
	revoke, _ := RevokeWindows(g.Username)
	check, _ := CheckWindows(g.Username, g.RequestID)
	collect, _ := CollectWindows(g.Username, time.Now().Add(-time.Hour))
	for name, p := range map[string]string{"provision": provision, "extend": extend, "revoke": revoke, "check": check, "collect": collect,
		"inventory": InventoryWindows(), "sweep": SweepWindows()} {
		sources[name+" program"] = p
	}
	return sources
}

// TestWindowsGrammar parses every shipped PowerShell text with
// tree-sitter-powershell: none may hold an ERROR or MISSING node. A copy
// broken on purpose must be caught, and the record the lab's Windows
// hosts trust (programs/windows/grammar.sum) must be these programs'.
func TestWindowsGrammar(t *testing.T) {
	parser, err := psparse.Find()
	if err != nil {
		t.Fatal(err)
	}
	sources := windowsSources(t)
	broken := map[string]string{
		"lib.ps1 without its last brace":   sources["lib.ps1"][:strings.LastIndex(sources["lib.ps1"], "}")],
		"provision without its last brace": sources["provision program"][:strings.LastIndex(sources["provision program"], "}")],
		"a stray token":                    "if ($x -eq 1) { Write-Output 'a' } else else { }\n",
	}
	all := map[string]string{}
	for k, v := range sources {
		all[k] = v
	}
	for k, v := range broken {
		all["broken: "+k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	problems, err := parser.Problems(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	for name := range sources {
		if p := problems[name]; len(p) > 0 {
			t.Errorf("%s does not parse as PowerShell: %s", name, psparse.Describe(p))
		}
	}
	for name := range broken {
		if len(problems["broken: "+name]) == 0 {
			t.Errorf("the grammar found nothing wrong with %s", name)
		}
	}
	if t.Failed() {
		return
	}

	const sumFile = "programs/windows/grammar.sum"
	record := WindowsGrammarRecord()
	if *update {
		if err := os.WriteFile(sumFile, []byte(record), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if WindowsGrammarSum != record {
		t.Errorf("%s is not the record of the programs that just parsed; run go test ./internal/hostscript -run TestWindowsGrammar -update and commit it", sumFile)
	}
}

func TestVerifyWindowsGrammar(t *testing.T) {
	if err := VerifyWindowsGrammar(WindowsGrammarRecord(), "provision"); err != nil {
		t.Errorf("the current record refuses provision: %v", err)
	}
	stale := strings.Replace(WindowsGrammarRecord(), windowsTemplateDigest("revoke"), strings.Repeat("0", 64), 1)
	if err := VerifyWindowsGrammar(stale, "revoke"); err == nil || !strings.Contains(err.Error(), "shown to parse") {
		t.Errorf("a record without revoke's program: %v", err)
	}
	if err := VerifyWindowsGrammar(stale, "provision"); err != nil {
		t.Errorf("a record that still has provision refuses it: %v", err)
	}
}

package hostscript

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// WindowsGrammarSum records the Windows programs that have been shown to
// parse under a real PowerShell grammar (tree-sitter-powershell, in
// TestWindowsGrammar, which fails while this record is not the programs'
// own): one line per action, the SHA-256 of its program with an empty
// data line, and the action. The data line cannot change how a program
// parses: it is one single-quoted string of base64 characters.
//
// The lab's Windows hosts run a program only when its action's line is
// here; a program changed since it was last parsed is refused.
//
//go:embed programs/windows/grammar.sum
var WindowsGrammarSum string

// WindowsGrammarRecord is what WindowsGrammarSum must say for the
// programs as they are now.
func WindowsGrammarRecord() string {
	actions := make([]string, 0, len(winBodies))
	for a := range winBodies {
		actions = append(actions, a)
	}
	slices.Sort(actions)
	var b strings.Builder
	for _, a := range actions {
		fmt.Fprintf(&b, "%s  %s\n", windowsTemplateDigest(a), a)
	}
	return b.String()
}

func windowsTemplateDigest(action string) string {
	sum := sha256.Sum256([]byte(winAssemble(action, "")))
	return hex.EncodeToString(sum[:])
}

// VerifyWindowsGrammar says whether action's program is one the record sum
// (WindowsGrammarSum's form) shows was parsed by the grammar.
func VerifyWindowsGrammar(sum, action string) error {
	if _, known := winBodies[action]; !known {
		return fmt.Errorf("hostscript: no Windows action %q", action)
	}
	want := windowsTemplateDigest(action) + "  " + action
	for _, line := range strings.Split(sum, "\n") {
		if strings.TrimSpace(line) == want {
			return nil
		}
	}
	return fmt.Errorf("hostscript: the Windows %s program has changed since it was last shown to parse as PowerShell (programs/windows/grammar.sum); run go test ./internal/hostscript -run TestWindowsGrammar -update", action)
}

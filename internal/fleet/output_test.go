package fleet

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// combined writes stdout and stderr the way the SSM agent reports them when
// nothing needs cutting.
func combined(stdout, stderr string) string {
	if stderr == "" {
		return stdout
	}
	return stdout + stderrTitle + stderr
}

func TestSplitOutput(t *testing.T) {
	tests := []struct {
		name           string
		out            string
		stdout, stderr string
		whole          bool
	}{
		{"nothing", "", "", "", true},
		{"stdout only", "ok user=pp-x\n", "ok user=pp-x\n", "", true},
		{"stderr only", stderrTitle + "useradd: user 'x' exists\n", "", "useradd: user 'x' exists\n", true},
		{"both", "step 1\n" + stderrTitle + "boom\n", "step 1\n", "boom\n", true},
		{"stdout cut", strings.Repeat("a", 1000) + stdoutCut + stderrTitle + "err", strings.Repeat("a", 1000) + stdoutCut, "err", false},
		{"stderr cut", "a" + stderrTitle + strings.Repeat("e", 2000) + stderrCut, "a", strings.Repeat("e", 2000) + stderrCut, false},
		{"title printed by the script", "x" + stderrTitle + "y" + stderrTitle + "z", "x", "y" + stderrTitle + "z", false},
		{"at the agent's limit without a mark", strings.Repeat("a", agentOutputLimit), strings.Repeat("a", agentOutputLimit), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, whole := splitOutput(tt.out)
			if stdout != tt.stdout || stderr != tt.stderr || whole != tt.whole {
				t.Errorf("splitOutput = (%q, %q, %v), want (%q, %q, %v)", stdout, stderr, whole, tt.stdout, tt.stderr, tt.whole)
			}
		})
	}
}

// FuzzSplitOutput checks that a split called whole is exact: the two
// streams rebuild the reported output, and streams the agent reported
// without cuts come back as they were.
func FuzzSplitOutput(f *testing.F) {
	f.Add("ok\n", "")
	f.Add("", "useradd: user 'x' exists\n")
	f.Add("a"+stderrTitle, "b")
	f.Add(stdoutCut, stderrCut)
	f.Add("\x1b[31mred\x1b[0m", "\xff\xfe")
	f.Fuzz(func(t *testing.T, stdout, stderr string) {
		out := combined(stdout, stderr)
		gotOut, gotErr, whole := splitOutput(out)
		if !whole {
			return
		}
		if combined(gotOut, gotErr) != out {
			t.Fatalf("split of %q into (%q, %q) loses bytes", out, gotOut, gotErr)
		}
		if !strings.Contains(stdout+stderr, stderrTitle) && (gotOut != stdout || gotErr != stderr) {
			t.Fatalf("split of (%q, %q) gave (%q, %q)", stdout, stderr, gotOut, gotErr)
		}
	})
}

func TestDetail(t *testing.T) {
	tests := []struct {
		name, output, want string
	}{
		{"last line", "creating user\nuseradd: user 'x' exists\n", "useradd: user 'x' exists"},
		{"skips blank lines", "error one\n\n  \n", "error one"},
		{"nothing", "\n\n", ""},
		{"terminal escapes", "\x1b]0;owned\x07\x1b[2Jhello", "?]0;owned??[2Jhello"},
		{"carriage return cannot hide text", "real error\rfake ok", "real error?fake ok"},
		{"bidi override", "abc\u202edcb", "abc?dcb"},
		{"invalid utf-8", "bad \xff byte", "bad   byte"},
		{"long line is cut", strings.Repeat("x", 500), strings.Repeat("x", maxDetail) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detail(tt.output); got != tt.want {
				t.Errorf("detail(%q) = %q, want %q", tt.output, got, tt.want)
			}
		})
	}
}

// FuzzDetail checks that whatever a host prints, the quoted line is short,
// valid UTF-8 and free of anything a terminal would interpret.
func FuzzDetail(f *testing.F) {
	f.Add("useradd: user 'x' exists\n")
	f.Add("\x1b[2J\x1b]8;;http://x\x07link\x1b]8;;\x07")
	f.Add("\xc3\x28\u2028\u202e\x00")
	f.Fuzz(func(t *testing.T, output string) {
		got := detail(output)
		if !utf8.ValidString(got) {
			t.Fatalf("detail(%q) = %q is not valid UTF-8", output, got)
		}
		if n := utf8.RuneCountInString(got); n > maxDetail+1 {
			t.Fatalf("detail(%q) has %d characters", output, n)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) && r != ' ' {
				t.Fatalf("detail(%q) = %q keeps %U", output, got, r)
			}
		}
	})
}

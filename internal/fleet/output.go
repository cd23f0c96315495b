package fleet

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The SSM agent reports a plugin's output to the service as one string:
// stdout, then, only when stderr is not empty, a title line and stderr. The
// whole is kept under agentOutputLimit characters; to get there the agent
// cuts stdout, stderr or both and marks each cut. ListCommandInvocations
// returns that string (the service allows up to 2,500 characters);
// GetCommandInvocation returns the two streams separately and longer.
const (
	stderrTitle      = "\n----------ERROR-------\n"
	stdoutCut        = "\n---Output truncated---"
	stderrCut        = "\n---Error truncated----"
	agentOutputLimit = 2400
)

// splitOutput separates a plugin's combined output into stdout and stderr.
// whole is false when the agent cut the output, or when the title occurs
// more than once so the split is a guess (a script printed it); the caller
// then asks GetCommandInvocation for the streams.
func splitOutput(out string) (stdout, stderr string, whole bool) {
	whole = !strings.Contains(out, stdoutCut) && !strings.HasSuffix(out, stderrCut) &&
		len(out) < agentOutputLimit
	i := strings.Index(out, stderrTitle)
	if i < 0 {
		return out, "", whole
	}
	// Searching again from the next byte, not past the title, also catches
	// a title that overlaps another (stdout ending in "\n---…").
	// The agent writes the title only before a non-empty stderr, so a title
	// at the very end was printed by the script.
	if strings.Contains(out[i+1:], stderrTitle) || i+len(stderrTitle) == len(out) {
		whole = false
	}
	return out[:i], out[i+len(stderrTitle):], whole
}

// maxDetail bounds the part of a host's output quoted in a Reason.
const maxDetail = 200

// detail picks the line of a script's output that best explains a failure:
// the last non-blank one, where `set -e` scripts and most tools put the
// error. Output is hostile (a compromised host chooses it) and lands in
// operators' terminals and logs, so control characters, escape sequences
// and invalid UTF-8 are replaced and the line is cut short.
func detail(output string) string {
	lines := strings.Split(output, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if line := printable(lines[i]); line != "" {
			return line
		}
	}
	return ""
}

func printable(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxDetail {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError, r == '\t':
			r = ' '
		case !unicode.IsPrint(r) && r != ' ':
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

package recording

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Match is a line of a session that matched a search.
type Match struct {
	// At is when the line began, from the session's start.
	At time.Duration `json:"-"`
	// Input is true for what the person typed or sent, false for what
	// the session printed.
	Input bool   `json:"input"`
	Line  string `json:"line"`
}

// maxLine bounds a line of text a search holds; a longer one is cut
// into pieces of this size.
const maxLine = 4096

// Grep returns the lines of the session's input and output that re
// matches, at most limit of them (and whether more were left off).
// Lines are what a person would have seen: escape sequences removed,
// typed lines as edited with backspace, Ctrl-U and Ctrl-W.
func Grep(re *regexp.Regexp, events Events, limit int) (matches []Match, more bool, err error) {
	lines := [2]*textLines{{}, {input: true}}
	emit := func(m Match) bool {
		if !re.MatchString(m.Line) {
			return true
		}
		if len(matches) >= limit {
			more = true
			return false
		}
		matches = append(matches, m)
		return true
	}
	for {
		ev, err := events.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return matches, more, err
		}
		var t *textLines
		switch {
		case ev.Kind.Output():
			t = lines[0]
		case ev.Kind.Input():
			t = lines[1]
		default:
			continue
		}
		if !t.write(ev.At, ev.Data, emit) {
			return matches, true, nil
		}
	}
	for _, t := range lines {
		if !t.flush(emit) {
			break
		}
	}
	return matches, more, nil
}

// Text reads the session once and returns what it printed and what was
// typed into it as lines of plain text, as Grep sees them.
func Text(events Events) (printed, typed []Match, err error) {
	out, in := &textLines{}, &textLines{input: true}
	keepOut := func(m Match) bool { printed = append(printed, m); return true }
	keepIn := func(m Match) bool { typed = append(typed, m); return true }
	for {
		ev, err := events.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return printed, typed, err
		}
		switch {
		case ev.Kind.Output():
			out.write(ev.At, ev.Data, keepOut)
		case ev.Kind.Input():
			in.write(ev.At, ev.Data, keepIn)
		}
	}
	out.flush(keepOut)
	in.flush(keepIn)
	return printed, typed, nil
}

// textLines turns a terminal stream into lines of text.
type textLines struct {
	input   bool
	line    []byte
	started time.Duration
	esc     escState
}

type escState uint8

const (
	plain     escState = iota
	escape             // after ESC
	escOne             // ESC and an intermediate: one more byte ends it
	csi                // ESC [ ... final byte
	str                // OSC, DCS, SOS, PM, APC: until BEL or ESC \
	strEscape          // ESC inside a string
)

func (t *textLines) write(at time.Duration, data []byte, emit func(Match) bool) bool {
	for _, c := range data {
		switch t.esc {
		case escape:
			switch {
			case c == '[':
				t.esc = csi
			case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
				t.esc = str
			case c >= 0x20 && c <= 0x2f:
				t.esc = escOne
			default:
				t.esc = plain
			}
			continue
		case escOne:
			t.esc = plain
			continue
		case csi:
			if c >= 0x40 && c <= 0x7e {
				t.esc = plain
			}
			continue
		case str:
			if c == 0x07 {
				t.esc = plain
			} else if c == 0x1b {
				t.esc = strEscape
			}
			continue
		case strEscape:
			t.esc = plain
			if c != '\\' {
				t.esc = str
			}
			continue
		}
		switch {
		case c == 0x1b:
			t.esc = escape
		case c == '\n' || c == '\r':
			// A carriage return ends a typed line; in output it starts the
			// line again (CR LF, or a progress bar), and the text so far
			// is what was seen.
			if !t.flush(emit) {
				return false
			}
		case t.input && (c == 0x7f || c == 0x08):
			t.line = dropRune(t.line)
		case t.input && c == 0x15: // Ctrl-U
			t.line = t.line[:0]
		case t.input && c == 0x17: // Ctrl-W
			s := strings.TrimRight(string(t.line), " ")
			t.line = append(t.line[:0], s[:strings.LastIndexByte(s, ' ')+1]...)
		case c == '\t' || c >= 0x20 && c != 0x7f:
			if len(t.line) == 0 {
				t.started = at
			}
			t.line = append(t.line, c)
			if len(t.line) >= maxLine {
				if !t.flush(emit) {
					return false
				}
			}
		}
	}
	return true
}

func (t *textLines) flush(emit func(Match) bool) bool {
	if len(t.line) == 0 {
		return true
	}
	s := strings.ToValidUTF8(string(t.line), "\uFFFD")
	t.line = t.line[:0]
	return emit(Match{At: t.started, Input: t.input, Line: s})
}

func dropRune(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	_, n := utf8.DecodeLastRune(b)
	return b[:len(b)-n]
}

// Found is a matched line of one recording of a search.
type Found struct {
	Ref Ref
	Match
}

// Problem is a recording a search could not read.
type Problem struct {
	Ref Ref
	Err error
}

// Search greps each of refs in c for re, at most limit lines in all.
// A recording that cannot be read (damaged, or changed since it was
// collected) is a Problem, and the search goes on: an auditor must hear
// of it, and still see the rest.
func Search(ctx context.Context, c Catalog, refs []Ref, re *regexp.Regexp, limit int) (found []Found, truncated bool, problems []Problem, err error) {
	for _, ref := range refs {
		if err := ctx.Err(); err != nil {
			return found, truncated, problems, err
		}
		if len(found) >= limit {
			return found, true, problems, nil
		}
		matches, more, err := grepOne(ctx, c, ref, re, limit-len(found))
		for _, m := range matches {
			found = append(found, Found{Ref: ref, Match: m})
		}
		truncated = truncated || more
		if err != nil {
			problems = append(problems, Problem{Ref: ref, Err: err})
		}
	}
	return found, truncated, problems, nil
}

func grepOne(ctx context.Context, c Catalog, ref Ref, re *regexp.Regexp, limit int) ([]Match, bool, error) {
	l, err := c.Open(ctx, ref)
	if err != nil {
		return nil, false, err
	}
	events, err := l.Events()
	if err != nil {
		return nil, false, err
	}
	defer events.Close()
	return Grep(re, events, limit)
}

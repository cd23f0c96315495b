package recording

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A search finds what was typed and what was printed, as a person saw
// it: colours and other escape sequences removed, typed lines as edited.
func TestGrepRealRecording(t *testing.T) {
	l, err := Open(os.DirFS("testdata/sudo-terminal"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := l.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	m, more, err := Grep(regexp.MustCompile(`secret|^red$`), ev, 10)
	if err != nil || more {
		t.Fatal(err, more)
	}
	var got []string
	for _, x := range m {
		got = append(got, map[bool]string{true: "in", false: "out"}[x.Input]+":"+x.Line)
	}
	want := []string{"in:secret input", "out:secret input", "out:got secret input", "out:red"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("matches %q, want %q", got, want)
	}
	if m[0].At != 2545419*time.Nanosecond {
		t.Errorf("the typed line began at %v", m[0].At)
	}
}

// TestText: what was typed and what was printed become the lines a person
// typed and saw, with line editing and escape sequences applied.
func TestText(t *testing.T) {
	for _, c := range []struct {
		name  string
		input bool
		data  []string
		want  []string
	}{
		{"backspace", true, []string{"lss\x7f -l\r"}, []string{"ls -l"}},
		{"ctrl-h, ctrl-u, ctrl-w", true, []string{"abc\x08\x08x\r", "junk\x15ok\r", "rm -rf /tmp/x\x17y\r"}, []string{"ax", "ok", "rm -rf y"}},
		{"utf-8 backspace", true, []string{"wö\x7fo\r"}, []string{"wo"}},
		{"csi and osc", false, []string{"\x1b[1;31mred\x1b[0m \x1b]0;title\x07x\x1b]2;t\x1b\\y\r\n"}, []string{"red xy"}},
		{"split escape", false, []string{"a\x1b[3", "1mb\x1b", "(Bc\n"}, []string{"abc"}},
		{"progress", false, []string{"10%\r50%\r100%\r\n"}, []string{"10%", "50%", "100%"}},
		{"long line", false, []string{strings.Repeat("x", maxLine+1)}, []string{strings.Repeat("x", maxLine), "x"}},
		{"bad utf-8", false, []string{"a\xffb\n"}, []string{"a\ufffdb"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			kind := TTYOut
			if c.input {
				kind = TTYIn
			}
			l := &eventList{}
			for i, d := range c.data {
				l.evs = append(l.evs, Event{At: time.Duration(i) * time.Second, Kind: kind, Data: []byte(d)})
			}
			printed, typed, err := Text(l)
			if err != nil {
				t.Fatal(err)
			}
			lines, other := printed, typed
			if c.input {
				lines, other = typed, printed
			}
			if len(other) != 0 {
				t.Errorf("the other direction has lines: %+v", other)
			}
			var got []string
			for _, x := range lines {
				got = append(got, x.Line)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("lines %q, want %q", got, c.want)
			}
		})
	}
}

// At most limit matches come back, and more says others were left off.
func TestGrepLimit(t *testing.T) {
	l := &eventList{evs: []Event{{Kind: TTYOut, Data: []byte("x1\nx2\nx3\n")}}}
	m, more, err := Grep(regexp.MustCompile("x"), l, 2)
	if err != nil || !more || len(m) != 2 || m[1].Line != "x2" {
		t.Errorf("Grep = %v, %v, %v", m, more, err)
	}
}

// One read splits a session whose typing and output interleave, each in
// its own order.
func TestTextSplitsTypedFromPrinted(t *testing.T) {
	l := &eventList{evs: []Event{
		{At: 0, Kind: TTYOut, Data: []byte("$ ")},
		{At: time.Second, Kind: TTYIn, Data: []byte("ech")},
		{At: 2 * time.Second, Kind: TTYOut, Data: []byte("echo hi\r\nhi\r\n$ ")},
		{At: 3 * time.Second, Kind: TTYIn, Data: []byte("o hi\rexit\r")},
	}}
	printed, typed, err := Text(l)
	if err != nil {
		t.Fatal(err)
	}
	var out, in []string
	for _, m := range printed {
		out = append(out, m.Line)
	}
	for _, m := range typed {
		in = append(in, m.Line)
	}
	if strings.Join(out, "|") != "$ echo hi|hi|$ " || strings.Join(in, "|") != "echo hi|exit" {
		t.Errorf("printed %q, typed %q", out, in)
	}
	if typed[0].At != time.Second {
		t.Errorf("the first typed line began at %v, want 1s", typed[0].At)
	}
}

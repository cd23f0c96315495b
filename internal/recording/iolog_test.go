package recording

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// readAll reads every event, copying the data the reader reuses.
func readAll(t testing.TB, events Events) []Event {
	t.Helper()
	var out []Event
	for {
		ev, err := events.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading events: %v", err)
		}
		ev.Data = append([]byte(nil), ev.Data...)
		out = append(out, ev)
	}
}

func openDir(t *testing.T, fsys fs.FS) (*Log, []Event) {
	t.Helper()
	l, err := Open(fsys)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := l.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	return l, readAll(t, ev)
}

func joined(events []Event, kinds ...Kind) string {
	var b strings.Builder
	for _, ev := range events {
		for _, k := range kinds {
			if ev.Kind == k {
				b.Write(ev.Data)
			}
		}
	}
	return b.String()
}

// The testdata directories are I/O logs sudo 1.9.13 wrote (Debian 12):
// a command on a terminal, uncompressed as Passport's recorder keeps
// them; the same gzip-compressed, sudo's default; and a command without
// a terminal whose input came from a pipe.
func TestOpenSudoLogs(t *testing.T) {
	t.Run("terminal", func(t *testing.T) {
		l, events := openDir(t, os.DirFS("testdata/sudo-terminal"))
		in := l.Info
		if in.User != "nobody" || in.SubmitUser != "root" || !in.Terminal || in.TTY != "/dev/pts/0" || in.Rows != 24 || in.Cols != 80 {
			t.Errorf("info = %+v", in)
		}
		if want := time.Unix(1796539616, 250737695).UTC(); !in.Start.Equal(want) {
			t.Errorf("start = %v, want %v", in.Start, want)
		}
		if !strings.HasPrefix(in.Asked, `sh -c printf "hello wörld\n"`) {
			t.Errorf("asked = %q", in.Asked)
		}
		out := joined(events, TTYOut)
		for _, want := range []string{"hello wörld\r\n", "got secret input\r\n", "\x1b[31mred\x1b[0m", "done"} {
			if !strings.Contains(out, want) {
				t.Errorf("terminal output lacks %q: %q", want, out)
			}
		}
		if got := joined(events, TTYIn); got != "secret input\n\x04" {
			t.Errorf("terminal input = %q", got)
		}
		// The delays of the timing file add up, in order.
		var last time.Duration
		for _, ev := range events {
			if ev.At < last {
				t.Fatalf("event at %v after one at %v", ev.At, last)
			}
			last = ev.At
		}
		if want := 310536452 * time.Nanosecond; last != want {
			t.Errorf("the last event is at %v, want %v (the sum of the delays)", last, want)
		}
	})
	t.Run("gzip", func(t *testing.T) {
		l, events := openDir(t, os.DirFS("testdata/sudo-gzip"))
		if !l.Info.Terminal {
			t.Error("not a terminal session")
		}
		if out := joined(events, TTYOut); !strings.Contains(out, "compressed hello\r\nbye") {
			t.Errorf("output = %q", out)
		}
	})
	t.Run("pipe", func(t *testing.T) {
		l, events := openDir(t, os.DirFS("testdata/sudo-pipe"))
		if l.Info.Terminal || l.Info.Asked != "sh -c cat; echo to stderr >&2; exit 3" {
			t.Errorf("info = %+v", l.Info)
		}
		if got := joined(events, StdIn); got != "piped stdin\n" {
			t.Errorf("stdin = %q", got)
		}
		if got := joined(events, StdOut); got != "piped stdin\n" {
			t.Errorf("stdout = %q", got)
		}
		if got := joined(events, StdErr); got != "to stderr\n" {
			t.Errorf("stderr = %q", got)
		}
	})
	t.Run("legacy log file", func(t *testing.T) {
		fsys := mapFS(t, "testdata/sudo-terminal")
		delete(fsys, "log.json")
		l, events := openDir(t, fsys)
		if l.Info.User != "nobody" || l.Info.TTY != "/dev/pts/0" || l.Info.Start.Unix() != 1796539616 || !l.Info.Terminal {
			t.Errorf("info from the log file = %+v", l.Info)
		}
		if len(events) != 7 {
			t.Errorf("%d events, want 7", len(events))
		}
	})
}

// The recorder's own session program: what the person asked sshd for is
// its one argument, and an empty one is a login shell.
func TestAskedOfPassportSession(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{SessionProgram, "uname -a"}, "uname -a"},
		{[]string{SessionProgram, ""}, ""},
		{[]string{SessionProgram}, ""},
		{[]string{"sh", "-c", "x"}, "sh -c x"},
	} {
		if got := asked(Info{Command: SessionProgram, Argv: c.argv}); got != c.want && c.argv[0] == SessionProgram {
			t.Errorf("asked(%q) = %q, want %q", c.argv, got, c.want)
		}
	}
	if got := asked(Info{Command: "/usr/bin/sh", Argv: []string{"sh", "-c", "x"}}); got != "sh -c x" {
		t.Errorf("asked of another command = %q", got)
	}
}

func mapFS(t testing.TB, dir string) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = &fstest.MapFile{Data: b}
	}
	return out
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	z.Write(b)
	z.Close()
	return buf.Bytes()
}

// Every damaged or forged recording is refused with an error that says
// which file and line and what is wrong, never a panic or a hang.
func TestBadRecordings(t *testing.T) {
	good := mapFS(t, "testdata/sudo-terminal")
	set := func(name, data string) func(fstest.MapFS) {
		return func(f fstest.MapFS) { f[name] = &fstest.MapFile{Data: []byte(data)} }
	}
	for _, c := range []struct {
		name   string
		change func(fstest.MapFS)
		want   string
	}{
		{"no description", func(f fstest.MapFS) { delete(f, "log.json"); delete(f, "log") }, "not a sudo I/O log"},
		{"no timing", func(f fstest.MapFS) { delete(f, "timing") }, "timing file is missing"},
		{"json not json", set("log.json", "{nope"), "log.json is not sudo's JSON"},
		{"json no user", set("log.json", `{"timestamp":{"seconds":1700000000}}`), "names no user"},
		{"json bad time", set("log.json", `{"timestamp":{"seconds":-5},"runuser":"x"}`), "timestamp"},
		{"json user with escape", set("log.json", `{"timestamp":{"seconds":1700000000},"runuser":"a\u001b[2J"}`), "that sudo would not write"},
		{"json terminal size", set("log.json", `{"timestamp":{"seconds":1700000000},"runuser":"a","lines":99999}`), "not a terminal size"},
		{"json huge", set("log.json", `{"x":"`+strings.Repeat("a", maxInfoBytes)+`"}`), "larger than"},
		{"legacy short", func(f fstest.MapFS) { delete(f, "log.json"); f["log"] = &fstest.MapFile{Data: []byte("1:a:b")} }, "three lines"},
		{"legacy fields", func(f fstest.MapFS) {
			delete(f, "log.json")
			f["log"] = &fstest.MapFile{Data: []byte("1:a:b\n/\ncmd\n")}
		}, "not 7"},
		{"legacy time", func(f fstest.MapFS) {
			delete(f, "log.json")
			f["log"] = &fstest.MapFile{Data: []byte("x:a:b::tty:1:1\n/\ncmd\n")}
		}, "start time"},
		{"event type", set("timing", "9 0.1 3\n"), "timing line 1: event type \"9\""},
		{"negative delay", set("timing", "4 -0.1 3\n"), "delay \"-0.1\""},
		{"delay letters", set("timing", "4 1e3 3\n"), "delay \"1e3\""},
		{"delay too precise", set("timing", "4 0.0000000001 3\n"), "nine decimals"},
		{"delay of ages", set("timing", "4 99999999999 3\n"), "longer than a recording"},
		{"session too long", set("timing", strings.Repeat("5 31000000 24 80\n", 2)), "timing line 2: the session would last past"},
		{"byte count", set("timing", "4 0.1 -3\n"), "byte count \"-3\""},
		{"byte count huge", set("timing", "4 0.1 999999999\n"), "byte count"},
		{"more than recorded", set("timing", "4 0.1 5\n4 0.1 100000\n"), "timing line 2: the timing file says ttyout holds at least 100005 bytes, but it ends after 71"},
		{"no stream file", func(f fstest.MapFS) { delete(f, "stderr"); f["timing"] = &fstest.MapFile{Data: []byte("2 0.1 1\n")} }, "no stderr file"},
		{"winsize fields", set("timing", "5 0.1 24\n"), "lines and columns"},
		{"winsize huge", set("timing", "5 0.1 24 123456\n"), "not a terminal size"},
		{"suspend", set("timing", "7 0.1\n"), "one signal name"},
		{"io fields", set("timing", "4 0.1 1 2\n"), "byte count after the delay"},
		{"one field", set("timing", "4\n"), "is not an event"},
		{"long line", set("timing", "4 0.1 "+strings.Repeat("1", 300)+"\n"), "longer than 256 bytes"},
		{"bad gzip", set("ttyout", "\x1f\x8b\x08junk"), "ttyout is not valid gzip"},
		{"gzip cut short", func(f fstest.MapFS) {
			z := gz([]byte(strings.Repeat("x", 100)))
			f["ttyout"] = &fstest.MapFile{Data: z[:12]}
			f["timing"] = &fstest.MapFile{Data: []byte("4 0.1 100\n")}
		}, "ttyout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := fstest.MapFS{}
			for k, v := range good {
				f[k] = &fstest.MapFile{Data: v.Data}
			}
			c.change(f)
			err := readRecording(f)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want one saying %q", err, c.want)
			}
		})
	}
}

// readRecording opens and reads every event of fsys, returning the first
// error.
func readRecording(fsys fs.FS) error {
	l, err := Open(fsys)
	if err != nil {
		return err
	}
	ev, err := l.Events()
	if err != nil {
		return err
	}
	defer ev.Close()
	for {
		if _, err := ev.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// Timing written by older sudo, with the locale's decimal comma, and a
// last line cut off without its newline (sudo killed mid-write), still
// reads.
func TestTimingVariants(t *testing.T) {
	f := mapFS(t, "testdata/sudo-terminal")
	f["timing"] = &fstest.MapFile{Data: []byte("6 0,5 5\r\n5 1 30 100\n7 0.25 TSTP\n4 0.25 3")}
	_, events := openDir(t, f)
	if len(events) != 4 {
		t.Fatalf("%d events, want 4: %+v", len(events), events)
	}
	if events[0].Kind != TTYOut || events[0].At != 500*time.Millisecond || string(events[0].Data) != "secre" {
		t.Errorf("first event = %+v", events[0])
	}
	if events[1].Kind != Resize || events[1].Rows != 30 || events[1].Cols != 100 || events[1].At != 1500*time.Millisecond {
		t.Errorf("resize = %+v", events[1])
	}
	if events[2].Kind != Suspend || events[2].Signal != "TSTP" {
		t.Errorf("suspend = %+v", events[2])
	}
	if events[3].At != 2*time.Second || string(events[3].Data) != "t i" {
		t.Errorf("last = %+v", events[3])
	}
}

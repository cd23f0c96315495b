package recording

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// events is a fixed list of events.
type eventList struct {
	evs []Event
	i   int
}

func (l *eventList) Next() (Event, error) {
	if l.i >= len(l.evs) {
		return Event{}, io.EOF
	}
	l.i++
	return l.evs[l.i-1], nil
}

// The export is asciicast v2 as its specification says: JSON lines, a
// header object with version 2 and the terminal's size, then
// [time, code, data] events in time order.
func TestAsciicastExport(t *testing.T) {
	info, cast := exportFile(t, "testdata/sudo-terminal")
	lines := strings.Split(strings.TrimSuffix(string(cast), "\n"), "\n")
	var h map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil {
		t.Fatalf("header %q: %v", lines[0], err)
	}
	if h["version"] != 2.0 || h["width"] != 80.0 || h["height"] != 24.0 || h["timestamp"] != float64(info.Start.Unix()) {
		t.Errorf("header = %v", h)
	}
	if title, _ := h["title"].(string); !strings.HasPrefix(title, "nobody on vm: sh -c") {
		t.Errorf("title = %q", title)
	}
	var output, input strings.Builder
	last := -1.0
	for _, l := range lines[1:] {
		var ev []any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("event line %q is not [time, code, data]: %v", l, err)
		}
		at, ok1 := ev[0].(float64)
		code, ok2 := ev[1].(string)
		data, ok3 := ev[2].(string)
		if !ok1 || !ok2 || !ok3 || at < last {
			t.Fatalf("event line %q: not [number, string, string] in time order", l)
		}
		last = at
		switch code {
		case "o":
			output.WriteString(data)
		case "i":
			input.WriteString(data)
		default:
			t.Errorf("code %q", code)
		}
	}
	if !strings.Contains(output.String(), "hello wörld\r\n") || !strings.Contains(output.String(), "\x1b[31mred") {
		t.Errorf("output = %q", output.String())
	}
	if input.String() != "secret input\n\x04" {
		t.Errorf("input = %q", input.String())
	}
	if last < 0.31 || last > 0.311 {
		t.Errorf("last event at %v s, want 0.3105", last)
	}

	// And it reads back as it was written.
	c, err := ReadAsciicast(bytes.NewReader(cast))
	if err != nil {
		t.Fatal(err)
	}
	back := readAll(t, c)
	if got := joined(back, TTYOut); got != output.String() {
		t.Errorf("read back %q", got)
	}
}

// asciinema itself plays the export: `asciinema cat` prints the output
// of a v2 recording and refuses anything it cannot parse.
func TestAsciinemaReadsExport(t *testing.T) {
	bin, err := exec.LookPath("asciinema")
	if err != nil {
		t.Skip("asciinema is not installed: the export is judged by the real player reading it (scripts/install.sh installs it)")
	}
	_, cast := exportFile(t, "testdata/sudo-terminal")
	file := t.TempDir() + "/s.cast"
	if err := os.WriteFile(file, cast, 0o600); err != nil {
		t.Fatal(err)
	}
	// asciinema reads keys from /dev/tty even to cat; script gives it a
	// terminal.
	cmd := exec.Command("script", "-qec", bin+" cat "+file, "/dev/null")
	cmd.Stdin = strings.NewReader("")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "LANG=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("asciinema cat: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "hello wörld") || !strings.Contains(string(out), "got secret input") {
		t.Errorf("asciinema cat printed %q", out)
	}
}

// Without a terminal, line feeds are shown as a terminal would (CR LF),
// stderr is output too, and a character split between two writes is
// written whole; bytes that are not UTF-8 become U+FFFD.
func TestAsciicastStreams(t *testing.T) {
	evs := &eventList{evs: []Event{
		{At: time.Second, Kind: StdIn, Data: []byte("typed\n")},
		{At: 2 * time.Second, Kind: StdOut, Data: []byte("a\nw\xc3")},
		{At: 3 * time.Second, Kind: StdErr, Data: []byte("\xb6rld\r\n\xff\"\\\u2028")},
		{At: 4 * time.Second, Kind: Resize, Rows: 30, Cols: 100},
		{At: 5 * time.Second, Kind: Suspend, Signal: "TSTP"},
	}}
	var out bytes.Buffer
	if err := WriteAsciicast(&out, Info{User: "pp-a", Host: "h", Start: time.Unix(1700000000, 0)}, evs); err != nil {
		t.Fatal(err)
	}
	want := `{"version":2,"width":80,"height":24,"timestamp":1700000000,"title":"pp-a on h: login shell","env":{"SHELL":"/bin/bash"}}
[1.000000, "i", "typed\n"]
[2.000000, "o", "a\r\nw"]
[3.000000, "o", "örld\r\n\ufffd\"\\\u2028"]
[4.000000, "r", "100x30"]
`
	if out.String() != want {
		t.Errorf("export =\n%s\nwant\n%s", out.String(), want)
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("not JSON: %s", l)
		}
	}
}

func TestBadAsciicast(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"empty", "", "no header"},
		{"not json", "hello\n", "line 1 is not the header"},
		{"version 1", `{"version":1,"width":80,"height":24}`, "only version 2"},
		{"no size", `{"version":2}`, "terminal size 0 x 0"},
		{"huge size", `{"version":2,"width":80,"height":1000000}`, "terminal size"},
		{"idle", `{"version":2,"width":80,"height":24,"idle_time_limit":-1}`, "negative"},
		{"event not array", "{\"version\":2,\"width\":80,\"height\":24}\n{}\n", "line 2 is not an event"},
		{"event short", "{\"version\":2,\"width\":80,\"height\":24}\n[1, \"o\"]\n", "line 2 is not an event"},
		{"event types", "{\"version\":2,\"width\":80,\"height\":24}\n[\"1\", \"o\", \"x\"]\n", "[number, string, string]"},
		{"negative time", "{\"version\":2,\"width\":80,\"height\":24}\n[-1, \"o\", \"x\"]\n", "not seconds"},
		{"backwards", "{\"version\":2,\"width\":80,\"height\":24}\n[2, \"o\", \"x\"]\n[1, \"o\", \"x\"]\n", "line 3: time 1.000000 is before"},
		{"resize", "{\"version\":2,\"width\":80,\"height\":24}\n[1, \"r\", \"80by24\"]\n", "not COLSxROWS"},
		{"long line", "{\"version\":2,\"width\":80,\"height\":24}\n[1, \"o\", \"" + strings.Repeat("x", maxCastLine) + "\"]\n", "line 2 is longer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cast, err := ReadAsciicast(strings.NewReader(c.in))
			for err == nil {
				_, err = cast.Next()
			}
			if err == io.EOF || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want one saying %q", err, c.want)
			}
		})
	}
}

// Markers and blank lines are passed over.
func TestAsciicastMarkers(t *testing.T) {
	c, err := ReadAsciicast(strings.NewReader("{\"version\":2,\"width\":80,\"height\":24}\n\n[1, \"m\", \"\"]\n[2, \"o\", \"x\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	evs := readAll(t, c)
	if len(evs) != 1 || string(evs[0].Data) != "x" || evs[0].At != 2*time.Second {
		t.Errorf("events = %+v", evs)
	}
}

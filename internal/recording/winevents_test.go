package recording

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
)

// A Windows event session reads as its events, one line each as a person
// reads an event log: grep finds a command line as Windows logged it,
// asciicast is refused (it is not a terminal), and the lines export as
// they were collected.
func TestWindowsEventSession(t *testing.T) {
	l, err := Open(os.DirFS("testdata/windows-events"))
	if err != nil {
		t.Fatal(err)
	}
	if !l.Info.EventLog || l.Info.Terminal || !l.Info.Start.Equal(time.Date(2026, 12, 6, 9, 15, 0, 0, time.UTC)) {
		t.Errorf("info: %+v", l.Info)
	}
	events, err := l.Events()
	if err != nil {
		t.Fatal(err)
	}
	matches, _, err := Grep(regexp.MustCompile(`Copy-Item C:\\payroll`), events, 10)
	events.Close()
	if err != nil || len(matches) != 1 || matches[0].At != 42250*time.Millisecond ||
		!strings.Contains(matches[0].Line, `4688 process C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe command line: powershell.exe -NoProfile -Command "Copy-Item C:\payroll\2026.xlsx \\fileserver\out"`) {
		t.Errorf("grep for the command line: %+v, %v", matches, err)
	}
	events, _ = l.Events()
	lines, typed, err := Text(events)
	events.Close()
	if err != nil || len(lines) != 3 || len(typed) != 0 || !strings.Contains(lines[0].Line, "4624 logon 0x3e7a01 type 10 from 10.0.3.7") || !strings.Contains(lines[2].Line, "4634 logoff 0x3e7a01") {
		t.Errorf("the session's lines: %+v, %v", lines, err)
	}
	events, _ = l.Events()
	if err := WriteAsciicast(io.Discard, l.Info, events); !errors.Is(err, ErrEventLog) || !strings.Contains(err.Error(), "not a terminal recording") {
		t.Errorf("asciicast of an event log: %v", err)
	}
	events.Close()
	var out bytes.Buffer
	want, _ := os.ReadFile("testdata/windows-events/events.jsonl")
	if err := l.EventLines(&out); err != nil || !bytes.Equal(out.Bytes(), want) {
		t.Errorf("EventLines: %v\n%s", err, out.Bytes())
	}
}

// Event lines a host forged or damaged are refused, naming the line.
func TestWindowsEventSessionBadInput(t *testing.T) {
	good := `{"time":"2026-12-06T09:15:00.000Z","event_id":4624,"logon_id":"0x3e7a01","logon_type":10}` + "\n"
	for name, c := range map[string]struct{ text, want string }{
		"another event id":    {good + `{"time":"2026-12-06T09:15:01Z","event_id":1102,"logon_id":"0x1"}` + "\n", "line 2: event id 1102"},
		"an unknown field":    {good + `{"time":"2026-12-06T09:15:01Z","event_id":4688,"logon_id":"0x1","shell":"x"}` + "\n", "line 2: not an event line"},
		"a logon id not hex":  {good + `{"time":"2026-12-06T09:15:01Z","event_id":4634,"logon_id":"../x"}` + "\n", "line 2: logon id"},
		"not JSON":            {good + "4688 cmd.exe\n", "line 2: not an event line"},
		"no time":             {good + `{"event_id":4634,"logon_id":"0x1"}` + "\n", "line 2: time"},
		"a line far too long": {good + strings.Repeat("x", collect.MaxEventLine+10) + "\n", "longer than"},
	} {
		t.Run(name, func(t *testing.T) {
			l, err := Open(fstest.MapFS{"events.jsonl": {Data: []byte(c.text)}})
			if err != nil {
				t.Fatal(err)
			}
			events, _ := l.Events()
			defer events.Close()
			_, _, err = Text(events)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
	if _, err := Open(fstest.MapFS{"events.jsonl": {Data: []byte(`{"event_id":4624}` + "\n")}}); err == nil {
		t.Error("an event session whose first line is not an event opened")
	}
}

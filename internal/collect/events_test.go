package collect

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

const eventsOfOneLogon = `{"time":"2026-12-06T09:15:00.000Z","event_id":4624,"logon_id":"0x3e7a01","logon_type":10,"source":"10.0.3.7"}
{"time":"2026-12-06T09:15:42.250Z","event_id":4688,"logon_id":"0x3e7a01","process":"C:\\Windows\\System32\\cmd.exe","command_line":"cmd /c whoami"}
{"time":"2026-12-06T09:16:00.000Z","event_id":4624,"logon_id":"0x1f","logon_type":10}
{"time":"2026-12-06T09:20:03.000Z","event_id":4634,"logon_id":"0x3e7a01","logon_type":10}
`

// TestReadEvents: one session per logon, named by its start and logon id,
// finished with its logoff; lines a host forged refuse the lot.
func TestReadEvents(t *testing.T) {
	sessions, err := ReadEvents(strings.NewReader(eventsOfOneLogon), "pp-eve")
	if err != nil || len(sessions) != 2 {
		t.Fatalf("ReadEvents: %+v, %v", sessions, err)
	}
	a, b := sessions[0], sessions[1]
	if a.Name != "20261206-091500-3e7a01" || a.User != "pp-eve" || !a.Finished || !a.End.Equal(time.Date(2026, 12, 6, 9, 20, 3, 0, time.UTC)) ||
		len(a.Files) != 1 || a.Files[0].Name != EventsFile || bytes.Count(a.Files[0].Data, []byte("\n")) != 3 {
		t.Errorf("the first logon: %+v", a)
	}
	if b.Name != "20261206-091600-00001f" || b.Finished || !b.End.IsZero() {
		t.Errorf("the logon still open: %+v", b)
	}
	for name, text := range map[string]string{
		"an event Passport does not collect": `{"time":"2026-12-06T09:15:00Z","event_id":1102,"logon_id":"0x1"}`,
		"a field it does not write":          `{"time":"2026-12-06T09:15:00Z","event_id":4624,"logon_id":"0x1","x":1}`,
		"a logon id that is a path":          `{"time":"2026-12-06T09:15:00Z","event_id":4624,"logon_id":"../../x"}`,
		"no time":                            `{"event_id":4624,"logon_id":"0x1"}`,
		"not JSON":                           `4624 0x1`,
		"a line too long":                    strings.Repeat("x", MaxEventLine+1),
	} {
		if _, err := ReadEvents(strings.NewReader(eventsOfOneLogon+text+"\n"), "pp-eve"); err == nil || !strings.Contains(err.Error(), "line 5") {
			t.Errorf("%s: %v, want a refusal naming line 5", name, err)
		}
	}
}

// FuzzReadEvents: whatever a host prints, ReadEvents refuses it or
// returns sessions Pack accepts, named as the recorder names sessions,
// whose every line is an event.
func FuzzReadEvents(f *testing.F) {
	f.Add([]byte(eventsOfOneLogon))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"time":"2026-12-06T09:15:00Z","event_id":4634,"logon_id":"0x0"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sessions, err := ReadEvents(bytes.NewReader(data), "pp-eve")
		if err != nil {
			return
		}
		for _, s := range sessions {
			if !reSession.MatchString(s.Name) || len(s.Files) != 1 || s.Finished == s.End.IsZero() {
				t.Fatalf("session %+v", s)
			}
			if _, _, err := Pack(Meta{Session: s.Name}, s.Files); err != nil {
				t.Fatalf("Pack refuses what ReadEvents returned: %v", err)
			}
			for _, line := range bytes.Split(bytes.TrimSuffix(s.Files[0].Data, []byte("\n")), []byte("\n")) {
				if _, err := ParseEvent(line); err != nil {
					t.Fatalf("line %q of a session: %v", line, err)
				}
			}
		}
	})
}

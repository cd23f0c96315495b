package collect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// EventsFile is the one file of a Windows event session: the host's
// Security log events of one logon, as JSON lines (DESIGN.md, "Windows
// event sessions"). It is an event log, not a screen recording.
const EventsFile = "events.jsonl"

// Event is one line of a Windows collect program's output and of an
// events.jsonl: a logon (4624), logoff (4634) or process creation (4688)
// of the Passport user, as the host's Security log has it.
type Event struct {
	Time        time.Time `json:"time"`
	EventID     int       `json:"event_id"`
	LogonID     string    `json:"logon_id"`
	LogonType   int       `json:"logon_type,omitempty"`
	Source      string    `json:"source,omitempty"`
	Process     string    `json:"process,omitempty"`
	CommandLine string    `json:"command_line,omitempty"`
}

// The Security events the Windows collect program hands over.
const (
	EventLogon           = 4624
	EventLogoff          = 4634
	EventProcessCreation = 4688
)

// MaxEventLine bounds one event line: a command line is at most 32,767
// UTF-16 characters on Windows, which JSON may escape to six bytes each.
const MaxEventLine = 256 << 10

var reLogonID = regexp.MustCompile(`^0x[0-9a-f]{1,16}$`)

// ReadEvents reads what the Windows collect program printed for user
// (JSON lines, oldest first) into one session per logon id: named
// <logon start, UTC, %Y%m%d-%H%M%S>-<the logon id's last six hex digits>,
// like a sudo session's name, holding the logon's lines as EventsFile. A
// session with its logoff is finished. The host is root's (SYSTEM's):
// every line is checked, and one that is not an event refuses the lot.
func ReadEvents(r io.Reader, user string) ([]HostSession, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxBundle), 64<<10)
	type logon struct {
		s     *HostSession
		lines bytes.Buffer
	}
	byID := map[string]*logon{}
	var order []string
	for n := 1; ; n++ {
		line, err := ReadEventLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("recording: the host's events, line %d: %w", n, err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		e, err := parseEvent(line)
		if err != nil {
			return nil, fmt.Errorf("recording: the host's events, line %d: %w", n, err)
		}
		l := byID[e.LogonID]
		if l == nil {
			l = &logon{s: &HostSession{User: user, Start: e.Time}}
			byID[e.LogonID] = l
			order = append(order, e.LogonID)
		}
		switch e.EventID {
		case EventLogon:
			l.s.Start = e.Time
		case EventLogoff:
			l.s.Finished, l.s.End = true, e.Time
		}
		l.lines.Write(line)
		l.lines.WriteByte('\n')
	}
	out := make([]HostSession, 0, len(order))
	for _, id := range order {
		l := byID[id]
		hex := strings.TrimPrefix(id, "0x")
		hex = strings.Repeat("0", max(0, 6-len(hex))) + hex
		l.s.Name = l.s.Start.UTC().Format("20060102-150405") + "-" + hex[len(hex)-6:]
		l.s.Files = []File{{Name: EventsFile, Data: l.lines.Bytes()}}
		out = append(out, *l.s)
	}
	return out, nil
}

// ReadEventLine reads one line of an event log, without its line end,
// refusing one longer than any event; io.EOF after the last.
func ReadEventLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxEventLine {
			return nil, fmt.Errorf("longer than %d bytes", MaxEventLine)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(line) > 0:
			return bytes.TrimRight(line, "\r\n"), nil
		case err != nil:
			return nil, err
		}
		return bytes.TrimRight(line, "\r\n"), nil
	}
}

// ParseEvent reads one event line, refusing one that is not what the
// collect program writes.
func ParseEvent(line []byte) (Event, error) { return parseEvent(line) }

func parseEvent(line []byte) (Event, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("not an event line: %v", err)
	}
	switch {
	case e.EventID != EventLogon && e.EventID != EventLogoff && e.EventID != EventProcessCreation:
		return Event{}, fmt.Errorf("event id %d is not 4624, 4634 or 4688", e.EventID)
	case !reLogonID.MatchString(e.LogonID):
		return Event{}, fmt.Errorf("logon id %.40q is not 0x and hex digits", e.LogonID)
	case e.Time.IsZero() || e.Time.Year() < 2000 || e.Time.Year() > 9999:
		return Event{}, fmt.Errorf("time %s is not an event's", e.Time)
	case e.LogonType < 0 || e.LogonType > 99:
		return Event{}, fmt.Errorf("logon type %d is not one Windows has", e.LogonType)
	}
	return e, nil
}

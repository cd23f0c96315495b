package recording

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
)

// A Windows event session is what Passport collects from a Windows
// target: one logon's Security log events (4624 logon, 4688 process
// creation, 4634 logoff) as JSON lines in collect.EventsFile. It is an
// event log, NOT a screen recording: nothing of what the person saw or
// typed in Remote Desktop is in it, only that they logged on, from where,
// which programs they started with which command lines (where Windows
// audits them) and when they logged off.

// ErrEventLog is why a Windows event session cannot be played or
// exported as asciicast.
var ErrEventLog = errors.New("this is a Windows event log (logons, logoffs and process creations), not a terminal recording: asciicast and play are for terminal sessions only; export it with --format jsonl")

// openEvents opens a Windows event session: its first event says who and
// when.
func openEvents(fsys fs.FS) (*Log, error) {
	f, err := fsys.Open(collect.EventsFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	line, err := collect.ReadEventLine(br)
	if err != nil {
		return nil, fmt.Errorf("recording: %s: %w", collect.EventsFile, err)
	}
	e, err := collect.ParseEvent(line)
	if err != nil {
		return nil, fmt.Errorf("recording: %s, line 1: %w", collect.EventsFile, err)
	}
	info := Info{Start: e.Time, Command: "Windows logon " + e.LogonID, EventLog: true}
	return &Log{Info: info, fsys: fsys}, nil
}

// nextEvent returns one event line as a line of output, written as a
// person reads an event log (grep searches it so): the JSON line's
// escapes undone.
func (e *LogEvents) nextEvent() (Event, error) {
	var line []byte
	var err error
	for len(bytes.TrimSpace(line)) == 0 && err == nil {
		e.line++
		line, err = collect.ReadEventLine(e.events)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Event{}, io.EOF
		}
		return Event{}, fmt.Errorf("recording: %s, line %d: %w", collect.EventsFile, e.line, err)
	}
	ev, err := collect.ParseEvent(line)
	if err != nil {
		return Event{}, fmt.Errorf("recording: %s, line %d: %w", collect.EventsFile, e.line, err)
	}
	e.buf = append(e.buf[:0], EventText(ev)...)
	e.buf = append(e.buf, '\n')
	return Event{At: max(ev.Time.Sub(e.start), 0), Kind: StdOut, Data: e.buf}, nil
}

// EventText is one Windows event as a line a person reads.
func EventText(ev collect.Event) string {
	at := ev.Time.UTC().Format("2006-01-02T15:04:05.000Z")
	switch ev.EventID {
	case collect.EventLogon:
		s := at + " 4624 logon " + ev.LogonID + " type " + strconv.Itoa(ev.LogonType)
		if ev.Source != "" {
			s += " from " + ev.Source
		}
		return s
	case collect.EventLogoff:
		return at + " 4634 logoff " + ev.LogonID
	}
	s := at + " 4688 process " + ev.Process
	if ev.CommandLine != "" {
		s += " command line: " + ev.CommandLine
	}
	return s
}

// EventLines writes a Windows event session's events.jsonl as it was
// collected: `passport sessions export --format jsonl`.
func (l *Log) EventLines(w io.Writer) error {
	if !l.Info.EventLog {
		return errors.New("this is a terminal recording, not a Windows event log: export it with --format asciicast")
	}
	f, err := l.fsys.Open(collect.EventsFile)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

package portal

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/recording"
)

// transcriptLines bounds the lines a recording's page shows; the
// asciicast download carries the whole session.
const transcriptLines = 5000

// sessionsPage lists recordings, or what a search of them found.
type sessionsPage struct {
	Request, Target, Pattern string
	Recordings               []recordingRow
	// Searched says a search was made; Found is what it found.
	Searched bool
	Found    api.RecordingMatches
	// Where is a recording id's place for people: request, target name.
	Where map[string]string
}

// recordingRow is a recording as the list shows it.
type recordingRow struct {
	api.Recording
	TargetName string
}

// sessions lists the recordings the person may see, by request and
// target, and searches them when the form asks.
func (p *Portal) sessions(v *visit) error {
	q := v.r.URL.Query()
	page := sessionsPage{Request: strings.TrimSpace(q.Get("request")), Target: strings.TrimSpace(q.Get("target")), Pattern: q.Get("pattern"),
		Where: map[string]string{}}
	f := client.RecordingFilter{Request: page.Request, Target: page.Target}
	names := p.names(v)
	var pr *problem
	recs, err := v.api.Recordings(v.r.Context(), f)
	if err != nil {
		pr = problemOf(err)
	}
	for _, r := range recs {
		name := names[r.Target]
		if name == "" {
			name = r.Target
		}
		page.Recordings = append(page.Recordings, recordingRow{Recording: r, TargetName: name})
		page.Where[r.ID] = r.Request + " on " + name
	}
	if pr == nil && page.Pattern != "" {
		page.Searched = true
		if page.Found, err = v.api.GrepRecordings(v.r.Context(), page.Pattern, f); err != nil {
			pr = problemOf(err)
			page.Searched = false
		}
	}
	status := http.StatusOK
	if pr != nil {
		status = pr.Status
	}
	p.render(v.w, status, "sessions", view{Title: "Sessions", Nav: "sessions", Me: v.me, Flash: deletedFlash(v.r), Problem: pr, Page: page})
	return nil
}

// recordingPage is one recording: what it says of its session, and its
// output as lines of text with their times, which the page's script
// plays back.
type recordingPage struct {
	Recording  api.Recording
	TargetName string
	Lines      []castLine
	Typed      []castLine
	// More says the session went on past the lines shown.
	More     bool
	Duration string
	// Events are a Windows logon's Security events, shown instead of a
	// player: an event log is no screen recording.
	Events []collect.Event
	// Reason is what the person wrote in a deletion the service refused.
	Reason string
}

// castLine is a line of a session at a time from its start.
type castLine struct {
	At   float64 // seconds
	Text string
}

// Clock is the line's time as the page prints it.
func (l castLine) Clock() string { return seconds(l.At) }

// seconds says a time into a session: tenths of a second in the first
// minute, whole seconds after.
func seconds(s float64) string {
	if s < 60 {
		return fmt.Sprintf("%.1f s", s)
	}
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}

// recordingID is the recording the page's path names, as the API's path
// takes it: each part escaped, so that none can reach another route.
func recordingID(r *http.Request) string {
	return url.PathEscape(r.PathValue("request")) + "/" + url.PathEscape(r.PathValue("target")) + "/" + url.PathEscape(r.PathValue("session"))
}

// showRecording shows one recording with a player.
func (p *Portal) showRecording(v *visit) error {
	return p.recordingPage(v, http.StatusOK, "", nil)
}

// recordingPage shows one recording, with the problem of a deletion that
// was refused and the reason the person gave for it.
func (p *Portal) recordingPage(v *visit, status int, reason string, pr *problem) error {
	id := recordingID(v.r)
	rec, err := v.api.Recording(v.r.Context(), id)
	if err != nil {
		return err
	}
	page := recordingPage{Recording: rec, TargetName: p.names(v)[rec.Target], Reason: reason}
	if page.TargetName == "" {
		page.TargetName = rec.Target
	}
	if rec.Detail != nil && rec.Detail.EventLog {
		page.Events, page.More, err = eventRows(v, id)
	} else {
		page.Lines, page.Typed, page.More, err = castText(v, id)
		if n := len(page.Lines); n > 0 {
			page.Duration = page.Lines[n-1].Clock()
		}
	}
	if err != nil {
		return err
	}
	p.render(v.w, status, "recording", view{Title: "Session " + rec.Session, Nav: "sessions", Me: v.me, Problem: pr, Page: page})
	return nil
}

// deleteRecording deletes a recording before its retention ends, for the
// reason the person gives, which the audit trail keeps with their name.
// The service asks policy (delete-recording); the person recorded gets
// no say over their own. The form is on every recording's page, since
// the API does not say beforehand whom policy lets: a refusal is shown
// there with policy's reason.
func (p *Portal) deleteRecording(v *visit) error {
	reason := strings.TrimSpace(v.r.PostFormValue("reason"))
	if reason == "" {
		return p.recordingPage(v, http.StatusBadRequest, "", &problem{Message: "Say why this recording is deleted before its retention ends in the reason: the audit trail keeps it with your name.",
			Field: "reason", Status: http.StatusBadRequest})
	}
	id := recordingID(v.r)
	if err := v.api.DeleteRecording(v.r.Context(), id, reason); err != nil {
		pr := problemOf(err)
		if pr.Status == http.StatusNotFound {
			// Gone, or never the person's to see: no page to show it on.
			return err
		}
		return p.recordingPage(v, pr.Status, reason, pr)
	}
	http.Redirect(v.w, v.r, "/sessions?"+url.Values{"deleted": {id}}.Encode(), http.StatusSeeOther)
	return nil
}

// deletedFlash is what the sessions list says after a deletion: the
// recording's id, when the link carries one.
func deletedFlash(r *http.Request) string {
	ref, err := recording.ParseID(r.URL.Query().Get("deleted"))
	if err != nil {
		return ""
	}
	return "Deleted recording " + ref.ID() + ". The audit trail keeps who deleted it and why."
}

// eventWords names a Windows Security event the way its log does.
func eventWords(e collect.Event) string {
	switch e.EventID {
	case collect.EventLogon:
		switch e.LogonType {
		case 10:
			return "logon (Remote Desktop)"
		case 3:
			return "logon (network)"
		case 2:
			return "logon (at the console)"
		}
		return "logon"
	case collect.EventLogoff:
		return "logoff"
	case collect.EventProcessCreation:
		return "process started"
	}
	return "event " + strconv.Itoa(e.EventID)
}

// eventRows reads a Windows event session's events from the service, as
// many as a transcript shows.
func eventRows(v *visit, id string) ([]collect.Event, bool, error) {
	body, err := v.api.RecordingEvents(v.r.Context(), id)
	if err != nil {
		return nil, false, err
	}
	defer body.Close()
	br := bufio.NewReader(body)
	var out []collect.Event
	for {
		line, err := collect.ReadEventLine(br)
		if errors.Is(err, io.EOF) {
			return out, false, nil
		}
		if err == nil && len(out) == transcriptLines {
			return out, true, nil
		}
		var e collect.Event
		if err == nil {
			e, err = collect.ParseEvent(line)
		}
		if err != nil {
			return nil, false, &api.Error{Code: api.CodeConflict, Status: http.StatusConflict, Message: "recording " + id + " could not be read: " + err.Error()}
		}
		out = append(out, e)
	}
}

// castText reads a recording's asciicast from the service once, as
// lines of plain text: what a person would have seen, and what was typed,
// escape sequences removed. more says the session printed more lines
// than are shown.
func castText(v *visit, id string) (printed, typed []castLine, more bool, err error) {
	unreadable := func(err error) error {
		return &api.Error{Code: api.CodeConflict, Status: http.StatusConflict, Message: "recording " + id + " could not be read: " + err.Error()}
	}
	body, err := v.api.RecordingCast(v.r.Context(), id)
	if err != nil {
		return nil, nil, false, err
	}
	defer body.Close()
	cast, err := recording.ReadAsciicast(body)
	if err != nil {
		return nil, nil, false, unreadable(err)
	}
	out, in, err := recording.Text(cast)
	if err != nil {
		return nil, nil, false, unreadable(err)
	}
	printed, more = castLines(out)
	typed, _ = castLines(in)
	return printed, typed, more, nil
}

// castLines is text as the page shows it: as many lines as a transcript
// holds, and whether there were more.
func castLines(text []recording.Match) ([]castLine, bool) {
	more := len(text) > transcriptLines
	text = text[:min(len(text), transcriptLines)]
	out := make([]castLine, 0, len(text))
	for _, m := range text {
		out = append(out, castLine{At: m.At.Seconds(), Text: m.Line})
	}
	return out, more
}

// recordingCast downloads a recording as asciicast v2, for asciinema.
func (p *Portal) recordingCast(v *visit) error {
	id := recordingID(v.r)
	body, err := v.api.RecordingCast(v.r.Context(), id)
	if err != nil {
		return err
	}
	defer body.Close()
	// The service found the recording by these parts, so they are plain
	// words fit for a file name.
	name := v.r.PathValue("request") + "_" + v.r.PathValue("target") + "_" + v.r.PathValue("session") + ".cast"
	v.w.Header().Set("Content-Type", "application/x-asciicast")
	v.w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	_, err = io.Copy(v.w, body)
	if err != nil {
		// The answer has begun: the download is cut short, and the log
		// says why.
		p.cfg.Log.Warn("portal: sending a recording", "recording", id, "error", err.Error())
	}
	return nil
}

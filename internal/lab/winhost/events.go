package winhost

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The host's Security event log, as far as Passport's collect program
// reads it: logons (4624), logoffs (4634) and process creations (4688).
// A successful logon check is a Remote Desktop logon (type 10) from the
// client's address, which stays open until revoke or the sweep logs the
// user off; StartProcess models a program the person starts in it. The
// model audits everything, as provision's audit policy asks: a real host
// whose Group Policy turned auditing off writes none of these.
const (
	EventLogon           = 4624
	EventLogoff          = 4634
	EventProcessCreation = 4688
)

// logonTypeRemoteInteractive is Remote Desktop's logon type.
const logonTypeRemoteInteractive = 10

// SecurityEvent is one event of the model's Security log.
type SecurityEvent struct {
	ID          int
	Time        time.Time
	User        string // TargetUserName, or SubjectUserName for 4688
	LogonID     uint64
	LogonType   int
	Source      string // IpAddress (4624)
	Process     string // NewProcessName (4688)
	CommandLine string // CommandLine (4688)
}

// Events returns the Security log, oldest first.
func (h *Host) Events() []SecurityEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// maxEvents bounds the model's log: Windows overwrites the oldest events
// of a full Security log too (its default retention), and what it
// overwrote before a collection is lost on a real host as well.
const maxEvents = 100000

func (h *Host) appendEvent(e SecurityEvent) {
	if len(h.events) >= maxEvents {
		h.events = slices.Delete(h.events, 0, len(h.events)-maxEvents+1)
	}
	h.events = append(h.events, e)
}

// recordLogon writes a 4624 for user's new logon. Callers hold h.mu.
func (h *Host) recordLogon(user, source string) {
	h.nextLogon++
	id := h.nextLogon
	h.open[key(user)] = append(h.open[key(user)], id)
	h.appendEvent(SecurityEvent{ID: EventLogon, Time: h.now().UTC(), User: user, LogonID: id,
		LogonType: logonTypeRemoteInteractive, Source: source})
}

// logOff writes a 4634 for each open logon of user, as revoke's and the
// sweep's logoff make Windows do. Callers hold h.mu.
func (h *Host) logOff(user string) {
	for _, id := range h.open[key(user)] {
		h.appendEvent(SecurityEvent{ID: EventLogoff, Time: h.now().UTC(), User: user, LogonID: id,
			LogonType: logonTypeRemoteInteractive})
	}
	delete(h.open, key(user))
}

// StartProcess models the person behind user's latest open logon
// starting a program: a 4688 with its image and command line. It fails
// when user has no open logon.
func (h *Host) StartProcess(user, image, commandLine string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	open := h.open[key(user)]
	if len(open) == 0 {
		return fmt.Errorf("winhost %s: %s has no open logon to start %s in", h.cfg.InstanceID, user, image)
	}
	a, ok := h.accounts[key(user)]
	if !ok {
		return errors.New("winhost: no such account")
	}
	h.appendEvent(SecurityEvent{ID: EventProcessCreation, Time: h.now().UTC(), User: a.Name, LogonID: open[len(open)-1],
		Process: image, CommandLine: commandLine})
	return nil
}

// collect prints, as collect.ps1 does, user's events since the given time
// as JSON lines on stdout; its result line goes to stderr.
func (h *Host) collect(p *program) ([]string, *failure) {
	user, f := p.field("user", reUser)
	if f != nil {
		return nil, f
	}
	since, f := p.epoch("since")
	if f != nil {
		return nil, f
	}
	var out strings.Builder
	count := 0
	logons := map[uint64]bool{}
	for _, e := range h.events {
		if e.Time.Before(since) || !strings.EqualFold(e.User, user) {
			continue
		}
		line := struct {
			Time        string `json:"time"`
			EventID     int    `json:"event_id"`
			LogonID     string `json:"logon_id"`
			LogonType   int    `json:"logon_type,omitempty"`
			Source      string `json:"source,omitempty"`
			Process     string `json:"process,omitempty"`
			CommandLine string `json:"command_line,omitempty"`
		}{e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.ID, fmt.Sprintf("0x%x", e.LogonID), e.LogonType, e.Source, e.Process, e.CommandLine}
		b, _ := json.Marshal(line)
		out.Write(b)
		out.WriteByte('\n')
		logons[e.LogonID] = true
		count++
	}
	p.stdout = out.String()
	return []string{"user=" + user, "events=" + fmt.Sprint(count), "sessions=" + fmt.Sprint(len(logons))}, nil
}

package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"
)

// Action names what an audit event records.
type Action string

// The actions Passport records. The trail accepts any non-empty action, so
// a newer writer's events still verify with an older reader.
const (
	ActionRequested       Action = "requested"
	ActionAuthorized      Action = "authorized"
	ActionDenied          Action = "denied"
	ActionProvisioned     Action = "provisioned"
	ActionProvisionFailed Action = "provision-failed"
	ActionExtended        Action = "extended"
	ActionConnected       Action = "connected"
	ActionRevoked         Action = "revoked"
	ActionRevokeFailed    Action = "revoke-failed"
	ActionExpired         Action = "expired"
	ActionSwept           Action = "swept"
	// Approvals: a longer window asked for that waits for approval, an
	// approver's approval or denial (the actor; the detail carries their
	// comment), a request or longer window whose deadline passed without
	// a decision, and a waiting request its requester ended.
	ActionExtensionRequested Action = "extension-requested"
	ActionApproved           Action = "approved"
	ActionApprovalDenied     Action = "approval-denied"
	ActionApprovalExpired    Action = "approval-expired"
	ActionWithdrawn          Action = "withdrawn"
	// Break-glass: access given at once without approval, its review by
	// someone else, and the notice that the review is overdue.
	ActionBreakGlass    Action = "break-glass"
	ActionReviewed      Action = "reviewed"
	ActionReviewOverdue Action = "review-overdue"
	// Session recording: a recording collected into the bucket (its key,
	// size and SHA-256 in the detail, the digest audit verify checks the
	// object against), a recording deleted before its retention ended or
	// when it ended, a collection that failed, and a grant given on a
	// host that cannot record where policy asked for recording but lets
	// the grant stand (fail open).
	ActionRecordingCollected   Action = "recording-collected"
	ActionRecordingDeleted     Action = "recording-deleted"
	ActionRecordingExpired     Action = "recording-expired"
	ActionRecordingFailed      Action = "recording-failed"
	ActionRecordingNotRecorded Action = "not-recorded"

	// A notification given up on after retrying (package notify): those
	// it was meant for never heard of the event, and an auditor asks why
	// nobody reacted.
	ActionNotificationDeadLettered Action = "notification-dead-lettered"
)

// Event is one entry of the audit trail. Seq, PrevHash and Hash are set by
// Append: Hash is SHA-256 over the canonical encoding of Seq, PrevHash and
// every other field, so changing, removing or moving an event breaks the
// chain at that event.
type Event struct {
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"` // a person's subject, or "reconciler/<host>"
	Action  Action    `json:"action"`
	GrantID string    `json:"grant_id,omitempty"`
	Target  string    `json:"target,omitempty"`  // instance id
	Subject string    `json:"subject,omitempty"` // whose access the event is about
	Detail  string    `json:"detail,omitempty"`

	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// genesis is the PrevHash of the first event.
var genesis = strings.Repeat("0", sha256.Size*2)

// seal makes e the event after (prevSeq, prevHash); prevSeq 0 means e is
// the first.
func (e *Event) seal(prevSeq int64, prevHash string) {
	if prevSeq == 0 {
		prevHash = genesis
	}
	e.Seq, e.PrevHash = prevSeq+1, prevHash
	e.Hash = e.digest()
}

// digest is the hex SHA-256 of the canonical encoding: a version tag, seq
// and time as fixed-width integers, then every string length-prefixed, so
// no two different events encode alike (a field cannot borrow bytes from
// its neighbour).
func (e *Event) digest() string {
	h := sha256.New()
	h.Write([]byte("passport-audit-v1\x00"))
	var n [binary.MaxVarintLen64]byte
	binary.BigEndian.PutUint64(n[:8], uint64(e.Seq))
	h.Write(n[:8])
	binary.BigEndian.PutUint64(n[:8], uint64(nanos(e.Time)))
	h.Write(n[:8])
	for _, s := range []string{e.PrevHash, e.Actor, string(e.Action), e.GrantID, e.Target, e.Subject, e.Detail} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (e *Event) validate() error {
	var problems []string
	if e.Actor == "" {
		problems = append(problems, "actor is empty")
	}
	if e.Action == "" {
		problems = append(problems, "action is empty")
	}
	for name, s := range map[string]string{"actor": e.Actor, "action": string(e.Action), "grant_id": e.GrantID, "target": e.Target, "subject": e.Subject, "detail": e.Detail} {
		// An export must reproduce the hashed bytes exactly; JSON would
		// replace invalid UTF-8.
		if !utf8.ValidString(s) {
			problems = append(problems, name+" is not valid UTF-8")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("ledger: audit event %s by %q cannot be stored: %s", e.Action, e.Actor, strings.Join(problems, "; "))
	}
	return nil
}

func (e *Event) String() string {
	s := fmt.Sprintf("event %d (%s %s %s", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Actor, e.Action)
	if e.GrantID != "" {
		s += " " + e.GrantID
	}
	if e.Target != "" {
		s += " on " + e.Target
	}
	return s + ")"
}

// Append adds e to the end of the trail and returns it sealed. Its Time is
// the ledger's clock when zero. Concurrent appenders, in this process or
// others, never fork the chain.
func (l *Ledger) Append(ctx context.Context, e Event) (Event, error) {
	if err := e.validate(); err != nil {
		return Event{}, err
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = fromNanos(nanos(e.Time))
	return l.b.appendEvent(ctx, e)
}

// Filter selects audit events. Zero fields match everything.
type Filter struct {
	Person  string // the actor or the subject
	GrantID string
	Target  string
	Since   time.Time // inclusive
	Until   time.Time // exclusive
	// newestFirst reads the trail from its end (NewestEvents).
	newestFirst bool
}

func (f Filter) match(e Event) bool {
	switch {
	case f.Person != "" && e.Actor != f.Person && e.Subject != f.Person:
		return false
	case f.GrantID != "" && e.GrantID != f.GrantID:
		return false
	case f.Target != "" && e.Target != f.Target:
		return false
	case !f.Since.IsZero() && e.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !e.Time.Before(f.Until):
		return false
	}
	return true
}

// Events returns the events f matches, oldest first.
func (l *Ledger) Events(ctx context.Context, f Filter) ([]Event, error) {
	var out []Event
	err := l.b.events(ctx, f, func(e Event) error {
		if f.match(e) {
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// errEnough ends a read of the trail once the reader has what it wants.
var errEnough = errors.New("ledger: enough events read")

// NewestEvents calls keep with the events f matches, newest first, until
// keep returns false or the trail's start: a reader that wants the last
// few events of a long trail reads no more of it than that.
func (l *Ledger) NewestEvents(ctx context.Context, f Filter, keep func(Event) bool) error {
	f.newestFirst = true
	err := l.b.events(ctx, f, func(e Event) error {
		if f.match(e) && !keep(e) {
			return errEnough
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		return nil
	}
	return err
}

// BrokenChainError names the first event at which the audit chain does not
// hold.
type BrokenChainError struct {
	Seq    int64  // the first broken position
	Event  string // that event as found, or empty when it is missing
	Reason string
}

func (e *BrokenChainError) Error() string {
	if e.Event == "" {
		return fmt.Sprintf("audit trail broken at event %d: %s", e.Seq, e.Reason)
	}
	return fmt.Sprintf("audit trail broken at %s: %s", e.Event, e.Reason)
}

// Verify reads the whole trail and returns nil when every event is intact
// and in place, or a *BrokenChainError naming the first that is not.
//
// Removing events from the end leaves a shorter chain that is still valid:
// keep Head's seq and hash somewhere the ledger's writers cannot change
// (a SIEM, a log) and compare, to detect that too.
func (l *Ledger) Verify(ctx context.Context) error {
	var c chainCheck
	return l.b.events(ctx, Filter{}, c.next)
}

// Head returns the last event of the trail, or the zero Event (Seq 0) when
// it is empty.
func (l *Ledger) Head(ctx context.Context) (Event, error) {
	return l.b.lastEvent(ctx)
}

// VerifyExport checks a whole trail exported by Export with no filter, as
// it was received (by a SIEM, say), and returns the last event it holds.
// It returns a *BrokenChainError naming the first event that does not
// hold, or an error naming the line that is not an event.
func VerifyExport(r io.Reader) (Event, error) {
	var c chainCheck
	var last Event
	dec := json.NewDecoder(r)
	for line := 1; ; line++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return last, nil
		}
		var e Event
		if err == nil {
			err = checkExportKeys(raw)
		}
		if err == nil {
			err = json.Unmarshal(raw, &e)
		}
		if err != nil {
			return last, fmt.Errorf("ledger: audit export, line %d: not an audit event: %w", line, err)
		}
		if err := c.next(e); err != nil {
			return last, err
		}
		last = e
	}
}

// exportKeys are the keys of an exported event, from Event's JSON tags.
var exportKeys = func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[Event]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		keys[name] = true
	}
	return keys
}()

// checkExportKeys refuses an object with a key that is not spelled exactly
// as Export spells it, or that appears twice. encoding/json takes "Actor"
// or "ACTOR" for actor, and the last of two wins, so without this an
// export could show a reader one actor while its hash vouches for another.
func checkExportKeys(raw json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		switch {
		case !exportKeys[key]:
			return fmt.Errorf("unknown key %q", key)
		case seen[key]:
			return fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return err
		}
	}
	return nil
}

// chainCheck walks the trail in seq order.
type chainCheck struct {
	seq  int64
	hash string
}

func (c *chainCheck) next(e Event) error {
	want := c.seq + 1
	prev := c.hash
	if want == 1 {
		prev = genesis
	}
	switch {
	case e.Seq > want:
		missing := fmt.Sprintf("event %d is missing", want)
		if e.Seq > want+1 {
			missing = fmt.Sprintf("events %d to %d are missing", want, e.Seq-1)
		}
		return &BrokenChainError{Seq: want, Reason: missing + ": removed from the trail"}
	case e.Seq < want:
		return &BrokenChainError{Seq: e.Seq, Event: e.String(), Reason: fmt.Sprintf("it appears again after event %d: the trail was reordered", c.seq)}
	case e.digest() != e.Hash:
		return &BrokenChainError{Seq: e.Seq, Event: e.String(), Reason: "its contents do not match its hash: it was changed or moved"}
	case e.PrevHash != prev:
		return &BrokenChainError{Seq: e.Seq, Event: e.String(), Reason: fmt.Sprintf("it does not follow event %d: an event before it was changed, removed or moved", c.seq)}
	}
	c.seq, c.hash = e.Seq, e.Hash
	return nil
}

// Export writes every event f matches as one JSON object per line, with
// its seq and hashes, so that a SIEM can check the chain too.
func (l *Ledger) Export(ctx context.Context, w io.Writer, f Filter) error {
	enc := json.NewEncoder(w)
	return l.b.events(ctx, f, func(e Event) error {
		if !f.match(e) {
			return nil
		}
		return enc.Encode(e)
	})
}

package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// A Recording is the index of one collected session recording: which
// grant's session it is, on which host, when it ran, and where its object
// is in S3 with the object's size and SHA-256. The object itself (the
// layout is in DESIGN.md, "Recording objects") is the evidence; this
// index is how people find it, and the audit trail's "recording-collected"
// event holds the same digest, so an object changed after collection is
// caught by verifying the trail and the objects together.
type Recording struct {
	// RequestID is the grant's id; InstanceID the host; Session the
	// name sudo's I/O log gave the session on the host (its start time
	// and six random characters, 20261206-091500-Ab12Cd).
	RequestID  string `json:"request_id"`
	InstanceID string `json:"instance_id"`
	Session    string `json:"session"`
	// Username is the short-lived user; Subject the person it was for.
	Username string `json:"username"`
	Subject  string `json:"subject,omitempty"`
	// Serials are the certificate serials the host had for this user
	// (one per provision and extension); KeyID the certificate's key id.
	Serials []uint64 `json:"serials,omitempty"`
	KeyID   string   `json:"key_id,omitempty"`
	// Start and End bound the session as the host's clock saw it; End is
	// zero for a session still running when it was collected.
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
	// Bucket and Key locate the object; Size and SHA256 (hex) are the
	// object's, as Passport wrote it.
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// CollectedAt is when Passport stored it; Expires when the recording
	// and this index are due to be deleted (the retention).
	CollectedAt time.Time `json:"collected_at"`
	Expires     time.Time `json:"expires"`
}

// RecordingPrefix is where recordings live in their bucket:
// recordings/<request>/<instance>/<session>.
const RecordingPrefix = "recordings/"

// RecordingKey is the S3 key of a session's recording.
func RecordingKey(request, instance, session string) string {
	return RecordingPrefix + request + "/" + instance + "/" + session
}

// ID names the recording in the CLI and the API: <request>/<instance>/<session>.
func (r *Recording) ID() string { return r.RequestID + "/" + r.InstanceID + "/" + r.Session }

var (
	reRecordingPart = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	reSHA256        = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func (r *Recording) validate() error {
	var problems []string
	for _, p := range []struct{ name, v string }{{"request_id", r.RequestID}, {"instance_id", r.InstanceID}, {"session", r.Session}} {
		if !reRecordingPart.MatchString(p.v) {
			problems = append(problems, fmt.Sprintf("%s %.40q is not 1 to 128 of letters, digits, '.', '_' and '-'", p.name, p.v))
		}
	}
	if r.Bucket == "" || r.Key == "" {
		problems = append(problems, "bucket and key must be set")
	}
	if r.Size < 0 {
		problems = append(problems, "size is negative")
	}
	if !reSHA256.MatchString(r.SHA256) {
		problems = append(problems, "sha256 is not 64 lowercase hex digits")
	}
	if r.Expires.IsZero() {
		problems = append(problems, "expires is not set")
	}
	if len(problems) > 0 {
		return fmt.Errorf("ledger: recording %s cannot be indexed: %s", r.ID(), strings.Join(problems, "; "))
	}
	return nil
}

// RecordingFilter selects recordings; empty fields match all. Both
// backends read only what a field selects, through an index (DESIGN.md,
// "Records").
type RecordingFilter struct {
	RequestID  string
	InstanceID string
}

func (f RecordingFilter) match(r *Recording) bool {
	return (f.RequestID == "" || f.RequestID == r.RequestID) && (f.InstanceID == "" || f.InstanceID == r.InstanceID)
}

// PutRecording indexes r, replacing the index of the same session: a
// session collected while it ran is collected again once it ended, and
// the later, longer object replaces the earlier.
func (l *Ledger) PutRecording(ctx context.Context, r Recording) error {
	if err := r.validate(); err != nil {
		return err
	}
	r.normalize()
	return l.b.putRecording(ctx, r)
}

// GetRecording returns the live (unexpired) index of one session, or an
// error matching ErrNotFound.
func (l *Ledger) GetRecording(ctx context.Context, request, instance, session string) (Recording, error) {
	r, err := l.b.recording(ctx, request, instance, session)
	if err == nil && !r.Expires.After(l.now()) {
		err = recordingNotFound(request, instance, session)
	}
	return r, err
}

// Recordings returns the live recordings f selects, ordered by request,
// host and start.
func (l *Ledger) Recordings(ctx context.Context, f RecordingFilter) ([]Recording, error) {
	all, err := l.b.recordings(ctx, f)
	if err != nil {
		return nil, err
	}
	now := l.now()
	live := all[:0]
	for _, r := range all {
		if r.Expires.After(now) {
			live = append(live, r)
		}
	}
	sortRecordings(live)
	return live, nil
}

// ExpiredRecordings returns the recordings whose retention has passed, for
// the reconciler to delete with their objects.
func (l *Ledger) ExpiredRecordings(ctx context.Context) ([]Recording, error) {
	all, err := l.b.recordings(ctx, RecordingFilter{})
	if err != nil {
		return nil, err
	}
	now := l.now()
	var due []Recording
	for _, r := range all {
		if !r.Expires.After(now) {
			due = append(due, r)
		}
	}
	sortRecordings(due)
	return due, nil
}

// DeleteRecording removes the index of one session; a missing one is fine.
// Deleting the object and the audit event are the caller's.
func (l *Ledger) DeleteRecording(ctx context.Context, request, instance, session string) error {
	return l.b.deleteRecording(ctx, request, instance, session)
}

func sortRecordings(rs []Recording) {
	slices.SortFunc(rs, func(a, b Recording) int {
		if c := strings.Compare(a.RequestID, b.RequestID); c != 0 {
			return c
		}
		if c := strings.Compare(a.InstanceID, b.InstanceID); c != 0 {
			return c
		}
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Session, b.Session)
	})
}

// normalize keeps times to what both backends store (nanoseconds, UTC).
func (r *Recording) normalize() {
	for _, t := range []*time.Time{&r.Start, &r.End, &r.CollectedAt, &r.Expires} {
		*t = fromNanos(nanos(*t))
	}
}

func encodeRecording(r *Recording) (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("ledger: encoding recording %s: %w", r.ID(), err)
	}
	return string(b), nil
}

func decodeRecording(s string) (Recording, error) {
	var r Recording
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Recording{}, fmt.Errorf("ledger: a stored recording index is unreadable: %w", err)
	}
	r.normalize()
	return r, nil
}

func recordingNotFound(request, instance, session string) error {
	return &missingRecordingError{request + "/" + instance + "/" + session}
}

// missingRecordingError matches ErrNotFound, with words about recordings.
type missingRecordingError struct{ id string }

func (e *missingRecordingError) Error() string {
	return fmt.Sprintf("ledger: no recording %s (never collected, or past its retention)", e.id)
}

func (e *missingRecordingError) Is(target error) bool { return target == ErrNotFound }

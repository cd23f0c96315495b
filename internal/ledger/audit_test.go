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
	"strings"
	"testing"
	"time"
)

// sealedTrail returns events sealed one after the other, as Append would.
func sealedTrail(events ...Event) []Event {
	var prev Event
	for i := range events {
		events[i].seal(prev.Seq, prev.Hash)
		prev = events[i]
	}
	return events
}

func exportOf(t testing.TB, events []Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// FuzzVerifyExport feeds arbitrary exports to the verifier a SIEM would
// run. It must never panic, and whatever it accepts must be, as a SIEM with
// its own code would read it, a chain of events from seq 1 up whose every
// hash is the documented digest of the event as read and names the event
// before it.
func FuzzVerifyExport(f *testing.F) {
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	trail := sealedTrail(
		Event{Time: at, Actor: "alice@example.com", Action: ActionRequested, GrantID: "g-1"},
		Event{Time: at.Add(time.Second), Actor: "reconciler/a", Action: ActionRevoked, GrantID: "g-1", Target: "i-1", Subject: "alice@example.com", Detail: "expired"},
	)
	good := exportOf(f, trail)
	f.Add(good)
	f.Add(bytes.Replace(good, []byte("i-1"), []byte("i-2"), 1))
	f.Add(bytes.Replace(good, []byte(`"actor"`), []byte(`"Actor"`), 1))
	f.Add([]byte(`{"seq":1,"time":"2026-11-24T09:00:00Z","actor":"x","action":"y","prev_hash":"","hash":""}`))
	f.Add([]byte(`{"seq":1,"extra":true}`))
	f.Add([]byte("not json\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		last, err := VerifyExport(bytes.NewReader(data))
		if err != nil {
			return
		}
		seq, err := siemCheck(data)
		if err != nil {
			t.Fatalf("VerifyExport accepted an export an independent reader refuses: %v\n%q", err, data)
		}
		if last.Seq != seq {
			t.Fatalf("VerifyExport reported last seq %d; the chain as read ends at %d", last.Seq, seq)
		}
	})
}

// An export whose keys could be read two ways is refused, even when its
// chain holds under one reading: a key spelled differently from Export's
// (encoding/json would take it) or given twice (the last would win).
func TestVerifyExportRefusesAmbiguousKeys(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	good := exportOf(t, sealedTrail(Event{Time: at, Actor: "alice@example.com", Action: ActionRequested, GrantID: "g-1"}))
	if _, err := VerifyExport(bytes.NewReader(good)); err != nil {
		t.Fatalf("the control: %v", err)
	}
	for name, export := range map[string][]byte{
		"another spelling": bytes.Replace(good, []byte(`"actor"`), []byte(`"ACTOR"`), 1),
		"a key twice":      bytes.Replace(good, []byte(`"actor":"alice@example.com"`), []byte(`"actor":"mallory","actor":"alice@example.com"`), 1),
		"an unknown key":   bytes.Replace(good, []byte(`"actor"`), []byte(`"role":"admin","actor"`), 1),
		"not an object":    []byte("[1,2]\n"),
	} {
		if _, err := VerifyExport(bytes.NewReader(export)); err == nil || !strings.Contains(err.Error(), "line 1: not an audit event") {
			t.Errorf("%s: %v; want line 1 refused as not an audit event", name, err)
		}
	}
}

// siemCheck is an audit export's check written apart from the ledger's own
// code, from the format's documentation: JSON objects (one a line) with
// exactly the export's keys, spelled as exported; seq counting up from 1;
// prev_hash the previous line's hash (64 zeros on the first); and hash the
// hex SHA-256 of "passport-audit-v1" and a zero byte, seq and the time in
// Unix nanoseconds as 8-byte big-endian integers, then prev_hash, actor,
// action, grant_id, target, subject and detail, each after its length as
// an unsigned varint. It returns the last seq.
func siemCheck(data []byte) (int64, error) {
	want := map[string]bool{"seq": true, "time": true, "actor": true, "action": true, "grant_id": false,
		"target": false, "subject": false, "detail": false, "prev_hash": true, "hash": true}
	prev, seq := strings.Repeat("0", 64), int64(0)
	dec := json.NewDecoder(bytes.NewReader(data))
	for n := 0; ; n++ {
		var fields map[string]json.RawMessage
		if err := dec.Decode(&fields); err == io.EOF {
			break
		} else if err != nil {
			return 0, fmt.Errorf("object %d: %v", n+1, err)
		}
		for k, required := range want {
			if _, ok := fields[k]; required && !ok {
				return 0, fmt.Errorf("object %d has no %q", n+1, k)
			}
		}
		for k := range fields {
			if _, ok := want[k]; !ok {
				return 0, fmt.Errorf("object %d has the unknown key %q", n+1, k)
			}
		}
		var e struct {
			Seq                                                         int64
			Time                                                        string
			Actor, Action, GrantID, Target, Subject, Detail, Prev, Hash string
		}
		for k, dst := range map[string]any{"seq": &e.Seq, "time": &e.Time, "actor": &e.Actor, "action": &e.Action,
			"grant_id": &e.GrantID, "target": &e.Target, "subject": &e.Subject, "detail": &e.Detail,
			"prev_hash": &e.Prev, "hash": &e.Hash} {
			if raw, ok := fields[k]; ok {
				if err := json.Unmarshal(raw, dst); err != nil {
					return 0, fmt.Errorf("object %d, %s: %v", n+1, k, err)
				}
			}
		}
		at, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil {
			return 0, fmt.Errorf("object %d, time: %v", n+1, err)
		}
		if e.Seq != seq+1 || e.Prev != prev {
			return 0, fmt.Errorf("object %d: seq %d after %d, prev_hash %q after %q", n+1, e.Seq, seq, e.Prev, prev)
		}
		msg := append([]byte("passport-audit-v1"), 0)
		msg = binary.BigEndian.AppendUint64(msg, uint64(e.Seq))
		msg = binary.BigEndian.AppendUint64(msg, uint64(at.UnixNano()))
		for _, s := range []string{e.Prev, e.Actor, e.Action, e.GrantID, e.Target, e.Subject, e.Detail} {
			msg = binary.AppendUvarint(msg, uint64(len(s)))
			msg = append(msg, s...)
		}
		if sum := sha256.Sum256(msg); hex.EncodeToString(sum[:]) != e.Hash {
			return 0, fmt.Errorf("object %d: hash %q is not the digest of the event as read", n+1, e.Hash)
		}
		prev, seq = e.Hash, e.Seq
	}
	return seq, nil
}

// FuzzEventDigest checks that the canonical encoding keeps fields apart:
// moving bytes from one field to its neighbour, or changing any field,
// changes the hash.
func FuzzEventDigest(f *testing.F) {
	f.Add("alice", "g-1", "i-1", "detail", 3)
	f.Add("", "", "", "", 0)
	f.Add("a\x00b", "g", "i-1\n", "ü", 1)
	f.Fuzz(func(t *testing.T, actor, grant, target, detail string, shift int) {
		e := Event{Seq: 7, Time: time.Unix(0, 1).UTC(), Actor: actor, Action: ActionRevoked, GrantID: grant, Target: target, Detail: detail, PrevHash: genesis}
		h := e.digest()
		if h != e.digest() {
			t.Fatal("digest is not deterministic")
		}
		if len(target) > 0 {
			k := shift % (len(target) + 1)
			if k < 0 {
				k = -k
			}
			moved := e
			moved.GrantID, moved.Target = grant+target[:k], target[k:]
			if k > 0 && moved.digest() == h {
				t.Fatalf("moving %q from target to grant kept the hash", target[:k])
			}
		}
		for _, change := range []func(*Event){
			func(e *Event) { e.Seq++ },
			func(e *Event) { e.Time = e.Time.Add(1) },
			func(e *Event) { e.Actor += "x" },
			func(e *Event) { e.Action = ActionExpired },
			func(e *Event) { e.Subject = "s" },
			func(e *Event) { e.Detail += "." },
			func(e *Event) { e.PrevHash = strings.Repeat("1", len(genesis)) },
		} {
			c := e
			change(&c)
			if c.digest() == h {
				t.Fatalf("a changed event %+v kept the hash of %+v", c, e)
			}
		}
	})
}

func TestBadInputIsRefused(t *testing.T) {
	l := openTestSQLite(t, Options{})
	ctx := context.Background()
	now := time.Now()
	grants := []struct {
		name string
		edit func(*Grant)
		want string
	}{
		{"no id", func(g *Grant) { g.ID = "" }, "id is empty"},
		{"unknown state", func(g *Grant) { g.State = "granted" }, `state "granted"`},
		{"no window", func(g *Grant) { g.ExpiresAt = time.Time{} }, "must both be set"},
		{"window ends before it starts", func(g *Grant) { g.ExpiresAt = g.IssuedAt.Add(-time.Minute) }, "after issued_at"},
		{"target without id", func(g *Grant) { g.Targets[0].InstanceID = "" }, "no instance id"},
		{"target state", func(g *Grant) { g.Targets[1].State = "up" }, `target i-0fedcba9876543210: state "up"`},
	}
	for _, tc := range grants {
		t.Run("grant/"+tc.name, func(t *testing.T) {
			g := testGrant("g-bad", now, time.Hour, Active)
			tc.edit(&g)
			for op, write := range map[string]func(context.Context, Grant) (Grant, error){"Create": l.Create, "Update": l.Update} {
				if _, err := write(ctx, g); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %v, want an error saying %q", op, err, tc.want)
				}
			}
		})
	}
	if _, err := l.Get(ctx, "g-bad"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused grant was stored: %v", err)
	}

	events := []struct {
		name string
		e    Event
		want string
	}{
		{"no actor", Event{Action: ActionRevoked}, "actor is empty"},
		{"no action", Event{Actor: "alice"}, "action is empty"},
		{"invalid UTF-8", Event{Actor: "alice", Action: ActionRevoked, Detail: "\xff"}, "detail is not valid UTF-8"},
	}
	for _, tc := range events {
		t.Run("event/"+tc.name, func(t *testing.T) {
			if _, err := l.Append(ctx, tc.e); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Append: %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if head, err := l.Head(ctx); err != nil || head.Seq != 0 {
		t.Errorf("after refused appends the trail ends at %d (%v), want empty", head.Seq, err)
	}

	for _, tc := range []struct {
		name   string
		call   func() error
		reason string
	}{
		{"list of an unknown state", func() error { _, err := l.List(ctx, "granted"); return err }, "unknown grant state"},
		{"lease without holder", func() error { _, err := l.Acquire(ctx, "g-1", "", time.Minute); return err }, "needs a holder"},
		{"lease without duration", func() error { _, err := l.Acquire(ctx, "g-1", "r", 0); return err }, "positive duration"},
		{"release without holder", func() error { _, err := l.Release(ctx, "g-1", ""); return err }, "needs the holder"},
	} {
		if err := tc.call(); err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.reason)
		}
	}
}

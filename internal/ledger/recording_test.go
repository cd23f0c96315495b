package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func testRecording(request, instance, session string, start, expires time.Time) Recording {
	return Recording{
		RequestID: request, InstanceID: instance, Session: session, Username: "pp-abc123", Subject: "alice",
		Serials: []uint64{7, 1 << 63}, KeyID: "passport:" + request + ":alice", Start: start, End: start.Add(time.Minute),
		Bucket: "passport-recordings", Key: RecordingKey(request, instance, session), Size: 1234,
		SHA256: strings.Repeat("ab", 32), CollectedAt: start.Add(2 * time.Minute), Expires: expires,
	}
}

func TestRecordingIndex(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		now := c.Now()
		a := testRecording("req-1", "i-0aaa", "20261124-090000-AbCdEf", now, now.Add(24*time.Hour))
		b := testRecording("req-1", "i-0bbb", "20261124-085900-Zz0011", now.Add(-time.Minute), now.Add(24*time.Hour))
		other := testRecording("req-2", "i-0aaa", "20261124-090500-QqWwEe", now, now.Add(time.Hour))
		for _, r := range []Recording{a, b, other} {
			if err := l.PutRecording(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		got, err := l.GetRecording(ctx, a.RequestID, a.InstanceID, a.Session)
		if err != nil {
			t.Fatal(err)
		}
		if got.SHA256 != a.SHA256 || got.Size != a.Size || !got.Start.Equal(a.Start) || len(got.Serials) != 2 || got.Serials[1] != 1<<63 || got.KeyID != a.KeyID {
			t.Errorf("GetRecording = %+v, want %+v", got, a)
		}

		list, err := l.Recordings(ctx, RecordingFilter{RequestID: "req-1"})
		if err != nil {
			t.Fatal(err)
		}
		if ids := recordingIDs(list); ids != a.ID()+" "+b.ID() {
			t.Errorf("recordings of req-1: %s", ids)
		}
		list, _ = l.Recordings(ctx, RecordingFilter{InstanceID: "i-0aaa"})
		if ids := recordingIDs(list); ids != a.ID()+" "+other.ID() {
			t.Errorf("recordings on i-0aaa: %s", ids)
		}

		// A session collected again (it had not ended) replaces its index.
		a.Size, a.SHA256 = 99999, strings.Repeat("cd", 32)
		if err := l.PutRecording(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.GetRecording(ctx, a.RequestID, a.InstanceID, a.Session); got.Size != 99999 {
			t.Errorf("after a second collection the index says size %d, want 99999", got.Size)
		}
		if list, _ := l.Recordings(ctx, RecordingFilter{}); len(list) != 3 {
			t.Errorf("all recordings: %s, want 3", recordingIDs(list))
		}

		// Past its retention a recording is gone from the lists and due for
		// deletion.
		c.Advance(2 * time.Hour)
		if _, err := l.GetRecording(ctx, other.RequestID, other.InstanceID, other.Session); !errors.Is(err, ErrNotFound) {
			t.Errorf("an expired recording reads as %v, want ErrNotFound", err)
		}
		due, err := l.ExpiredRecordings(ctx)
		if err != nil || recordingIDs(due) != other.ID() {
			t.Errorf("ExpiredRecordings = %s, %v; want %s", recordingIDs(due), err, other.ID())
		}
		if err := l.DeleteRecording(ctx, other.RequestID, other.InstanceID, other.Session); err != nil {
			t.Fatal(err)
		}
		if due, _ := l.ExpiredRecordings(ctx); len(due) != 0 {
			t.Errorf("after deletion, still expired: %s", recordingIDs(due))
		}
	})
}

func TestRecordingIndexRefusesBadInput(t *testing.T) {
	l := openTestSQLite(t, Options{Now: newClock().Now})
	now := newClock().Now()
	for name, edit := range map[string]func(r *Recording){
		"request with a slash": func(r *Recording) { r.RequestID = "req/../x" },
		"empty session":        func(r *Recording) { r.Session = "" },
		"short digest":         func(r *Recording) { r.SHA256 = "abc" },
		"no retention":         func(r *Recording) { r.Expires = time.Time{} },
		"negative size":        func(r *Recording) { r.Size = -1 },
	} {
		r := testRecording("req-1", "i-0aaa", "s1", now, now.Add(time.Hour))
		edit(&r)
		if err := l.PutRecording(context.Background(), r); err == nil || !strings.Contains(err.Error(), "cannot be indexed") {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
}

func recordingIDs(rs []Recording) string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID())
	}
	return strings.Join(ids, " ")
}

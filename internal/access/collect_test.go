package access

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// objectFiles reads a recording object's members: recording.json and
// iolog/<file>.
func objectFiles(t *testing.T, obj []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(obj))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
	}
}

// TestRecordingsAreCollected: a person's sessions leave the host through
// Run Command's S3 output, each stored as recordings/<request>/<instance>/
// <session> tied to the grant (request, certificate serial and key id,
// start and end), indexed with its size and SHA-256, whose digest the
// audit trail holds; revoke collects what the user did last; a recording
// changed in the bucket is caught by Verify; retention deletes them.
func TestRecordingsAreCollected(t *testing.T) {
	l := startLab(t, 1, 0)
	svc, led := withLedger(t, l)
	store := recordInto(t, l, svc)
	svc.recordings.Retention = 30 * 24 * time.Hour
	ctx := context.Background()
	h := l.Hosts[0]
	id := h.Info().InstanceID
	g := grant(t, svc, request(newCA(t), id))
	cred := credentialOf(t, g, nil)
	if out, err := login(t, h, g.Username, cred.signer, "echo recorded-$((6*7))"); err != nil || out != "recorded-42" {
		t.Fatalf("login: %q, %v", out, err)
	}

	// The periodic collection, while the grant is open.
	got := svc.CollectRecordings(ctx, "reconciler/test", []string{id}, nil)
	if got[0].Err != nil || len(got[0].Stored) != 1 {
		t.Fatalf("collection: %+v", got[0])
	}
	rec := got[0].Stored[0]
	cert := certificate(t, g)
	if rec.RequestID != g.ID || rec.InstanceID != id || rec.Username != g.Username || rec.KeyID != cert.KeyId ||
		!slices.Contains(rec.Serials, cert.Serial) || rec.Start.IsZero() || rec.End.Before(rec.Start) || rec.Key != ledger.RecordingKey(g.ID, id, rec.Session) {
		t.Errorf("the recording is not tied to the grant: %+v (certificate serial %d, key id %q)", rec, cert.Serial, cert.KeyId)
	}
	obj, ok := l.S3.Object(lab.RecordingsBucket, rec.Key)
	sum := sha256.Sum256(obj)
	if !ok || int64(len(obj)) != rec.Size || hex.EncodeToString(sum[:]) != rec.SHA256 {
		t.Fatalf("the object at %s (%d bytes, found %v) is not what the index says: %+v", rec.Key, len(obj), ok, rec)
	}
	files := objectFiles(t, obj)
	var meta collect.Meta
	if err := json.Unmarshal([]byte(files["recording.json"]), &meta); err != nil || meta.RequestID != g.ID || meta.Format != collect.Format {
		t.Errorf("recording.json: %+v, %v", meta, err)
	}
	if !strings.Contains(files["iolog/stdout"], "recorded-42") || !strings.Contains(files["iolog/log.json"], "echo recorded-$((6*7))") {
		t.Errorf("the object does not hold the session: %v", files)
	}
	if keys, _ := store.List(ctx, collect.TransferPrefix); len(keys) != 0 {
		t.Errorf("transfer objects left behind: %v", keys)
	}
	if again := svc.CollectRecordings(ctx, "reconciler/test", []string{id}, nil); again[0].Err != nil || len(again[0].Stored) != 0 {
		t.Errorf("a second collection stored again: %+v", again[0])
	}

	// Revoke collects the user's last session before the grant closes.
	if _, err := login(t, h, g.Username, cred.signer, "echo the-last-thing"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Revoke(ctx, "alice", g); err != nil {
		t.Fatal(err)
	}
	recs, err := led.Recordings(ctx, ledger.RecordingFilter{RequestID: g.ID})
	if err != nil || len(recs) != 2 {
		t.Fatalf("after revoke the ledger indexes %d recordings of %s (%v), want 2", len(recs), g.ID, err)
	}
	lastRec := recs[slices.IndexFunc(recs, func(r ledger.Recording) bool { return r.Session != rec.Session })]
	last, _ := l.S3.Object(lab.RecordingsBucket, lastRec.Key)
	if !strings.Contains(objectFiles(t, last)["iolog/stdout"], "the-last-thing") {
		t.Errorf("the session just before the revoke was not collected: %+v", lastRec)
	}
	if n := strings.Count(strings.Join(trail(t, led, g.ID), "\n"), string(ledger.ActionRecordingCollected)); n != 2 {
		t.Errorf("the trail has %d recording-collected events, want 2:\n%s", n, strings.Join(trail(t, led, g.ID), "\n"))
	}
	// The next collection deletes what was stored; the user is gone, so
	// their directory goes too.
	if c := svc.CollectRecordings(ctx, "reconciler/test", []string{id}, nil); c[0].Err != nil {
		t.Fatal(c[0].Err)
	}
	if left := onHost(t, h, "ls "+hostscript.RecordingsDir); strings.Contains(left, g.Username) {
		t.Errorf("the host still holds %s's stored recordings: %q", g.Username, left)
	}

	// Verify: all match; a changed object is named.
	if n, problems, err := collect.Verify(ctx, led, store); err != nil || n != 2 || len(problems) != 0 {
		t.Fatalf("Verify: %d, %v, %v", n, problems, err)
	}
	l.S3.Replace(lab.RecordingsBucket, rec.Key, append(bytes.Clone(obj), 0))
	_, problems, err := collect.Verify(ctx, led, store)
	if err != nil || len(problems) != 1 || problems[0].ID != rec.ID() || !strings.Contains(problems[0].Reason, "changed after collection") {
		t.Errorf("Verify after the object changed: %v, %v", problems, err)
	}
	l.S3.Replace(lab.RecordingsBucket, rec.Key, obj)
	// One deleted behind Passport's back (no recording-deleted event) is
	// named too.
	if err := store.Delete(ctx, rec.Key); err != nil {
		t.Fatal(err)
	}
	if _, problems, _ := collect.Verify(ctx, led, store); len(problems) != 1 || !strings.Contains(problems[0].Reason, "missing") {
		t.Errorf("Verify after the object was deleted in S3: %v", problems)
	}
	if err := store.Put(ctx, rec.Key, obj, collect.ContentType); err != nil {
		t.Fatal(err)
	}

	// Deleting one early needs a reason and is on the trail.
	if err := svc.DeleteRecording(ctx, "admin", g.ID, id, rec.Session, " "); ClassOf(err) != Invalid {
		t.Errorf("deleting without a reason: %v", err)
	}
	// A deletion the bucket refuses fails, its event already on the trail
	// (a recording never goes without one), and Verify names it as half
	// done until a second try finishes it.
	l.Server.Deny(l.AccessKeyID, "s3:DeleteObject")
	if err := svc.DeleteRecording(ctx, "admin", g.ID, id, rec.Session, "court order 17"); err == nil || !strings.Contains(err.Error(), "run it again") {
		t.Errorf("a deletion the bucket refused: %v", err)
	}
	if _, ok := l.S3.Object(lab.RecordingsBucket, rec.Key); !ok {
		t.Fatal("a deletion the bucket refused removed the object")
	}
	if events, _ := led.Events(ctx, ledger.Filter{GrantID: g.ID}); events[len(events)-1].Action != ledger.ActionRecordingDeleted {
		t.Errorf("after a refused deletion the last event is %+v, want the deletion", events[len(events)-1])
	}
	if _, problems, _ := collect.Verify(ctx, led, store); len(problems) != 1 || !strings.Contains(problems[0].Reason, "half-way") {
		t.Errorf("Verify after a half-done deletion: %v", problems)
	}
	l.Server.Undeny(l.AccessKeyID, "s3:DeleteObject")
	if err := svc.DeleteRecording(ctx, "admin", g.ID, id, rec.Session, "court order 17"); err != nil {
		t.Fatal(err)
	}
	if n, problems, err := collect.Verify(ctx, led, store); err != nil || n != 1 || len(problems) != 0 {
		t.Errorf("Verify after the deletion finished: %d, %v, %v", n, problems, err)
	}
	if _, ok := l.S3.Object(lab.RecordingsBucket, rec.Key); ok {
		t.Error("the deleted recording's object is still in the bucket")
	}
	events, _ := led.Events(ctx, ledger.Filter{GrantID: g.ID})
	if e := events[len(events)-1]; e.Action != ledger.ActionRecordingDeleted || e.Actor != "admin" || !strings.Contains(e.Detail, "court order 17") {
		t.Errorf("the last event is %+v, want the deletion by admin with its reason", e)
	}

	// Retention: after 30 days the rest expire, object and index.
	l.clock.Advance(31 * 24 * time.Hour)
	if n, err := svc.ExpireRecordings(ctx, "reconciler/test"); err != nil || n != 1 {
		t.Errorf("ExpireRecordings: %d, %v; want 1", n, err)
	}
	if _, ok := l.S3.Object(lab.RecordingsBucket, lastRec.Key); ok {
		t.Error("an expired recording is still in the bucket")
	}
	if left, _ := led.Recordings(ctx, ledger.RecordingFilter{}); len(left) != 0 {
		t.Errorf("expired recordings still indexed: %v", left)
	}
	if _, err := led.GetRecording(ctx, g.ID, id, lastRec.Session); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("GetRecording after expiry: %v", err)
	}
}

// TestStrayRemovalCollectsRecordings: a Passport user no grant accounts
// for (made by a run whose record was lost) is removed by the sweep, and
// its sessions are collected under the request its host's grant file
// names, before anything of it is forgotten.
func TestStrayRemovalCollectsRecordings(t *testing.T) {
	l := startLab(t, 1, 0)
	h := l.Hosts[0]
	id := h.Info().InstanceID
	// Granted by a service without a ledger: the ledger never hears of it.
	g := grant(t, l.svc, request(newCA(t), id))
	if _, err := login(t, h, g.Username, credentialOf(t, g, nil).signer, "echo unaccounted-for"); err != nil {
		t.Fatal(err)
	}
	svc, led := withLedger(t, l)
	recordInto(t, l, svc)
	ctx := context.Background()
	removed, err := svc.RemoveStrays(ctx, "reconciler/test", []Stray{{InstanceID: id, Username: g.Username, Platform: Linux}})
	if err != nil || len(removed) != 1 {
		t.Fatalf("RemoveStrays: %v, %v", removed, err)
	}
	recs, err := led.Recordings(ctx, ledger.RecordingFilter{RequestID: g.ID})
	if err != nil || len(recs) != 1 || recs[0].Username != g.Username || recs[0].Subject != hostRequester(g.Requester) {
		t.Fatalf("the stray's recordings: %+v, %v", recs, err)
	}
	obj, _ := l.S3.Object(lab.RecordingsBucket, recs[0].Key)
	if !strings.Contains(objectFiles(t, obj)["iolog/stdout"], "unaccounted-for") {
		t.Error("the stray's session is not in its object")
	}
}

// TestRemovingATargetCollectsItsRecordings: taking a host out of a live
// request revokes the user there and collects what they did on it.
func TestRemovingATargetCollectsItsRecordings(t *testing.T) {
	l := startLab(t, 2, 0)
	svc, led := withLedger(t, l)
	recordInto(t, l, svc)
	ctx := context.Background()
	ca := newCA(t)
	keep, drop := l.Hosts[0].Info().InstanceID, l.Hosts[1].Info().InstanceID
	g := grant(t, svc, request(ca, keep, drop))
	if _, err := login(t, l.Hosts[1], g.Username, credentialOf(t, g, nil).signer, "echo on-the-dropped-host"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetTargets(ctx, "alice", g, ca, []string{keep}); err != nil {
		t.Fatal(err)
	}
	recs, err := led.Recordings(ctx, ledger.RecordingFilter{RequestID: g.ID, InstanceID: drop})
	if err != nil || len(recs) != 1 {
		t.Fatalf("recordings of the dropped host: %+v, %v", recs, err)
	}
	obj, _ := l.S3.Object(lab.RecordingsBucket, recs[0].Key)
	if !strings.Contains(objectFiles(t, obj)["iolog/stdout"], "on-the-dropped-host") {
		t.Error("the dropped host's session is not in its object")
	}
}

// recordInto has svc collect recordings into the lab's recordings bucket,
// and returns that bucket.
func recordInto(t testing.TB, l *testLab, svc *Service) *collect.Store {
	t.Helper()
	store, err := collect.NewStore(l.AWSConfig(), lab.RecordingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	svc.recordings = &Recordings{Store: store}
	return store
}

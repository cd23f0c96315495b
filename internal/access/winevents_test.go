package access

import (
	"context"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// TestWindowsEventsAreCollected: a person's Remote Desktop logon, a
// program they start and revoke's logoff leave a Windows host through Run
// Command's S3 output, stored as recordings/<request>/<instance>/<session>
// (one per logon) with the Security log's lines, indexed with size and
// SHA-256 and digested in the audit trail: while the grant is open (the
// reconciler's pass) and, whole, by revoke.
func TestWindowsEventsAreCollected(t *testing.T) {
	l := startMixedLab(t, 0, 1)
	svc, led := withLedger(t, l)
	store := recordInto(t, l, svc)
	ctx := context.Background()
	h := l.Windows[0]
	id := h.Info().InstanceID
	g := grant(t, svc, request(newCA(t), id))
	mustLogOn(t, h, g.Username, g.Passwords[id])
	const cmdline = `powershell.exe -NoProfile -Command "Copy-Item C:\payroll\2026.xlsx \\fileserver\out"`
	if err := h.StartProcess(g.Username, `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, cmdline); err != nil {
		t.Fatal(err)
	}

	// The reconciler's pass, while the person is still logged on.
	users, err := svc.ActiveWindowsUsers(ctx)
	if err != nil || len(users) != 1 || users[0].User != g.Username || users[0].Request != g.ID || users[0].Instance != id {
		t.Fatalf("active Windows users: %+v, %v", users, err)
	}
	got := svc.CollectWindowsEvents(ctx, "reconciler/test", users)
	if got[0].Err != nil || len(got[0].Stored) != 1 || !got[0].Stored[0].End.IsZero() {
		t.Fatalf("collection while logged on: %+v", got[0])
	}
	open := got[0].Stored[0]

	if err := svc.Revoke(ctx, "alice", g); err != nil {
		t.Fatal(err)
	}
	recs, err := led.Recordings(ctx, ledger.RecordingFilter{RequestID: g.ID})
	if err != nil || len(recs) != 1 {
		t.Fatalf("after revoke the ledger indexes %d recordings of %s (%v), want the one logon", len(recs), g.ID, err)
	}
	rec := recs[0]
	if rec.Session != open.Session || rec.End.IsZero() || rec.Username != g.Username || rec.InstanceID != id || rec.Key != ledger.RecordingKey(g.ID, id, rec.Session) {
		t.Errorf("the logon, collected whole after revoke: %+v (collected open as %s)", rec, open.Session)
	}
	obj, ok := l.S3.Object(lab.RecordingsBucket, rec.Key)
	if !ok || int64(len(obj)) != rec.Size {
		t.Fatalf("the object at %s (%d bytes, found %v) is not what the index says: %+v", rec.Key, len(obj), ok, rec)
	}
	events := objectFiles(t, obj)["iolog/"+collect.EventsFile]
	lines := strings.Split(strings.TrimSuffix(events, "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"event_id":4624`) || !strings.Contains(lines[1], `"event_id":4688`) || !strings.Contains(lines[2], `"event_id":4634`) {
		t.Fatalf("events.jsonl: %q; want the logon, the process and the logoff", events)
	}
	if e, err := collect.ParseEvent([]byte(lines[1])); err != nil || e.CommandLine != cmdline {
		t.Errorf("the process creation: %+v, %v; want its command line", e, err)
	}
	if n := strings.Count(strings.Join(trail(t, led, g.ID), "\n"), string(ledger.ActionRecordingCollected)); n != 2 {
		t.Errorf("the trail has %d recording-collected events, want 2 (open, then whole):\n%s", n, strings.Join(trail(t, led, g.ID), "\n"))
	}
	if keys, _ := store.List(ctx, collect.TransferPrefix); len(keys) != 0 {
		t.Errorf("transfer objects left behind: %v", keys)
	}
	if n, problems, err := collect.Verify(ctx, led, store); err != nil || n != 1 || len(problems) != 0 {
		t.Errorf("Verify: %d, %v, %v", n, problems, err)
	}

	// A stray Windows user (no grant accounts for it) has no request to
	// file its events under: the sweep removes it and leaves its events
	// in the host's log, without a failed collection in the trail.
	stray := grant(t, l.svc, request(newCA(t), id))
	mustLogOn(t, h, stray.Username, stray.Passwords[id])
	removed, err := svc.RemoveStrays(ctx, "reconciler/test", []Stray{{InstanceID: id, Username: stray.Username, Platform: Windows}})
	if err != nil || len(removed) != 1 {
		t.Fatalf("RemoveStrays: %v, %v", removed, err)
	}
	if all, _ := led.Recordings(ctx, ledger.RecordingFilter{InstanceID: id}); len(all) != 1 {
		t.Errorf("after the stray's removal the index holds %d recordings, want the one", len(all))
	}
	if events := strings.Join(trail(t, led, ""), "\n"); strings.Contains(events, string(ledger.ActionRecordingFailed)) || !strings.Contains(events, string(ledger.ActionSwept)) {
		t.Errorf("the stray's trail:\n%s\nwant it swept, and no failed collection", events)
	}
}

package service

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/recording"
)

// placeRecording copies the sudo I/O log in src to where collection keeps
// it, dir/<request>/<instance>/<session>/, and returns its id.
func placeRecording(t testing.TB, dir, src, request, instance, session string) string {
	t.Helper()
	dst := filepath.Join(dir, request, instance, session)
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return request + "/" + instance + "/" + session
}

// TestRecordingsFollowPolicy: a requester sees, plays and searches the
// recordings of their own request; someone policy does not let view it
// learns nothing of them; an administrator policy lets view it sees them
// all. The recordings are real sudo I/O logs (internal/recording's
// testdata) placed where collection keeps them, under a real grant.
func TestRecordingsFollowPolicy(t *testing.T) {
	dir := t.TempDir()
	r := startRig(t, 1, 0, func(s *Settings) { s.Recordings = recording.Dir(dir) })
	ctx := context.Background()
	staging := r.lab.Hosts[0].Info().InstanceID
	alice, bob, carol := r.signIn(t, "alice"), r.signIn(t, "bob"), r.signIn(t, "carol")
	req, err := alice.Create(ctx, api.CreateRequest{Targets: []string{staging}, Reason: "INC-4242 disk alert on web-1", Duration: "1h", PublicKey: newUserKey(t).line}, "")
	if err != nil {
		t.Fatal(err)
	}
	testdata := filepath.Join("..", "recording", "testdata")
	shell := placeRecording(t, dir, filepath.Join(testdata, "sudo-terminal"), req.ID, staging, "20261206-064656-PAwD9y")
	pipe := placeRecording(t, dir, filepath.Join(testdata, "sudo-pipe"), req.ID, staging, "20261206-064656-O0BVPp")
	damaged := placeRecording(t, dir, filepath.Join(testdata, "sudo-pipe"), req.ID, staging, "20261206-070000-damage")
	if err := os.WriteFile(filepath.Join(dir, damaged, "log.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A recording under a request the ledger does not know is nobody's.
	placeRecording(t, dir, filepath.Join(testdata, "sudo-terminal"), "ar-00000000000000ff", staging, "20261206-064656-orphan")

	ids := func(list []api.Recording) []string {
		var out []string
		for _, x := range list {
			out = append(out, x.ID)
		}
		slices.Sort(out)
		return out
	}
	want := []string{pipe, shell, damaged}
	slices.Sort(want)

	t.Run("the requester", func(t *testing.T) {
		list, err := alice.Recordings(ctx, client.RecordingFilter{})
		if err != nil || !slices.Equal(ids(list), want) {
			t.Fatalf("alice's recordings: %q, %v; want %q", ids(list), err, want)
		}
		i := slices.IndexFunc(list, func(x api.Recording) bool { return x.ID == shell })
		if x := list[i]; x.Requester != "alice" || x.User != "nobody" || x.StartedAt == nil || x.Target != staging || x.Request != req.ID {
			t.Errorf("listed %+v", x)
		}
		if got, err := alice.Recordings(ctx, client.RecordingFilter{Request: req.ID, Target: staging}); err != nil || len(got) != 3 {
			t.Errorf("by request and target: %d, %v", len(got), err)
		}
		if got, err := alice.Recordings(ctx, client.RecordingFilter{Request: "ar-0000000000000001"}); err != nil || len(got) != 0 {
			t.Errorf("another request's: %d, %v", len(got), err)
		}
		one, err := alice.Recording(ctx, shell)
		if err != nil || one.Detail == nil || !one.Detail.Terminal || one.Detail.Rows != 24 || !strings.HasPrefix(one.Detail.Command, "sh -c printf") {
			t.Fatalf("get: %+v, %v", one, err)
		}
		body, err := alice.RecordingCast(ctx, shell)
		if err != nil {
			t.Fatal(err)
		}
		cast, err := recording.ReadAsciicast(body)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		for {
			ev, err := cast.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind == recording.TTYOut {
				out.Write(ev.Data)
			}
		}
		body.Close()
		if cast.Header.Width != 80 || cast.Header.Height != 24 || !strings.Contains(out.String(), "got secret input") {
			t.Errorf("asciicast %+v: %q", cast.Header, out.String())
		}
		found, err := alice.GrepRecordings(ctx, `secret|to stderr`, client.RecordingFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, m := range found.Matches {
			lines = append(lines, m.Recording+" "+map[bool]string{true: "in", false: "out"}[m.Input]+" "+m.Line)
		}
		for _, w := range []string{shell + " in secret input", shell + " out got secret input", pipe + " out to stderr"} {
			if !slices.Contains(lines, w) {
				t.Errorf("grep found %q, not %q", lines, w)
			}
		}
		if found.Searched != 3 || len(found.Problems) != 1 || found.Problems[0].Recording != damaged || !strings.Contains(found.Problems[0].Message, "log.json") {
			t.Errorf("searched %d, problems %+v; want the damaged recording named", found.Searched, found.Problems)
		}
		if _, err := alice.Recording(ctx, damaged); codeOf(err) != api.CodeConflict {
			t.Errorf("a damaged recording: %v; want conflict", err)
		}
		if _, err := alice.RecordingCast(ctx, damaged); codeOf(err) != api.CodeConflict {
			t.Errorf("a damaged recording's asciicast: %v; want conflict", err)
		}
	})

	t.Run("someone policy does not let view it", func(t *testing.T) {
		list, err := bob.Recordings(ctx, client.RecordingFilter{})
		if err != nil || len(list) != 0 {
			t.Errorf("bob sees %q, %v", ids(list), err)
		}
		if _, err := bob.Recording(ctx, shell); codeOf(err) != api.CodeNotFound {
			t.Errorf("bob reads alice's recording: %v; want not_found", err)
		}
		if _, err := bob.RecordingCast(ctx, shell); codeOf(err) != api.CodeNotFound {
			t.Errorf("bob plays alice's recording: %v; want not_found", err)
		}
		found, err := bob.GrepRecordings(ctx, `secret`, client.RecordingFilter{})
		if err != nil || len(found.Matches) != 0 || found.Searched != 0 {
			t.Errorf("bob's search: %+v, %v", found, err)
		}
	})

	t.Run("an administrator", func(t *testing.T) {
		list, err := carol.Recordings(ctx, client.RecordingFilter{})
		if err != nil || !slices.Equal(ids(list), want) {
			t.Errorf("carol sees %q, %v; want %q (never the orphan)", ids(list), err, want)
		}
		if _, err := carol.Recording(ctx, "ar-00000000000000ff/"+staging+"/20261206-064656-orphan"); codeOf(err) != api.CodeNotFound {
			t.Errorf("a recording of no known request: %v; want not_found", err)
		}
	})

	t.Run("bad calls", func(t *testing.T) {
		tok := r.token(t, "alice")
		for _, c := range []struct {
			name   string
			call   call
			status int
			field  string
		}{
			{"list unsigned", call{method: "GET", path: "/v1/recordings"}, 401, ""},
			{"grep unsigned", call{method: "GET", path: "/v1/recordings/grep?pattern=x"}, 401, ""},
			{"get unsigned", call{method: "GET", path: "/v1/recordings/" + shell}, 401, ""},
			{"asciicast unsigned", call{method: "GET", path: "/v1/recordings/" + shell + "/asciicast"}, 401, ""},
			{"list by a bad request", call{method: "GET", path: "/v1/recordings?request=ar-1", token: tok}, 400, "request"},
			{"list by a bad target", call{method: "GET", path: "/v1/recordings?target=web-1", token: tok}, 400, "target"},
			{"grep without a pattern", call{method: "GET", path: "/v1/recordings/grep", token: tok}, 400, "pattern"},
			{"grep with a bad pattern", call{method: "GET", path: "/v1/recordings/grep?pattern=%28", token: tok}, 400, "pattern"},
			{"grep with a long pattern", call{method: "GET", path: "/v1/recordings/grep?pattern=" + strings.Repeat("a", 513), token: tok}, 400, "pattern"},
			{"get a bad name", call{method: "GET", path: "/v1/recordings/" + req.ID + "/" + staging + "/bad%20name", token: tok}, 404, "id"},
			{"get no such session", call{method: "GET", path: "/v1/recordings/" + req.ID + "/" + staging + "/20990101-000000-none", token: tok}, 404, ""},
			{"asciicast of no such session", call{method: "GET", path: "/v1/recordings/" + req.ID + "/" + staging + "/nothing/asciicast", token: tok}, 404, ""},
			{"delete unsigned", call{method: "DELETE", path: "/v1/recordings/" + shell, body: `{"reason": "INC-1"}`}, 401, ""},
			{"delete without a reason", call{method: "DELETE", path: "/v1/recordings/" + shell, token: tok, body: `{}`}, 400, "reason"},
			{"delete with a field it does not know", call{method: "DELETE", path: "/v1/recordings/" + shell, token: tok, body: `{"reason": "INC-1", "force": true}`}, 400, "force"},
			// Read from a directory, nothing is kept where the service may
			// delete it: the administrator is told so.
		} {
			a := r.do(t, c.call)
			if a.status != c.status || a.field != c.field {
				t.Errorf("%s: %d %s; want %d (field %q)", c.name, a.status, a.raw, c.status, c.field)
			}
		}
	})

	t.Run("deleting from a directory", func(t *testing.T) {
		// Read from a directory, nothing is kept where the service may
		// delete it: an administrator policy lets delete is told so, and
		// the recording stays.
		if one, err := r.signIn(t, "carol").Recording(ctx, shell); err != nil || one.Detail == nil || one.Detail.CallerMayDelete {
			t.Errorf("carol's read of a recording in a directory: %+v, %v; want it readable and not offered for deletion", one, err)
		}
		a := r.do(t, call{method: "DELETE", path: "/v1/recordings/" + shell, token: r.token(t, "carol"), body: `{"reason": "INC-1"}`})
		if a.status != 404 || !strings.Contains(a.msg, "kept in no bucket") {
			t.Errorf("carol deletes a recording the service reads from a directory: %d %s", a.status, a.raw)
		}
		if _, err := os.Stat(filepath.Join(dir, shell, "log.json")); err != nil {
			t.Errorf("the recording is gone: %v", err)
		}
	})

	t.Run("a Windows event session", func(t *testing.T) {
		events := placeRecording(t, dir, filepath.Join(testdata, "windows-events"), req.ID, staging, "20261206-091500-WinEvt")
		body, err := alice.RecordingEvents(ctx, events)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := io.ReadAll(body)
		body.Close()
		if err != nil || !strings.Contains(string(lines), `"event_id":4688`) || !strings.Contains(string(lines), `Copy-Item C:\\payroll`) {
			t.Errorf("its events: %v\n%s", err, lines)
		}
		if _, err := alice.RecordingEvents(ctx, shell); codeOf(err) != api.CodeConflict {
			t.Errorf("events of a terminal recording: %v; want conflict", err)
		}
		if _, err := alice.RecordingCast(ctx, events); codeOf(err) != api.CodeConflict {
			t.Errorf("asciicast of an event session: %v; want conflict", err)
		}
		if _, err := bob.RecordingEvents(ctx, events); codeOf(err) != api.CodeNotFound {
			t.Errorf("bob reads alice's events: %v; want not_found", err)
		}
		if a := r.do(t, call{method: "GET", path: "/v1/recordings/" + events + "/events"}); a.status != 401 {
			t.Errorf("events unsigned: %d %s", a.status, a.raw)
		}
	})

	t.Run("a service that keeps none", func(t *testing.T) {
		none := startRig(t, 0, 0)
		c := none.signIn(t, "alice")
		if _, err := c.Recordings(ctx, client.RecordingFilter{}); codeOf(err) != api.CodeNotFound {
			t.Errorf("list: %v; want not_found", err)
		}
		if _, err := c.GrepRecordings(ctx, "x", client.RecordingFilter{}); codeOf(err) != api.CodeNotFound {
			t.Errorf("grep: %v; want not_found", err)
		}
		if err := c.DeleteRecording(ctx, shell, "INC-1"); codeOf(err) != api.CodeNotFound {
			t.Errorf("delete: %v; want not_found", err)
		}
	})
}

package identity

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSessionRoundTripIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config", "passport")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "session.json")
	if _, err := LoadSession(path); !errors.Is(err, ErrNoSession) {
		t.Fatalf("no session yet: err = %v", err)
	}
	want := Session{Subject: "alice", Groups: []string{"ops"}, Expires: testNow, Response: []byte("<x/>")}
	if err := SaveSession(path, want); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, err %v; want %v", p, fi.Mode().Perm(), err, mode)
		}
	}
	got, err := LoadSession(path)
	if err != nil || got.Subject != "alice" || string(got.Response) != "<x/>" || !got.Expires.Equal(testNow) {
		t.Fatalf("LoadSession = %+v, %v", got, err)
	}
	if err := RemoveSession(path); err != nil {
		t.Fatal(err)
	}
	if err := RemoveSession(path); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if _, err := LoadSession(path); !errors.Is(err, ErrNoSession) {
		t.Fatalf("after remove: err = %v", err)
	}
}

func TestSessionDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "session.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := LoadSession(path); err == nil {
		t.Fatal("damaged session accepted")
	}
}

// A session file edited to claim another audience does not help: the
// audience comes from the caller.
func TestSessionVerifyUsesCallersAudience(t *testing.T) {
	p := newTestIdP(t, "idp")
	s := goodSpec()
	s.audience = "other-sp"
	sess := Session{SPEntityID: "other-sp", ACSURL: testACS, Response: p.response(t, s)}
	_, err := sess.Verify(Options{Metadata: p.metadata(), SPEntityID: testSP, Now: func() time.Time { return testNow }})
	if err == nil {
		t.Fatal("a response for another SP was accepted")
	}
}

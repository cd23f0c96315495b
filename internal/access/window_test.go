package access

import (
	"context"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
)

// TestWindowsEndOnTheRealClock lets real time pass the end of a one-minute
// window, because sshd and the host's sweep read the real clock, not the
// test's: the request left alone is refused and its user swept away, while
// the one extended in the meantime still logs in past its original end.
func TestWindowsEndOnTheRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a minute of real time for a window to end")
	}
	l := startLab(t, 1, 0)
	h := l.Hosts[0]
	ca := newCA(t)
	short := request(ca, h.Info().InstanceID)
	short.Duration = time.Minute
	ending := grant(t, l.svc, short)
	extended := grant(t, l.svc, short)
	extended, err := l.svc.Extend(context.Background(), testActor, extended, ca, 10*time.Minute)
	if err != nil {
		t.Fatalf("Extend: %v", err)
	}
	endingKey, extendedKey := credentialOf(t, ending, nil), credentialOf(t, extended, nil)
	mustLogIn(t, h, ending.Username, endingKey.signer)

	time.Sleep(time.Until(ending.ExpiresAt.Add(2 * time.Second)))

	mustBeRefused(t, h, ending.Username, endingKey.signer, "login after the window ended")
	mustLogIn(t, h, extended.Username, extendedKey.signer)

	// What the host's own scheduler runs every minute, run now: it needs
	// nobody else to remove the expired user.
	onHost(t, h, hostscript.SweepPath)
	if hasUser(t, h, ending.Username) {
		t.Errorf("the on-host sweep left %s, whose window ended at %s", ending.Username, ending.ExpiresAt)
	}
	if !hasUser(t, h, extended.Username) {
		t.Errorf("the on-host sweep removed %s, whose window runs to %s", extended.Username, extended.ExpiresAt)
	}
	mustLogIn(t, h, extended.Username, extendedKey.signer)
}

package access

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// TestBadRequestsAreRefusedNamingTheField: every field a requester controls
// is tried with hostile and out-of-range values. Each must be refused with
// an error that starts with the field's name, before SSM hears of it.
func TestBadRequestsAreRefusedNamingTheField(t *testing.T) {
	l := startLab(t, 0, 2)
	ca := newCA(t)
	ids := []string{l.Models[0].Info().InstanceID, l.Models[1].Info().InstanceID}
	many := make([]string, MaxTargets+1)
	for i := range many {
		many[i] = fmt.Sprintf("i-%017x", i)
	}
	tests := []struct {
		name   string
		change func(*Request)
		field  string
	}{
		{"reason empty", func(r *Request) { r.Reason = "" }, "reason"},
		{"reason too short", func(r *Request) { r.Reason = "fix it" }, "reason"},
		{"reason only spaces", func(r *Request) { r.Reason = strings.Repeat(" ", 20) }, "reason"},
		{"reason too long", func(r *Request) { r.Reason = strings.Repeat("a", 257) }, "reason"},
		{"reason with newline", func(r *Request) { r.Reason = "looking at it\nrequester=root" }, "reason"},
		{"reason with NUL", func(r *Request) { r.Reason = "looking at it\x00 now" }, "reason"},
		{"reason with escape", func(r *Request) { r.Reason = "looking at \x1b[2Jthe disk" }, "reason"},
		{"reason with bidi override", func(r *Request) { r.Reason = "looking at \u202ethe disk" }, "reason"},
		{"reason not UTF-8", func(r *Request) { r.Reason = "looking at \xff the disk" }, "reason"},
		{"no targets", func(r *Request) { r.Targets = nil }, "targets"},
		{"too many targets", func(r *Request) { r.Targets = many }, "targets"},
		{"duplicate target", func(r *Request) { r.Targets = []string{ids[0], ids[0]} }, "targets[1]"},
		{"target with shell", func(r *Request) { r.Targets = []string{"i-0123$(id)"} }, "targets[0]"},
		{"target upper case", func(r *Request) { r.Targets = []string{strings.ToUpper(ids[0])} }, "targets[0]"},
		{"target with newline", func(r *Request) { r.Targets = []string{ids[0] + "\n"} }, "targets[0]"},
		{"duration negative", func(r *Request) { r.Duration = -time.Hour }, "duration"},
		{"duration too short", func(r *Request) { r.Duration = time.Second }, "duration"},
		{"duration past the cap", func(r *Request) { r.Duration = MaxDuration + time.Second }, "duration"},
		{"no CA", func(r *Request) { r.CA = nil }, "certificate_authority"},
		{"public key garbage", func(r *Request) { r.PublicKey = "not a key" }, "public_key"},
		{"public key with options", func(r *Request) { r.PublicKey = `command="id" ` + r.PublicKey }, "public_key"},
		{"public key two lines", func(r *Request) { r.PublicKey += "\n" + r.PublicKey }, "public_key"},
		{"public key with NUL", func(r *Request) { r.PublicKey = strings.Replace(r.PublicKey, " ", "\x00", 1) }, "public_key"},
		{"public key is a certificate", func(r *Request) { r.PublicKey = someCertificate(t) }, "public_key"},
		{"public key huge", func(r *Request) { r.PublicKey = "ssh-ed25519 " + strings.Repeat("A", 10000) }, "public_key"},
		{"requester empty", func(r *Request) { r.Requester = "" }, "requester"},
		{"requester with newline", func(r *Request) { r.Requester = "alice\nbob" }, "requester"},
		{"requester with space", func(r *Request) { r.Requester = "alice $(id)" }, "requester"},
		{"requester too long", func(r *Request) { r.Requester = strings.Repeat("a", 300) }, "requester"},
		{"group empty", func(r *Request) { r.Groups = []string{"ops", ""} }, "groups[1]"},
		{"group with newline", func(r *Request) { r.Groups = []string{"ops\nadmins"} }, "groups[0]"},
		{"group too long", func(r *Request) { r.Groups = []string{strings.Repeat("g", 257)} }, "groups[0]"},
		{"too many groups", func(r *Request) { r.Groups = make([]string, 257) }, "groups"},
	}
	l.Server.ResetCalls()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(ca, ids...)
			req.PublicKey = publicKeyLine(t)
			tt.change(&req)
			g, err := l.svc.Grant(context.Background(), req)
			if err == nil || g != nil {
				t.Fatalf("Grant accepted it: %+v", g)
			}
			if !strings.HasPrefix(err.Error(), tt.field) {
				t.Errorf("error %q does not start with the field %s", err, tt.field)
			}
			// The class and the field travel with the error, for the
			// service's statuses and error codes: no caller parses text.
			if c := ClassOf(err); c != Invalid {
				t.Errorf("class %q, want %q", c, Invalid)
			}
			if f := FieldOf(err); f == "" || !strings.HasPrefix(tt.field, f) {
				t.Errorf("field %q, want the start of %q", f, tt.field)
			}
		})
	}
	if calls := l.Server.Calls(); len(calls) != 0 {
		t.Errorf("refused requests reached SSM: %v", calls)
	}
	t.Run("control", func(t *testing.T) {
		req := request(ca, ids...)
		req.PublicKey = publicKeyLine(t)
		for _, m := range l.Models {
			m.SetAnswer(0, "passport-result action=provision status=ok\n", "")
		}
		if _, err := l.svc.Grant(context.Background(), req); err != nil {
			t.Fatalf("the valid request was refused: %v", err)
		}
	})
}

func publicKeyLine(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ssh.NewPublicKey(pub)
	return authorizedKey(k) + " alice@laptop"
}

func someCertificate(t testing.TB) string {
	t.Helper()
	k, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(publicKeyLine(t)))
	cert, err := newCA(t).Sign(context.Background(), sshca.CertRequest{
		PublicKey: k, Username: "pp-a", KeyID: "k", ValidAfter: time.Now(), ValidBefore: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(cert)
}

func TestUsernamePrefix(t *testing.T) {
	runner := fleet.New(nil, fleet.Options{})
	for _, prefix := range []string{"pp-", "a", "ops-admin-", "x9"} {
		svc, err := New(Config{Fleet: runner, UsernamePrefix: prefix})
		if err != nil {
			t.Fatalf("prefix %q: %v", prefix, err)
		}
		seen := map[string]bool{}
		for range 2000 {
			name := svc.newUsername()
			if !strings.HasPrefix(name, prefix) || len(name) > maxUsername || len(name) < len(prefix)+10 {
				t.Fatalf("prefix %q gave %q", prefix, name)
			}
			if _, err := hostscript.Extend(name, time.Now()); err != nil {
				t.Fatalf("the host programs refuse %q: %v", name, err)
			}
			if seen[name] {
				t.Fatalf("%q drawn twice", name)
			}
			seen[name] = true
		}
	}
	for _, prefix := range []string{"PP-", "-pp", "1pp", "pp_", "pp-$(id)", "pp\n", "abcdefghijk", "pp-é"} {
		_, err := New(Config{Fleet: runner, UsernamePrefix: prefix})
		if err == nil || !strings.HasPrefix(err.Error(), "username_prefix") {
			t.Errorf("prefix %q: %v; want an error naming username_prefix", prefix, err)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a fleet succeeded")
	}
}

// FuzzHostRequester: whatever a requester is called, the name
// reaches the host's grant record in a form the host programs accept.
func FuzzHostRequester(f *testing.F) {
	for _, s := range []string{"arn:aws:iam::123456789012:user/alice", "alice@example.com", "-x", "_", "a b", "é", strings.Repeat("z", 300), "$(reboot)"} {
		f.Add(s)
	}
	ca := authorizedKey(newCA(f).PublicKey())
	f.Fuzz(func(t *testing.T, requester string) {
		if checkRequester(requester) != nil {
			return
		}
		hr := hostRequester(requester)
		_, err := hostscript.Provision(hostscript.Grant{Username: "pp-a", RequestID: "ar-0", Requester: hr, CAPublicKey: ca, ExpiresAt: time.Unix(2e9, 0), Serial: 1})
		var fe *hostscript.FieldError
		if errors.As(err, &fe) {
			t.Errorf("requester %q became %q, which the host refuses: %v", requester, hr, err)
		}
	})
}

func FuzzCheckReason(f *testing.F) {
	for _, s := range []string{"investigate the disk alert", "short", "line\nbreak and more", "\u202eabcdefghijk", "ünïcödé is fine here"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reason string) {
		if checkReason(reason) != nil {
			return
		}
		if strings.ContainsAny(reason, "\x00\n\r\t\x1b\u202e\u2066") || len([]rune(reason)) > maxReason || len([]rune(strings.TrimSpace(reason))) < minReason {
			t.Errorf("reason %q was accepted", reason)
		}
	})
}

func TestHumanDurations(t *testing.T) {
	for d, want := range map[time.Duration]string{
		12 * time.Hour: "12h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s", 0: "0s",
		time.Hour + 30*time.Second: "1h0m30s", 45 * time.Minute: "45m",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}

package hostscript

import (
	"encoding/base64"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func checkScript(t *testing.T, user, request string) string {
	t.Helper()
	s, err := Check(user, request)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckGolden(t *testing.T) {
	got := checkScript(t, "pp-golden01", "req-0123456789abcdef")
	assertGolden(t, "check", got)
	if data := decodeData(t, got); data != "format=1\naction=check\nuser=pp-golden01\nrequest=req-0123456789abcdef\n" {
		t.Errorf("check data block = %q", data)
	}
}

func TestCheckShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("shellcheck is not installed (apt-get install shellcheck)")
	}
	cmd := exec.Command("shellcheck", "-s", "sh", "-")
	cmd.Stdin = strings.NewReader(checkScript(t, "pp-a", "r"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck -s sh: %v\n%s", err, out)
	}
}

func TestCheckRefusesBadFields(t *testing.T) {
	for _, tt := range []struct{ user, request, field string }{
		{"pp-$(id)", "r", "Username"},
		{"root\n", "r", "Username"},
		{"pp-a", "", "RequestID"},
		{"pp-a", "r;reboot", "RequestID"},
		{"pp-a", strings.Repeat("r", 65), "RequestID"},
	} {
		s, err := Check(tt.user, tt.request)
		assertFieldError(t, err, tt.field, s)
	}
}

// TestCheckOnThisMachine runs the program for real as nobody: it only reads,
// so this machine is a fair host. It has no Passport grants, and "daemon" is
// a system account Passport must report as not its own.
func TestCheckOnThisMachine(t *testing.T) {
	if _, err := os.Stat(GrantsDir); err == nil {
		t.Skip("this machine has Passport grants; the test expects none")
	}
	tests := []struct {
		user string
		want Account
	}{
		{"pp-nobody-here", AccountAbsent},
		{"daemon", AccountOther},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			if tt.want == AccountOther {
				if _, err := exec.Command("id", "-u", tt.user).Output(); err != nil {
					t.Skipf("this machine has no %s account", tt.user)
				}
			}
			code, stdout, stderr := runUnprivileged(t, checkScript(t, tt.user, "ar-0011223344556677"))
			res, err := ParseResult(stdout)
			if err != nil || code != ExitOK {
				t.Fatalf("exit %d, %v\nstdout: %s\nstderr: %s", code, err, stdout, stderr)
			}
			p, err := ParsePresence(res)
			if err != nil {
				t.Fatal(err)
			}
			want := Presence{User: tt.user, Account: tt.want, Record: RecordAbsent}
			if p != want || p.Present() {
				t.Errorf("presence = %+v, want %+v (not present)", p, want)
			}
		})
	}
	t.Run("hostile data block is refused", func(t *testing.T) {
		data := base64.StdEncoding.EncodeToString([]byte("format=1\naction=check\nuser=pp-$(id)\nrequest=r\n"))
		code, stdout, _ := runUnprivileged(t, program("check", data, linuxBody("check")))
		if res, _ := ParseResult(stdout); code != ExitData || res.Step != "decode" {
			t.Errorf("exit %d, %q; want exit %d in step decode", code, stdout, ExitData)
		}
	})
}

func TestParsePresence(t *testing.T) {
	tests := []struct {
		name, stdout string
		want         Presence
		wantErr      bool
	}{
		{
			name:   "present",
			stdout: "passport-result action=check status=ok user=pp-a account=passport record=this expires=1900000000",
			want:   Presence{User: "pp-a", Account: AccountPassport, Record: RecordThis, ExpiresAt: time.Unix(1900000000, 0)},
		},
		{
			name:   "vanished",
			stdout: "passport-result action=check status=ok user=pp-a account=absent record=absent expires=0",
			want:   Presence{User: "pp-a", Account: AccountAbsent, Record: RecordAbsent},
		},
		{name: "another action", stdout: "passport-result action=extend status=ok user=pp-a account=passport record=this expires=1", wantErr: true},
		{name: "failed", stdout: "passport-result action=check status=error code=2 step=decode", wantErr: true},
		{name: "unknown account", stdout: "passport-result action=check status=ok user=pp-a account=yes record=this expires=1", wantErr: true},
		{name: "unknown record", stdout: "passport-result action=check status=ok user=pp-a account=passport record= expires=1", wantErr: true},
		{name: "no user", stdout: "passport-result action=check status=ok account=passport record=this expires=1", wantErr: true},
		{name: "expiry too large", stdout: "passport-result action=check status=ok user=pp-a account=passport record=this expires=999999999999", wantErr: true},
		{name: "expiry missing", stdout: "passport-result action=check status=ok user=pp-a account=passport record=this", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ParseResult(tt.stdout)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParsePresence(res)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParsePresence accepted %q as %+v", tt.stdout, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParsePresence = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzParsePresence(f *testing.F) {
	f.Add("passport-result action=check status=ok user=pp-a account=passport record=this expires=1900000000")
	f.Add("passport-result action=check status=ok user=pp-a account=other record=other expires=0")
	f.Fuzz(func(t *testing.T, s string) {
		res, err := ParseResult(s)
		if err != nil {
			return
		}
		p, err := ParsePresence(res)
		if err != nil {
			return
		}
		known := map[string]bool{"passport": true, "other": true, "absent": true, "this": true}
		if !known[string(p.Account)] || !known[string(p.Record)] || p.Record == "passport" || p.Account == "this" ||
			!reUsername.MatchString(p.User) || p.ExpiresAt.Unix() > maxExpiry {
			t.Errorf("ParsePresence(%q) accepted %+v", s, p)
		}
	})
}

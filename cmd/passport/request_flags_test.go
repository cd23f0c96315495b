package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
)

// Every bad flag or argument of the request commands is refused by name
// before anything is asked of a service or AWS, and a missing or ended
// sign-in says what to run. None of this needs a lab.
func TestRequestCommandsNameWhatIsWrong(t *testing.T) {
	withoutAWS(t)
	dir := t.TempDir()
	private := filepath.Join(dir, "id_ed25519")
	garbage := filepath.Join(dir, "garbage.pub")
	os.WriteFile(private, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600)
	os.WriteFile(garbage, []byte("ssh-ed25519 not-base64!\n"), 0o644)

	const server = "http://127.0.0.1:9"
	ok := []string{"request", "create", "--server", server, "--target", "i-0123456789abcdef0", "--reason", "INC-1 disk full on web-1"}
	with := func(extra ...string) []string { return append(append([]string{}, ok...), extra...) }
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"request", "create", "--target", "i-0123456789abcdef0"}, "--reason is required"},
		{[]string{"request", "create", "--reason", "INC-1 disk full on web-1"}, "--target INSTANCE_ID (repeatable) or --tag KEY=VALUE"},
		{with("--tag", "Env=staging"), "--target and --tag do not go together"},
		{[]string{"request", "create", "--target", "web-1", "--reason", "INC-1 disk full on web-1"}, `--target "web-1" is not an instance id`},
		{[]string{"request", "create", "--target", "i-0123456789abcdef0,i-0123456789abcdef0", "--reason", "INC-1 disk full on web-1"}, "--target i-0123456789abcdef0 is given twice"},
		{[]string{"request", "create", "--tag", "Env", "--reason", "INC-1 disk full on web-1"}, `--tag "Env": write KEY=VALUE`},
		{[]string{"request", "create", "--tag", "Env=a", "--tag", "Env=b", "--reason", "INC-1 disk full on web-1"}, `--tag "Env" is given twice`},
		{[]string{"request", "create", "--target", "i-0123456789abcdef0", "--reason", "short"}, "--reason:"},
		{with("--duration", "2x"), `--duration "2x" is not a length of time`},
		{with("--duration", "-1h"), `--duration "-1h" is not a length of time`},
		{with("--duration", "13h"), "--duration 13h:"},
		{with("--public-key", filepath.Join(dir, "none.pub")), "--public-key: open"},
		{with("--public-key", private), "is a private key: give its public half"},
		{with("--public-key", garbage), "--public-key " + garbage + ": public_key is not an SSH public key"},
		{with("--idempotency-key", "a b"), "--idempotency-key must be"},
		{[]string{"request", "create", "--server", "ftp://passport", "--target", "i-0123456789abcdef0", "--reason", "INC-1 disk full on web-1"}, "--server: server \"ftp://passport\" is not a URL"},
		{[]string{"request", "create", "--server", "http://passport.example.com", "--target", "i-0123456789abcdef0", "--reason", "INC-1 disk full on web-1"}, "uses plain http"},
		{with("--server-ca", filepath.Join(dir, "none.pem")), "--server-ca: stat"},
		{[]string{"request", "extend", "web-1", "2h"}, `"web-1" is not an access request id`},
		{[]string{"request", "extend", "ar-0123456789abcdef", "soon"}, `DURATION "soon" is not a length of time`},
		{[]string{"request", "extend", "ar-0123456789abcdef"}, "accepts 2 arg(s)"},
		{[]string{"request", "end", "ar-1"}, `"ar-1" is not an access request id`},
		{[]string{"request", "list", "--server", server, "--state", "gone"}, `--state "gone" is not one of`},
		{[]string{"request", "get", "web-1"}, `"web-1" is not an access request id`},
		{[]string{"request", "get", "ar-0123456789abcdef"}, "request get reads a request from the Passport service: give --server"},
		{[]string{"login", "--server", server, "--metadata", "https://idp.example.com/metadata"}, "--metadata is for direct sign-in"},
		{[]string{"whoami", "--server", server, "--session", "s.json"}, "--session is for direct sign-in"},
		// Nobody signed in, and no AWS credentials to sign in as a machine.
		{ok, "run passport login --server " + server},
		{[]string{"whoami", "--server", server}, "run passport login --server " + server},
		{[]string{"request", "list", "--server", server}, "run passport login --server " + server},
		{[]string{"request", "get", "ar-0123456789abcdef", "--server", server}, "run passport login --server " + server},
	} {
		_, stderr, err := passportRun(t, c.args...)
		if err == nil || !strings.Contains(stderr, c.want) {
			t.Errorf("passport %s: %v, said %q; want %q", strings.Join(c.args, " "), err, stderr, c.want)
		}
	}

	// A direct-mode flag on the command line wins over PASSPORT_SERVER from
	// the environment.
	t.Setenv(client.EnvServer, server)
	if _, stderr, err := passportRun(t, "whoami", "--session", filepath.Join(dir, "none.json")); err == nil || strings.Contains(stderr, "passport login --server") || !strings.Contains(stderr, "passport login") {
		t.Errorf("whoami --session with PASSPORT_SERVER set: %v %q; want the direct session's answer", err, stderr)
	}
	t.Setenv(client.EnvServer, "")

	// A sign-in that has ended says so, and what to run.
	ended := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	if err := client.SaveToken(server, api.Token{Token: "ppt_x", ExpiresAt: ended}); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := passportRun(t, ok...); err == nil || !strings.Contains(stderr, "the sign-in ended at "+ended.Format(time.RFC3339)+"; run passport login --server "+server) {
		t.Errorf("create with an ended sign-in: %v %q", err, stderr)
	}
	if stdout, stderr, err := passportRun(t, "logout", "--server", server); err != nil || stdout != "Signed out of "+server+".\n" {
		t.Errorf("logout of an ended sign-in: %v %q %q", err, stdout, stderr)
	}
	if stdout, _, err := passportRun(t, "logout", "--server", server); err != nil || stdout != "Not signed in to "+server+".\n" {
		t.Errorf("logout when not signed in: %v %q", err, stdout)
	}
}

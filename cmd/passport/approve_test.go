package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
)

var rePending = regexp.MustCompile(`Access request (ar-[0-9a-f]{16}) waits for 1 more from group:admins or group:ops until `)

// bob (dev) asks for 3 hours on staging, which the lab's policy grants
// once an operator or administrator approves: the CLI says whom it waits
// for and how to approve; alice approves it with passport approve, and
// carol denies another with passport deny. dave breaks the glass, and
// erin reviews it.
func TestApprovalsFromTheCLI(t *testing.T) {
	sl := startServiceLab(t, lab.Options{Hosts: 2})
	host, production := sl.Hosts[0], sl.Hosts[1]
	t.Setenv(client.EnvServer, sl.svc.URL)
	as := func(person string) { t.Setenv("PASSPORT_TOKEN", sl.svc.Token(t, person)) }
	pub := newSSHKey(t)
	ask := func() string {
		t.Helper()
		as("bob")
		stdout, stderr, err := passportRun(t, "request", "create", "--target", host.Info().InstanceID, "--reason", "CHG-81 migrate the sessions table", "--duration", "3h", "--public-key", pub)
		m := rePending.FindStringSubmatch(stdout)
		if err != nil || m == nil || !strings.Contains(stdout, "An approver runs: passport approve "+m[1]) {
			t.Fatalf("request create that waits: %v\n%s%s", err, stdout, stderr)
		}
		return m[1]
	}

	id := ask()
	if users := labtest.OnHost(t, host, "ls /var/lib/passport/grants 2>/dev/null || true"); users != "" {
		t.Fatalf("a request that waits touched the host: %s", users)
	}
	if _, stderr, err := passportRun(t, "approve", id); err == nil || !strings.Contains(stderr, "someone else must approve or review it") {
		t.Errorf("bob approving his own: %v %s", err, stderr)
	}
	as("alice")
	stdout, stderr, err := passportRun(t, "approve", id, "--comment", "CHG-81 is on the board")
	if err != nil || !regexp.MustCompile(`Approved access request `+id+`: granted to bob as pp-\S+ until `).MatchString(stdout) {
		t.Fatalf("alice approving: %v\n%s%s", err, stdout, stderr)
	}

	// Without --public-key the key pair made for a request that waits is
	// kept here, and create --wait picks the same request up and waits,
	// also when it names the targets by tag.
	as("bob")
	first, stderr, err := passportRun(t, "request", "create", "--target", host.Info().InstanceID, "--reason", "CHG-82 vacuum the sessions table", "--duration", "2h")
	m := rePending.FindStringSubmatch(first)
	if err != nil || m == nil {
		t.Fatalf("request create with a fresh key: %v\n%s%s", err, first, stderr)
	}
	waiting, waitOut, waitErr := passport(t, "request", "create", "--wait", "--tag", "Name="+host.Info().Tags["Name"], "--reason", "CHG-82 vacuum the sessions table", "--duration", "2h")
	said(t, waitErr, waitOut, "passport: access request "+m[1]+" waits for 1 more approval from group:admins or group:ops")
	as("alice")
	if _, stderr, err := passportRun(t, "approve", m[1]); err != nil {
		t.Fatalf("alice approving: %v %s", err, stderr)
	}
	if err := waiting.Wait(); err != nil || !strings.Contains(waitOut.String(), "Access request "+m[1]+" granted to bob.") {
		t.Fatalf("create --wait after the approval: %v\n%s%s", err, waitOut, waitErr)
	}
	as("bob")
	if stdout, _, err := passportRun(t, "request", "list"); err != nil || !regexp.MustCompile(m[1]+`\s+bob\s+pp-\S+\s+active\s+\S+\s+\d+(h\d*m?|m)\s+yes`).MatchString(stdout) {
		t.Errorf("the picked-up request is not held here:\n%s", stdout)
	}

	// A longer window waits for approval too, and the current one stands;
	// extend --wait waits for the same one and keeps the new certificate.
	stdout, stderr, err = passportRun(t, "request", "extend", m[1], "3h")
	if err != nil || !regexp.MustCompile(`The longer window of access request `+m[1]+`, until \S+, waits for 1 more from group:admins or group:ops until \S+; the current window, until \S+, stands.`).MatchString(stdout) {
		t.Fatalf("extend beyond what policy grants at once: %v\n%s%s", err, stdout, stderr)
	}
	extending, extOut, extErr := passport(t, "request", "extend", m[1], "3h", "--wait")
	said(t, extErr, extOut, "passport: the longer window of access request "+m[1]+" waits for 1 more approval")
	as("alice")
	if _, stderr, err := passportRun(t, "approve", m[1]); err != nil {
		t.Fatalf("alice approving the longer window: %v %s", err, stderr)
	}
	if err := extending.Wait(); err != nil || !strings.Contains(extOut.String(), "Access request "+m[1]+" now ends") {
		t.Fatalf("extend --wait after the approval: %v\n%s%s", err, extOut, extErr)
	}
	as("bob")
	if stdout, _, err := passportRun(t, "request", "list"); err != nil || !regexp.MustCompile(m[1]+`\s+bob\s+pp-\S+\s+active\s+\S+\s+(3h|2h59m)\s+yes`).MatchString(stdout) {
		t.Errorf("the longer window is not what is held here:\n%s", stdout)
	}

	other := ask()
	as("carol")
	if _, stderr, err := passportRun(t, "deny", other); err == nil || !strings.Contains(stderr, "--comment is required") {
		t.Errorf("a denial without a comment: %v %s", err, stderr)
	}
	stdout, stderr, err = passportRun(t, "deny", other, "--comment", "not during the freeze")
	if err != nil || stdout != "Denied access request "+other+" of bob: it is denied.\n" {
		t.Errorf("carol denying: %v %q %s", err, stdout, stderr)
	}

	// dave (oncall) breaks the glass on production; erin (admins) finds it
	// unreviewed and reviews it.
	as("dave")
	stdout, stderr, err = passportRun(t, "request", "create", "--break-glass", "--target", production.Info().InstanceID, "--reason", "INC-90 primary database down", "--public-key", pub)
	if err != nil {
		t.Fatalf("request create --break-glass: %v\n%s%s", err, stdout, stderr)
	}
	glass := createdID(t, stdout)
	as("erin")
	stdout, stderr, err = passportRun(t, "request", "list", "--unreviewed")
	if err != nil || !regexp.MustCompile(glass+`\s+dave\s+active\s+\S+\s+INC-90 primary database down`).MatchString(stdout) {
		t.Errorf("request list --unreviewed: %v\n%s%s", err, stdout, stderr)
	}
	if _, stderr, err := passportRun(t, "review", glass); err == nil || !strings.Contains(stderr, "--comment is required") {
		t.Errorf("a review without a comment: %v %s", err, stderr)
	}
	stdout, stderr, err = passportRun(t, "review", glass, "--comment", "INC-90 was real")
	if err != nil || stdout != "Reviewed break-glass access request "+glass+" of dave (active).\n" {
		t.Errorf("review: %v %q %s", err, stdout, stderr)
	}
	if stdout, _, err := passportRun(t, "request", "list", "--unreviewed"); err != nil || !strings.Contains(stdout, "No break-glass request owes a review.") {
		t.Errorf("after the review: %v %s", err, stdout)
	}

	// Less than 10 minutes left: the connect commands say so. alice holds
	// her requests on a machine of her own.
	as("alice")
	t.Setenv("PASSPORT_CONFIG_DIR", t.TempDir())
	stdout, stderr, err = passportRun(t, "request", "create", "--target", host.Info().InstanceID, "--reason", "INC-93 a quick look", "--duration", "5m", "--public-key", pub)
	if err != nil {
		t.Fatalf("a 5-minute request: %v\n%s%s", err, stdout, stderr)
	}
	short := createdID(t, stdout)
	for _, args := range [][]string{{"tunnel", host.Info().InstanceID, "--remote-port", "22"}, {"rdp", host.Info().InstanceID}} {
		tun, tunOut, tunErr := passport(t, args...)
		said(t, tunErr, tunOut, "passport: access request "+short+" ends in ")
		tun.Process.Kill()
		tun.Wait()
	}
	// passport ssh: through its proxy, which OpenSSH lets write to the
	// terminal.
	if stdout, stderr, err := passportRun(t, "ssh", host.Info().InstanceID, "--", "true"); err != nil || !strings.Contains(stderr, "passport: access request "+short+" ends in ") {
		t.Errorf("passport ssh said nothing of the window's end: %v\n%s%s", err, stdout, stderr)
	}
	if stdout, _, err := passportRun(t, "request", "list"); err != nil || !regexp.MustCompile(short+`\s+alice\s+pp-\S+\s+active\s+\S+\s+[45]m\s`).MatchString(stdout) {
		t.Errorf("request list does not show the time left:\n%s", stdout)
	}

	t.Setenv(client.EnvServer, "")
	for _, verb := range []string{"approve", "review"} {
		if _, stderr, err := passportRun(t, verb, other, "--comment", "x"); err == nil || !strings.Contains(stderr, verb+" talks to the Passport service") {
			t.Errorf("%s without a service: %v %s", verb, err, stderr)
		}
	}
}

// said waits until a running command has written text to stderr.
func said(t *testing.T, stderr, stdout fmt.Stringer, text string) {
	t.Helper()
	waitFor(t, stderr, stdout, regexp.MustCompile("("+regexp.QuoteMeta(text)+")"))
}

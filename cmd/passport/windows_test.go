package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
)

// TestRDPToAWindowsTarget: passport rdp forwards a Windows target's port
// 3389 through Session Manager and prints the target's own password, which
// logs on through that tunnel (passport lab logon-check stands in for the
// Remote Desktop client the lab cannot run).
func TestRDPToAWindowsTarget(t *testing.T) {
	cl := startConnectLabWith(t, lab.Options{WindowsHosts: 1})
	win := cl.Windows[0]
	id := win.Info().InstanceID
	password := cl.grant.Passwords[id]

	cmd, stdout, stderr := passport(t, "rdp", id)
	printed := rdpPrinted(t, stdout, stderr)
	if printed["User"] != cl.grant.Username || printed["Password"] != password || printed["Host"] != "127.0.0.1" {
		t.Fatalf("passport rdp printed\n%s\nwant user %s, the target's password and host 127.0.0.1", stdout, cl.grant.Username)
	}
	local := printed["Host"] + ":" + printed["Port"]

	check := func(user, pw string) (string, error) { return logonCheck(local, user, pw) }
	if out, err := check(cl.grant.Username, password); err != nil || !strings.Contains(out, "logon of "+cl.grant.Username+" accepted") {
		t.Errorf("logon-check through the tunnel with the printed password: %v\n%s", err, out)
	}
	out, err := check(cl.grant.Username, password+"x")
	if err == nil || !strings.Contains(out, "denied") {
		t.Errorf("logon-check with a wrong password: %v\n%s", err, out)
	}
	if strings.Contains(out, password) {
		t.Error("a refused logon-check printed the password")
	}
	interrupt(t, cmd, stderr)
}

// rdpPrinted waits for passport rdp to say how to log in, and returns what
// it printed by label (Host, Port, User, Password, Expires).
func rdpPrinted(t *testing.T, stdout, stderr fmt.Stringer) map[string]string {
	t.Helper()
	waitFor(t, stdout, stderr, regexp.MustCompile(`(Press Ctrl-C)`))
	printed := map[string]string{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			printed[k] = strings.TrimSpace(v)
		}
	}
	return printed
}

// logonCheck runs passport lab logon-check at addr as user with password,
// standing in for a Remote Desktop client.
func logonCheck(addr, user, password string) (string, error) {
	c := exec.Command(os.Args[0], "lab", "logon-check", addr, user)
	c.Env = append(os.Environ(), "PASSPORT_RUN_MAIN=1")
	c.Stdin = strings.NewReader(password + "\n")
	out, err := c.CombinedOutput()
	return string(out), err
}

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/client"
)

// TestRequestImportWithoutAWS needs no lab: a request imported from
// Terraform's JSON is listed, goes into ssh-config, and its expiry and
// unknown targets are refused by name. With no AWS configuration, the
// names are skipped with a warning and the import still succeeds.
func TestRequestImportWithoutAWS(t *testing.T) {
	withoutAWS(t)
	const cert = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t pp-test"
	live := &access.Grant{ID: "ar-00000000000000a1", Username: "pp-live", ExpiresAt: time.Now().Add(time.Hour).UTC(), Certificate: cert,
		PrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
		Targets:    []access.Target{{InstanceID: "i-00000000000000001", Status: access.Active}, {InstanceID: "i-00000000000000002", Status: access.Failed}}}
	old := &access.Grant{ID: "ar-00000000000000a2", Username: "pp-old", ExpiresAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Certificate: cert,
		Targets: []access.Target{{InstanceID: "i-00000000000000009", Status: access.Active}}}
	state := filepath.Join(t.TempDir(), "show.json")
	if err := os.WriteFile(state, terraformShow(t, live, old), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := passportRun(t, "request", "import", state)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "names could not be looked up") {
		t.Errorf("import without AWS did not warn about names: %q", stderr)
	}
	for _, want := range []string{"ar-00000000000000a1  pp-live  1 targets  expires", "ar-00000000000000a2  pp-old  1 targets  expired 2026-01-02T03:04:05Z"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("import printed %q, want %q", stdout, want)
		}
	}

	stdout, _, err = passportRun(t, "request", "list")
	if err != nil || !regexp.MustCompile(`ar-00000000000000a1\s+pp-live\s+live\s+\S+\s+(59m|1h)\s`).MatchString(stdout) || !regexp.MustCompile(`pp-old\s+expired\s+\S+\s+ended\s`).MatchString(stdout) {
		t.Errorf("request list: %v\n%s", err, stdout)
	}

	stdout, stderr, err = passportRun(t, "ssh-config")
	if err != nil {
		t.Fatalf("ssh-config: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "Host i-00000000000000001\n") || strings.Contains(stdout, "i-00000000000000002") || strings.Contains(stdout, "i-00000000000000009") {
		t.Errorf("ssh-config lists other than the live request's active target:\n%s", stdout)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ssh", "i-00000000000000009"}, "ar-00000000000000a2 for i-00000000000000009 expired at 2026-01-02T03:04:05Z"},
		{[]string{"rdp", "i-00000000000000002"}, `covers "i-00000000000000002"`},
		{[]string{"request", "import", filepath.Join(t.TempDir(), "none.json")}, "no such file"},
		{[]string{"proxy", "i-00000000000000001", "70000"}, `port "70000" is not a TCP port`},
	} {
		_, stderr, err := passportRun(t, c.args...)
		if err == nil || !strings.Contains(stderr, c.want) {
			t.Errorf("passport %s: %v, said %q, want %q", strings.Join(c.args, " "), err, stderr, c.want)
		}
	}
}

// withoutAWS gives this test's passport processes a fresh config
// directory, and no AWS configuration or credentials and no Passport
// service to reach.
func withoutAWS(t *testing.T) {
	t.Setenv("PASSPORT_CONFIG_DIR", t.TempDir())
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		client.EnvServer, client.EnvServerCA, "PASSPORT_TOKEN", "PASSPORT_CA"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

package notify

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every bad notifications file is refused by Load with an error naming
// the flag, the file, the sink and the field, and no secret.
func TestBadConfigIsRefused(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("too-short"), 0o600)
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte(testSecret), 0o600)
	slackURL := "https://hooks.slack.com/services/T000/B000/SECRETPATHxyz"
	t.Setenv("TEST_SLACK_URL", slackURL)
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `{"sinks": [`, "not a notifications file"},
		{"unknown field", `{"sink": []}`, `unknown field "sink"`},
		{"no sinks", `{"sinks": []}`, `"sinks" is empty`},
		{"bad duration", `{"sinks": [], "dead_letter_after": "soon"}`, `"soon" is not a positive duration`},
		{"too long a dead-letter time", `{"dead_letter_after": "100h", "sinks": [{"name": "a", "type": "webhook", "url": "https://h.example.com", "secret_file": "` + good + `"}]}`, `"dead_letter_after" 100h0m0s is longer`},
		{"no name", `{"sinks": [{"type": "webhook"}]}`, `sinks[0]: "name" must be`},
		{"bad type", `{"sinks": [{"name": "a", "type": "teams"}]}`, `sinks[0] (a): "type" "teams"`},
		{"bad event", `{"sinks": [{"name": "a", "type": "webhook", "events": ["granted", "exploded"]}]}`, `"events": "exploded" is not an event`},
		{"no url", `{"sinks": [{"name": "a", "type": "webhook", "secret_file": "` + good + `"}]}`, `give the url with "url", "url_file" or "url_env"`},
		{"two urls", `{"sinks": [{"name": "a", "type": "webhook", "url": "https://h.example.com", "url_env": "X", "secret_file": "` + good + `"}]}`, "give the url one way only"},
		{"plain http", `{"sinks": [{"name": "a", "type": "webhook", "url": "http://h.example.com/hook", "secret_file": "` + good + `"}]}`, "is plain http"},
		{"no secret", `{"sinks": [{"name": "a", "type": "webhook", "url": "https://h.example.com"}]}`, `give the secret with "secret_file" or "secret_env"`},
		{"short secret", `{"sinks": [{"name": "a", "type": "webhook", "url": "https://h.example.com", "secret_file": "` + short + `"}]}`, "is 9 bytes; use at least 32"},
		{"missing secret file", `{"sinks": [{"name": "a", "type": "webhook", "url": "https://h.example.com", "secret_file": "/nonexistent/s"}]}`, `"secret_file": open /nonexistent/s`},
		{"unset env", `{"sinks": [{"name": "a", "type": "webhook", "url": "https://h.example.com", "secret_env": "TEST_NOT_SET_ANYWHERE"}]}`, "TEST_NOT_SET_ANYWHERE is not set"},
		{"slack url inline", `{"sinks": [{"name": "s", "type": "slack", "url": "` + slackURL + `"}]}`, `a Slack webhook URL is a secret`},
		{"slack with a secret", `{"sinks": [{"name": "s", "type": "slack", "url_env": "TEST_SLACK_URL", "secret_file": "` + good + `"}]}`, "a Slack sink takes no secret"},
		{"same name twice", `{"sinks": [{"name": "s", "type": "slack", "url_env": "TEST_SLACK_URL"}, {"name": "s", "type": "slack", "url_env": "TEST_SLACK_URL"}]}`, `sinks[1] (s): the name "s" is used twice`},
		{"retry bounds", `{"retry_min": "10m", "retry_max": "1m", "sinks": [{"name": "s", "type": "slack", "url_env": "TEST_SLACK_URL"}]}`, `"retry_min" 10m0s is longer than "retry_max"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "notify.json")
			os.WriteFile(path, []byte(tc.body), 0o600)
			_, err := Load(path)
			if err == nil {
				t.Fatalf("Load accepted %s", tc.body)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "--notify-config "+path+": ") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q; want it to start with the flag and file and say %q", msg, tc.want)
			}
			for _, s := range []string{testSecret, "SECRETPATHxyz", "too-short"} {
				if strings.Contains(msg, s) {
					t.Errorf("error %q carries a secret", msg)
				}
			}
		})
	}
}

// The guide's shell recipe verifies what Passport signs: openssl over
// "<timestamp>.<body>" with the secret gives the signature's hex.
func TestSignatureVerifiesWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is needed to check the guide's recipe (Debian package openssl)")
	}
	body := []byte(`{"id":"ar-1.1","type":"granted","summary":"it's $HOME and \\ \"quoted\""}`)
	ts := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC).Unix()
	sig := Sign([]byte(testSecret), ts, body)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "body.json"), body, 0o600)
	// The recipe from docs/guides/notifications.md, as a receiver's script
	// would run it: the raw body in a file, the headers in variables.
	script := `expected="v1=$(printf '%s.' "$PASSPORT_TIMESTAMP" | cat - body.json | openssl dgst -sha256 -hmac "$WEBHOOK_SECRET" -r | cut -d' ' -f1)"
[ "$expected" = "$PASSPORT_SIGNATURE" ] && echo verified`
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(openssl)+":/usr/bin:/bin", "WEBHOOK_SECRET="+testSecret,
		"PASSPORT_TIMESTAMP="+itoa(ts), "PASSPORT_SIGNATURE="+sig)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "verified" {
		t.Fatalf("the recipe did not verify %s: %v: %s", sig, err, out)
	}
	if err := Verify([]byte(testSecret), itoa(ts), sig, body, time.Unix(ts, 0).Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("Verify: %v", err)
	}
	for _, bad := range []struct {
		name      string
		secret    string
		ts        int64
		body      string
		now       time.Duration
		wantError string
	}{
		{"wrong secret", "another secret of thirty-two bytes!!", ts, string(body), 0, "does not match"},
		{"changed body", testSecret, ts, string(body) + " ", 0, "does not match"},
		{"replayed later", testSecret, ts, string(body), 10 * time.Minute, "refused as a replay"},
	} {
		err := Verify([]byte(bad.secret), itoa(bad.ts), sig, []byte(bad.body), time.Unix(ts, 0).Add(bad.now), 5*time.Minute)
		if err == nil || !strings.Contains(err.Error(), bad.wantError) {
			t.Errorf("%s: Verify said %v, want %q", bad.name, err, bad.wantError)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

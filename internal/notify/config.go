// Package notify delivers what the ledger announces (ledger.Notice: a
// request needs approval, was granted, ends soon, was revoked...) to the
// webhooks an operator configured: a generic JSON webhook signed with
// HMAC-SHA256, and Slack's incoming webhooks.
//
// Delivery is at least once. The notices are written by the ledger in the
// same write as the change they announce (the outbox); a Deliverer reads
// the outbox, sends each request's notices to each sink in the order they
// were made, and records its progress per sink in the ledger. A failed
// send is retried with exponential backoff and given up on (dead-lettered)
// after a configured time; a replica killed between a send and its record
// sends that notice again, with the same event id, which receivers use to
// drop the repeat.
package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// Defaults for a Config's zero fields.
const (
	DefaultDeadLetterAfter = 24 * time.Hour
	DefaultRetryMin        = 2 * time.Second
	DefaultRetryMax        = 5 * time.Minute
	DefaultPoll            = 5 * time.Second
	DefaultTimeout         = 10 * time.Second
	DefaultLease           = time.Minute
)

// Config is the notifications file `passport serve --notify-config` and
// `passport reconcile --notify-config` read (JSON). Secrets are never in it: a webhook's signing secret and a
// Slack URL (which is itself a secret) come from a file or an environment
// variable it names.
type Config struct {
	Sinks []SinkConfig `json:"sinks"`
	// ExpiryNotice is how long before a window ends its requester hears
	// it ends soon; ledger.DefaultExpiryNotice when empty.
	ExpiryNotice Duration `json:"expiry_notice,omitzero"`
	// DeadLetterAfter is how long a notice is retried before it is given
	// up on; DefaultDeadLetterAfter when empty, at most
	// ledger.MaxDeadLetterAfter.
	DeadLetterAfter Duration `json:"dead_letter_after,omitzero"`
	// RetryMin and RetryMax bound the pause between attempts, which
	// doubles from RetryMin.
	RetryMin Duration `json:"retry_min,omitzero"`
	RetryMax Duration `json:"retry_max,omitzero"`
	// Poll is how often the outbox is read when nothing was announced in
	// this process (another replica's writes, retries).
	Poll Duration `json:"poll,omitzero"`
	// Timeout bounds one send.
	Timeout Duration `json:"timeout,omitzero"`
	// Lease is how long a replica keeps a request's notices to itself
	// while sending them: a replica that dies leaves them to the others
	// after it.
	Lease Duration `json:"lease,omitzero"`

	path string
}

// SinkConfig is one destination.
type SinkConfig struct {
	// Name identifies the sink in metrics, logs and the ledger's delivery
	// record: renaming a sink makes it start from the oldest notice kept.
	Name string `json:"name"`
	// Type is "webhook" (generic JSON, signed) or "slack" (an incoming
	// webhook).
	Type string `json:"type"`
	// The URL, or where to read it: a Slack webhook URL is a secret.
	URL     string `json:"url,omitempty"`
	URLFile string `json:"url_file,omitempty"`
	URLEnv  string `json:"url_env,omitempty"`
	// The webhook's HMAC secret (at least 32 bytes), from a file or an
	// environment variable; required for "webhook".
	SecretFile string `json:"secret_file,omitempty"`
	SecretEnv  string `json:"secret_env,omitempty"`
	// Events limits the kinds sent (ledger.NoticeKinds); all when empty.
	Events []string `json:"events,omitempty"`

	url    *url.URL
	secret []byte
}

// Duration is a time.Duration written as Go writes it ("10m", "90s").
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`a duration is a string such as "10m" or "90s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a positive duration such as \"10m\" or \"90s\"", s)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d Duration) or(def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}

// flag is how errors name the configuration, for an operator to find it.
const flag = "--notify-config"

// Load reads and checks the notifications file at path, reading the
// secrets it names. Every error names the flag, the file, the sink and
// the field at fault; none carries a secret.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s %s: not a notifications file: %w (see docs/guides/notifications.md)", flag, path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s %s: something follows the JSON object; the file holds one", flag, path)
	}
	c.path = path
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) fail(format string, args ...any) error {
	return fmt.Errorf("%s %s: %s", flag, c.path, fmt.Sprintf(format, args...))
}

func (c *Config) check() error {
	if len(c.Sinks) == 0 {
		return c.fail(`"sinks" is empty: name at least one webhook or Slack sink, or leave %s out`, flag)
	}
	if d := time.Duration(c.DeadLetterAfter); d > ledger.MaxDeadLetterAfter {
		return c.fail(`"dead_letter_after" %s is longer than the %s the ledger keeps notices`, d, ledger.MaxDeadLetterAfter)
	}
	if c.RetryMin.or(DefaultRetryMin) > c.RetryMax.or(DefaultRetryMax) {
		return c.fail(`"retry_min" %s is longer than "retry_max" %s`, c.RetryMin.or(DefaultRetryMin), c.RetryMax.or(DefaultRetryMax))
	}
	if d := c.ExpiryNotice.or(ledger.DefaultExpiryNotice); d > 12*time.Hour {
		return c.fail(`"expiry_notice" %s is longer than the longest window (12h)`, d)
	}
	seen := map[string]bool{}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		where := fmt.Sprintf("sinks[%d]", i)
		if s.Name != "" {
			where += " (" + s.Name + ")"
		}
		if err := s.check(); err != nil {
			return c.fail("%s: %v", where, err)
		}
		if seen[s.Name] {
			return c.fail("%s: the name %q is used twice; each sink needs its own", where, s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

func (s *SinkConfig) check() error {
	if s.Name == "" || len(s.Name) > 64 || strings.ContainsFunc(s.Name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) {
		return errors.New(`"name" must be 1 to 64 letters, digits, '-', '_' or '.'`)
	}
	if s.Type != "webhook" && s.Type != "slack" {
		return fmt.Errorf(`"type" %q: give "webhook" (signed JSON) or "slack" (an incoming webhook)`, s.Type)
	}
	for _, e := range s.Events {
		if !slices.Contains(ledger.NoticeKinds(), ledger.NoticeKind(e)) {
			return fmt.Errorf(`"events": %q is not an event; give some of %s`, e, kindList())
		}
	}
	raw, from, err := secret("url", s.URL, s.URLFile, s.URLEnv)
	if err != nil {
		return err
	}
	u, err := url.Parse(string(raw))
	// The URL may be a secret (Slack's is): the errors name where it came
	// from, never what it says.
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("the url from %s is not an http(s) URL", from)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return fmt.Errorf("the url from %s is plain http: notices name people and servers, so only https is allowed (http only to loopback, for tests)", from)
	}
	if u.User != nil {
		return fmt.Errorf("the url from %s carries a user name or password; webhooks are authenticated by their signature", from)
	}
	if s.Type == "slack" && (s.SecretFile != "" || s.SecretEnv != "") {
		return errors.New(`a Slack sink takes no secret: its URL is the secret (give it with "url_file" or "url_env")`)
	}
	if s.Type == "slack" && s.URL != "" {
		return errors.New(`a Slack webhook URL is a secret: give it with "url_file" or "url_env", not "url"`)
	}
	s.url = u
	if s.Type == "webhook" {
		sec, from, err := secret("secret", "", s.SecretFile, s.SecretEnv)
		if err != nil {
			return err
		}
		if len(sec) < 32 {
			return fmt.Errorf("the secret from %s is %d bytes; use at least 32 random bytes (openssl rand -hex 32)", from, len(sec))
		}
		s.secret = sec
	}
	return nil
}

// secret reads a value given in the file or inline (value), from exactly
// one of them, and says where it came from.
func secret(field, value, file, env string) ([]byte, string, error) {
	n := 0
	for _, v := range []string{value, file, env} {
		if v != "" {
			n++
		}
	}
	inline := `"` + field + `"`
	switch {
	case n == 0 && field == "secret":
		return nil, "", errors.New(`give the secret with "secret_file" or "secret_env"`)
	case n == 0:
		return nil, "", fmt.Errorf(`give the %s with %s, "%s_file" or "%s_env"`, field, inline, field, field)
	case n > 1:
		return nil, "", fmt.Errorf(`give the %s one way only, not with two of %s, "%s_file" and "%s_env"`, field, inline, field, field)
	}
	switch {
	case value != "":
		return []byte(value), inline, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, "", fmt.Errorf(`"%s_file": %w`, field, err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, "", fmt.Errorf(`"%s_file" %s is empty`, field, file)
		}
		return b, "the file " + file, nil
	}
	v, ok := os.LookupEnv(env)
	if !ok || v == "" {
		return nil, "", fmt.Errorf(`"%s_env": the environment variable %s is not set`, field, env)
	}
	return []byte(v), "the environment variable " + env, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func kindList() string {
	var s []string
	for _, k := range ledger.NoticeKinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// ExpiryLead is how long before a window ends it is announced.
func (c *Config) ExpiryLead() time.Duration { return c.ExpiryNotice.or(ledger.DefaultExpiryNotice) }

// Announce makes o open a ledger that records, in the same write as each
// change, what c's sinks are to hear (the outbox a Deliverer reads), and
// announces windows ending within c's expiry notice. A nil c, no
// notifications configured, leaves o as it is: nothing is announced.
func (c *Config) Announce(o *ledger.Options) {
	if c == nil {
		return
	}
	o.Announce, o.ExpiryNotice = true, c.ExpiryLead()
}

package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// The generic webhook's headers.
const (
	HeaderEventID   = "Passport-Event-Id"
	HeaderEventType = "Passport-Event-Type"
	HeaderTimestamp = "Passport-Timestamp"
	HeaderSignature = "Passport-Signature"
)

// Sign is the Passport-Signature of body sent at timestamp ts (Unix
// seconds) with secret: "v1=" and the hex HMAC-SHA256 of "<ts>.<body>".
// Signing the timestamp with the body lets a receiver refuse an old
// request replayed.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook request as a receiver should: the signature
// header holds a v1 signature of the timestamp header and the body with
// secret, and the timestamp is within tolerance of now.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not Unix seconds", HeaderTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%s is %s away from now, more than %s: refused as a replay", HeaderTimestamp, d.Round(time.Second), tolerance)
	}
	want := Sign(secret, ts, body)
	// A header may carry several signatures (during a secret rotation).
	for _, sig := range strings.Split(signature, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(sig)), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("%s does not match the body: wrong secret, or the body was changed", HeaderSignature)
}

// sink sends events to one configured destination.
type sink struct {
	cfg    SinkConfig
	client *http.Client
}

func newSink(cfg SinkConfig, timeout time.Duration) *sink {
	return &sink{cfg: cfg, client: &http.Client{
		Timeout: timeout,
		// A webhook that redirects is misconfigured; following it would
		// send the notice (and a Slack URL's secret path) elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// wants reports whether s is sent events of kind. Break-glass goes to
// every sink, whatever its events say: it must be heard everywhere.
func (s *sink) wants(kind string) bool {
	return len(s.cfg.Events) == 0 || slices.Contains(s.cfg.Events, kind) || kind == string(ledger.NoticeBreakGlass)
}

// sendError is a failed send: what to log, and how long the receiver
// asked to be left alone (Retry-After), if it did.
type sendError struct {
	msg        string
	retryAfter time.Duration
}

func (e *sendError) Error() string { return e.msg }

// send delivers e once. Its errors never carry the URL, which may be a
// secret.
func (s *sink) send(ctx context.Context, e Event, now time.Time) error {
	var body []byte
	var err error
	if s.cfg.Type == "slack" {
		body, err = json.Marshal(slackMessage(e))
	} else {
		body, err = json.Marshal(e)
	}
	if err != nil {
		return &sendError{msg: "encoding the event: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.url.String(), bytes.NewReader(body))
	if err != nil {
		return &sendError{msg: "building the request failed"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "passport-notify")
	if s.cfg.Type == "webhook" {
		ts := now.Unix()
		req.Header.Set(HeaderEventID, e.ID)
		req.Header.Set("Idempotency-Key", e.ID)
		req.Header.Set(HeaderEventType, e.Type)
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderSignature, Sign(s.cfg.secret, ts, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the rest names the URL
		}
		return &sendError{msg: err.Error()}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	out := &sendError{msg: fmt.Sprintf("the receiver answered %d %s", resp.StatusCode, printable(string(answer), 120))}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		out.retryAfter = time.Duration(secs) * time.Second
	}
	return out
}

// printable is s on one line, cut to n runes, for a log.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// slackMessage is e as a Slack incoming webhook takes it: text for
// notifications and clients without blocks, and blocks for the channel.
func slackMessage(e Event) map[string]any {
	lead := map[string]string{
		"break-glass": ":rotating_light: <!here> ", "review-overdue": ":warning: <!here> ", "revoked": ":no_entry: ",
		"approval-needed": ":raised_hand: ", "approved": ":white_check_mark: ", "denied": ":x: ", "granted": ":key: ",
		"expiring-soon": ":hourglass: ", "ended": ":lock: ",
	}[e.Type]
	blocks := []map[string]any{
		{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": cut(lead+slackEscape(e.Summary), 3000)}},
	}
	if e.Command != "" {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": cut("```"+slackEscape(e.Command)+"```", 3000)}})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []map[string]any{
		{"type": "mrkdwn", "text": cut(fmt.Sprintf("Passport · request `%s` · event `%s` · %s", slackEscape(e.Request.ID), slackEscape(e.ID), e.Time.Format(time.RFC3339)), 3000)},
	}})
	return map[string]any{"text": cut(lead+slackEscape(e.Summary), 3000), "blocks": blocks}
}

// slackEscape keeps what people wrote (a reason, a comment) from becoming
// Slack markup: a reason saying <!channel> must not page a channel.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func cut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

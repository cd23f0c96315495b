package ssm

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

// epoch is a timestamp as the JSON 1.1 protocol sends it: seconds since the
// Unix epoch, with milliseconds as a fraction.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)), nil
}

func (t *epoch) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp %s is not a number of seconds", b)
	}
	*t = epoch(time.UnixMilli(int64(f * 1000)).UTC())
	return nil
}

func epochPtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

// isoTime formats the string timestamps GetCommandInvocation uses
// (ExecutionStartDateTime, ExecutionEndDateTime); empty before the plugin
// has started.
func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// isoDuration formats ExecutionElapsedTime the way the service does
// (java.time.Duration's form): PT0.091S, PT1M0.5S, PT2H3M4S.
func isoDuration(d time.Duration) string {
	d = d.Truncate(time.Millisecond)
	if d <= 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("PT")
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	if d > 0 {
		s := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
		b.WriteString(s + "S")
	}
	return b.String()
}

// pager issues and checks NextToken values. A token names the operation it
// belongs to and the sort key of the last item returned, and is signed, so
// a forged or foreign token is refused with InvalidNextToken rather than
// silently restarting the listing.
type pager struct{ key []byte }

type pageToken struct {
	Op    string `json:"o"`
	After string `json:"a"`
}

func (p pager) token(op, after string) string {
	body, _ := json.Marshal(pageToken{Op: op, After: after})
	mac := hmac.New(sha256.New, p.key)
	mac.Write(body)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// after returns the sort key a token resumes from ("" for no token).
func (p pager) after(op, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	bad := awsjson.Errorf("InvalidNextToken", "The specified token is not valid.")
	body64, mac64, ok := strings.Cut(token, ".")
	if !ok {
		return "", bad
	}
	body, err1 := base64.RawURLEncoding.DecodeString(body64)
	sum, err2 := base64.RawURLEncoding.DecodeString(mac64)
	if err1 != nil || err2 != nil {
		return "", bad
	}
	mac := hmac.New(sha256.New, p.key)
	mac.Write(body)
	if !hmac.Equal(sum, mac.Sum(nil)) {
		return "", bad
	}
	var t pageToken
	if json.Unmarshal(body, &t) != nil || t.Op != op || t.After == "" {
		return "", bad
	}
	return t.After, nil
}

// page returns up to max items whose keys sort after the token's key, and
// the token for the next page ("" on the last). items must be sorted by
// key, keys unique.
func page[T any](p pager, op, token string, max int, items []T, key func(T) string) ([]T, string, error) {
	after, err := p.after(op, token)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if after != "" {
		for start < len(items) && key(items[start]) <= after {
			start++
		}
	}
	end := min(start+max, len(items))
	next := ""
	if end < len(items) {
		next = p.token(op, key(items[end-1]))
	}
	return items[start:end], next, nil
}

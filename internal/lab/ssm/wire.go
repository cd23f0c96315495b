package ssm

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

// epoch and epochPtr are the protocol's timestamps.
type epoch = awsjson.Epoch

func epochPtr(t time.Time) *epoch { return awsjson.EpochPtr(t) }

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

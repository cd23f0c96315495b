package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

// warnBefore is how long before a request's window ends the connect
// commands say so: time enough to extend it, or to finish.
const warnBefore = 10 * time.Minute

// clockFuncs are the time a connection's warnings run on; tests give
// their own.
type clockFuncs struct {
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
}

var realClock = clockFuncs{now: time.Now, after: time.After}

// warnExpiry tells w, where the person sees it, that req's window ends
// soon: at once when less than warnBefore is left, else when that much is
// left, for as long as ctx lasts (a tunnel held open). Nothing for a
// connection without a request held here.
func warnExpiry(ctx context.Context, w io.Writer, req *connect.Request, c clockFuncs) {
	if req == nil {
		return
	}
	warn := func() {
		left := req.ExpiresAt.Sub(c.now())
		if left <= 0 {
			return
		}
		fmt.Fprintf(w, "passport: access request %s ends in %s (at %s): finish, or extend it with passport request extend %s <duration>\n",
			req.ID, roundLeft(left), req.ExpiresAt.UTC().Format(time.RFC3339), req.ID)
	}
	left := req.ExpiresAt.Sub(c.now())
	if left <= warnBefore {
		warn()
		return
	}
	at := c.after(left - warnBefore)
	go func() {
		select {
		case <-ctx.Done():
		case <-at:
			warn()
		}
	}()
}

// roundLeft writes time left as people read it: 9m, 1h30m, 45s.
func roundLeft(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}

// timeLeft is a request's LEFT column: what remains of its window, or
// why it has none.
func timeLeft(state string, expires, now time.Time) string {
	switch {
	case state == "pending":
		return "waits"
	case state != "" && state != "active" && state != "live":
		return "-"
	case !now.Before(expires):
		return "ended"
	}
	return roundLeft(expires.Sub(now))
}

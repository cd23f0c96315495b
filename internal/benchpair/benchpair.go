// Package benchpair measures a cost the way BENCHMARKS.md reports it: as a
// ratio against a baseline run in the same process, in the same
// iterations. Each iteration times the baseline and the measured run one
// after the other, taking turns at going first, so a busy machine slows
// both alike; the median of the iterations' ratios is what to read, since
// a burst of someone else's work lands on one side of one pair.
//
// It also holds the terminal the recorder benchmarks type on (Echo), so
// that a round trip is measured the same way with and without a tunnel.
package benchpair

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Pairs collects the timings of baseline and measured runs.
type Pairs struct {
	base, measured time.Duration
	ratios         []float64
}

// Add runs both of iteration i, the baseline first in even iterations.
func (p *Pairs) Add(i int, base, measured func() time.Duration) {
	var tb, tm time.Duration
	if i%2 == 0 {
		tb = base()
		tm = measured()
	} else {
		tm = measured()
		tb = base()
	}
	p.base += tb
	p.measured += tm
	p.ratios = append(p.ratios, float64(tm)/float64(tb))
}

// Median is the median of the iterations' ratios: with an even count, the
// mean of the middle two (the upper one alone would report the worse of
// two iterations as the median of two).
func (p *Pairs) Median() float64 {
	r := slices.Sorted(slices.Values(p.ratios))
	n := len(r)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return r[n/2]
	default:
		return (r[n/2-1] + r[n/2]) / 2
	}
}

// Report reports the mean time of each side in unit (named name, as in
// "plain-µs/op") and the median ratio as "recorded/plain".
func (p *Pairs) Report(b *testing.B, unit time.Duration, name string) {
	n := float64(len(p.ratios))
	if n == 0 {
		return
	}
	b.ReportMetric(float64(p.base)/float64(unit)/n, "plain-"+name+"/op")
	b.ReportMetric(float64(p.measured)/float64(unit)/n, "recorded-"+name+"/op")
	b.ReportMetric(p.Median(), "recorded/plain")
}

// Echo is a terminal running cat with echo off: each line typed comes back
// once, from cat, when Enter is typed. One keystroke's trip to the program
// and back.
type Echo struct {
	s   *ssh.Session
	in  io.Writer
	out io.Reader
	buf []byte
}

// OpenEcho starts cat on a terminal of a new session of c.
func OpenEcho(b *testing.B, c *ssh.Client) *Echo {
	b.Helper()
	s, err := c.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		b.Fatal(err)
	}
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	if err := s.Start("stty -echo; echo ready; exec cat"); err != nil {
		b.Fatal(err)
	}
	e := &Echo{s: s, in: in, out: out, buf: make([]byte, 256)}
	e.expect(b, "ready\r\n")
	return e
}

// RoundTrips times b.N round trips on each terminal, in pairs, and
// reports them in microseconds.
func RoundTrips(b *testing.B, base, measured *Echo) {
	var p Pairs
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		line := fmt.Sprintf("k%d", i)
		p.Add(i, func() time.Duration { return base.Trip(b, line) }, func() time.Duration { return measured.Trip(b, line) })
	}
	p.Report(b, time.Microsecond, "µs")
}

// Trip types line and Enter and returns how long it took to come back.
func (e *Echo) Trip(b *testing.B, line string) time.Duration {
	start := time.Now()
	if _, err := io.WriteString(e.in, line+"\r"); err != nil {
		b.Fatalf("typing on the terminal: %v", err)
	}
	e.expect(b, line+"\r\n")
	return time.Since(start)
}

func (e *Echo) expect(b *testing.B, want string) {
	got := make([]byte, 0, len(want))
	for !strings.HasSuffix(string(got), want) {
		n, err := e.out.Read(e.buf)
		if err != nil {
			b.Fatalf("reading the terminal: %v (read %q, want %q)", err, got, want)
		}
		got = append(got, e.buf[:n]...)
	}
}

// Close ends the session.
func (e *Echo) Close() { e.s.Close() }

// Print runs a command that prints n bytes on a terminal of a new session
// of c, reads all of it, and returns how long that took from the
// command's start to its end.
func Print(b *testing.B, c *ssh.Client, n int64) time.Duration {
	b.Helper()
	s, err := c.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		b.Fatal(err)
	}
	var shown Count
	s.Stdout = &shown
	start := time.Now()
	if err := s.Run(fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", n)); err != nil {
		b.Fatalf("printing %d bytes as %s: %v", n, c.User(), err)
	}
	took := time.Since(start)
	if int64(shown) < n {
		b.Fatalf("%s's terminal showed %d bytes, want %d", c.User(), shown, n)
	}
	return took
}

// Count is a writer that counts what it is given: a terminal's output,
// kept nowhere.
type Count int64

func (c *Count) Write(p []byte) (int, error) {
	*c += Count(len(p))
	return len(p), nil
}

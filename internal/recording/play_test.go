package recording

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeTimer stands in for time.After: it records each wait asked for and
// fires at once, or waits for the test when hold is set.
type fakeTimer struct {
	waits []time.Duration
	asked chan time.Duration
	fire  chan time.Time
}

func (f *fakeTimer) after(d time.Duration) <-chan time.Time {
	f.waits = append(f.waits, d)
	if f.asked != nil {
		f.asked <- d
		return f.fire
	}
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

// writes is a writer that hands each write to the test.
type writes chan string

func (w writes) Write(p []byte) (int, error) { w <- string(p); return len(p), nil }

func sampleEvents() *eventList {
	return &eventList{evs: []Event{
		{At: 500 * time.Millisecond, Kind: TTYOut, Data: []byte("$ ")},
		{At: time.Second, Kind: TTYIn, Data: []byte("l")},
		{At: 1500 * time.Millisecond, Kind: TTYOut, Data: []byte("ls\r\n")},
		{At: 61500 * time.Millisecond, Kind: TTYOut, Data: []byte("after an idle minute")},
		{At: 62 * time.Second, Kind: Resize, Rows: 1, Cols: 1},
		{At: 63 * time.Second, Kind: TTYOut, Data: []byte("end")},
	}}
}

// Output comes at its original times: each pause is the gap since the
// last output, idle pauses cut to the limit, all divided by the speed.
// Input is not written: the terminal's echo is output.
func TestPlayTiming(t *testing.T) {
	for _, c := range []struct {
		name  string
		p     Player
		waits []time.Duration
	}{
		{"original", Player{}, []time.Duration{500 * time.Millisecond, time.Second, time.Minute, 1500 * time.Millisecond}},
		{"twice as fast", Player{Speed: 2}, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, 30 * time.Second, 750 * time.Millisecond}},
		{"idle limit", Player{IdleLimit: 2 * time.Second}, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 1500 * time.Millisecond}},
		{"both", Player{Speed: 4, IdleLimit: 2 * time.Second}, []time.Duration{125 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, 375 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ft := &fakeTimer{}
			c.p.After = ft.after
			var out strings.Builder
			if err := c.p.Play(context.Background(), &out, Info{Terminal: true}, sampleEvents()); err != nil {
				t.Fatal(err)
			}
			if out.String() != "$ ls\r\nafter an idle minuteend" {
				t.Errorf("played %q", out.String())
			}
			if len(ft.waits) != len(c.waits) {
				t.Fatalf("waits %v, want %v", ft.waits, c.waits)
			}
			for i := range c.waits {
				if ft.waits[i] != c.waits[i] {
					t.Errorf("waits %v, want %v", ft.waits, c.waits)
					break
				}
			}
		})
	}
}

// Space pauses: nothing more is shown until space again; "." shows one
// more output and stays paused; q stops.
func TestPlayPause(t *testing.T) {
	ft := &fakeTimer{asked: make(chan time.Duration), fire: make(chan time.Time)}
	keys := make(chan byte)
	out := make(writes, 10)
	p := &Player{Keys: keys, After: ft.after}
	done := make(chan error, 1)
	go func() { done <- p.Play(context.Background(), out, Info{Terminal: true}, sampleEvents()) }()

	<-ft.asked // waiting before "$ "
	keys <- ' '
	// Paused: the timer firing now shows nothing; "." shows the next
	// output and stays paused.
	keys <- '.'
	if got := <-out; got != "$ " {
		t.Fatalf("stepped to %q", got)
	}
	keys <- '.'
	if got := <-out; got != "ls\r\n" {
		t.Fatalf("stepped to %q", got)
	}
	select {
	case d := <-ft.asked:
		t.Fatalf("a paused player waited %v for the next output instead of for a key", d)
	case got := <-out:
		t.Fatalf("a paused player showed %q", got)
	case keys <- ' ': // resumed: the waiting output comes at once
	}
	if got := <-out; got != "after an idle minute" {
		t.Fatalf("resumed with %q", got)
	}
	<-ft.asked // waiting before "end"
	keys <- 'q'
	if err := <-done; !errors.Is(err, ErrStopped) {
		t.Fatalf("q ended the playback with %v", err)
	}
	if len(out) != 0 {
		t.Errorf("shown after q: %q", <-out)
	}
}

// A cancelled context stops playback.
func TestPlayCancel(t *testing.T) {
	ft := &fakeTimer{asked: make(chan time.Duration, 1), fire: make(chan time.Time)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (&Player{After: ft.after}).Play(ctx, &strings.Builder{}, Info{Terminal: true}, sampleEvents())
	}()
	<-ft.asked
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Play = %v", err)
	}
}

// Without a terminal, output shows with CR LF line ends.
func TestPlayWithoutTerminal(t *testing.T) {
	var out strings.Builder
	evs := &eventList{evs: []Event{{Kind: StdOut, Data: []byte("a\nb\n")}, {Kind: StdErr, Data: []byte("c\n")}}}
	if err := (&Player{}).Play(context.Background(), &out, Info{}, evs); err != nil {
		t.Fatal(err)
	}
	if out.String() != "a\r\nb\r\nc\r\n" {
		t.Errorf("played %q", out.String())
	}
}

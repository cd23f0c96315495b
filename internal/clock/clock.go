// Package clock holds the clocks tests inject where Passport reads the
// time (every package takes a func() time.Time): one that stands still
// until the test moves it, and one that runs with real time from an offset
// the test moves, for parts that must also satisfy a real peer such as
// sshd or a SigV4 signature check.
package clock

import (
	"sync"
	"time"
)

// Fake is a clock that moves only when told to. Safe for concurrent use.
type Fake struct {
	mu sync.Mutex
	t  time.Time
}

// NewFake returns a Fake reading start.
func NewFake(start time.Time) *Fake { return &Fake{t: start} }

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the fake time by d, backwards when d is negative.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Offset is real time plus an offset the test moves: "the window has
// ended" needs no sleep, while certificates and tokens stay valid for
// peers that read the real time. The zero value is real time. Safe for
// concurrent use.
type Offset struct {
	mu  sync.Mutex
	off time.Duration
}

// Now returns real time plus the offset.
func (c *Offset) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Advance moves the offset by d, backwards when d is negative.
func (c *Offset) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

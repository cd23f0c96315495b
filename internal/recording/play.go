package recording

import (
	"context"
	"errors"
	"io"
	"time"
)

// Player plays a session's output on a terminal with its original timing.
type Player struct {
	// Speed multiplies the pace: 2 plays twice as fast. 1 when zero.
	Speed float64
	// IdleLimit shortens every pause longer than it to it, so a session
	// that sat idle for an hour plays in seconds. Zero keeps every pause.
	IdleLimit time.Duration
	// Keys are the viewer's key presses: space pauses and resumes, "."
	// shows the next output while paused, q or Ctrl-C stops. Nil: no
	// keyboard.
	Keys <-chan byte
	// After is time.After unless a test gives its own.
	After func(time.Duration) <-chan time.Time
}

// ErrStopped is returned when the viewer stopped the playback.
var ErrStopped = errors.New("playback stopped")

// Play writes each output event of events to w when its time comes:
// pauses shortened to IdleLimit, then divided by Speed. Input is not
// written (a terminal echoes what is typed, and that echo is output) and
// window changes cannot be made to the viewer's terminal. Without a
// terminal in the recording (info.Terminal false), bare line feeds are
// shown as CR LF.
func (p *Player) Play(ctx context.Context, w io.Writer, info Info, events Events) error {
	speed := p.Speed
	if speed <= 0 {
		speed = 1
	}
	after := p.After
	if after == nil {
		after = time.After
	}
	var last time.Duration
	paused := false
	for {
		ev, err := events.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !ev.Kind.Output() {
			continue
		}
		gap := ev.At - last
		last = ev.At
		if p.IdleLimit > 0 && gap > p.IdleLimit {
			gap = p.IdleLimit
		}
		if !paused && gap > 0 {
			if paused, err = p.wait(ctx, after(time.Duration(float64(gap)/speed))); err != nil {
				return err
			}
		}
		if paused {
			// Resuming shows the waiting output at once: the pause took
			// longer than the gap it interrupted.
			if paused, err = p.whilePaused(ctx); err != nil {
				return err
			}
		}
		data := ev.Data
		if !info.Terminal {
			data = crlf(data)
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
}

// wait waits for timer, a pause or a stop.
func (p *Player) wait(ctx context.Context, timer <-chan time.Time) (paused bool, err error) {
	for {
		select {
		case <-timer:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		case k := <-p.Keys:
			switch k {
			case ' ':
				return true, nil
			case 'q', 'Q', 3:
				return false, ErrStopped
			}
		}
	}
}

// whilePaused waits for a resume (false) or a step (true: stay paused
// after this event).
func (p *Player) whilePaused(ctx context.Context) (stillPaused bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case k, ok := <-p.Keys:
			if !ok {
				// The keyboard went away: nobody can resume, so go on.
				return false, nil
			}
			switch k {
			case ' ':
				return false, nil
			case '.':
				return true, nil
			case 'q', 'Q', 3:
				return true, ErrStopped
			}
		}
	}
}

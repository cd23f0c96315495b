package session

import (
	"math/rand/v2"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultWebsocketLifetime is how long the lab's message gateway keeps a
// data-channel websocket open: AWS closes Session Manager's websockets
// after about an hour, and clients must resume the session on a new one.
const DefaultWebsocketLifetime = 60 * time.Minute

// gatewayPoll is how often the gateway looks for websockets to close. It
// reads the service's clock, so a test that moves an injected clock past a
// lifetime sees the websocket close within one poll.
const gatewayPoll = 20 * time.Millisecond

// link is the websocket a session's client is attached by, and when the
// gateway closes it.
type link struct {
	ws      *websocket.Conn
	closeAt time.Time
}

// SetWebsocketLifetime sets how long websockets opened from now on stay
// open; DefaultWebsocketLifetime when d is zero.
func (s *Service) SetWebsocketLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		d = DefaultWebsocketLifetime
	}
	s.lifetime = d
}

// SetWebsocketFaults makes the gateway drop websockets at random, after an
// exponentially distributed time with the given mean, on top of their
// lifetime (fault injection); zero turns it off.
func (s *Service) SetWebsocketFaults(mean time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropMean = max(mean, 0)
}

// track records ws as sess's link and says when it goes; s.mu is held.
func (s *Service) track(sess *session, ws *websocket.Conn) {
	now := s.cfg.Now()
	closeAt := now.Add(s.lifetime)
	if s.dropMean > 0 {
		if at := now.Add(time.Duration(rand.ExpFloat64() * float64(s.dropMean))); at.Before(closeAt) {
			closeAt = at
		}
	}
	sess.link = &link{ws: ws, closeAt: closeAt}
}

// recycle closes websockets whose time is up, as AWS's gateway does: with
// a close frame (1001, going away) and then the connection. The session
// stays; its client resumes it on a new websocket.
func (s *Service) recycle() {
	tick := time.NewTicker(gatewayPoll)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		var due []*websocket.Conn
		s.mu.Lock()
		now := s.cfg.Now()
		for _, sess := range s.sessions {
			if l := sess.link; l != nil && !now.Before(l.closeAt) {
				due = append(due, l.ws)
				sess.link = nil
			}
		}
		s.mu.Unlock()
		for _, ws := range due {
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "the connection reached its lifetime"), time.Now().Add(time.Second))
			ws.Close()
		}
	}
}

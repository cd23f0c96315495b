package ssmsession

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// muxWindow is the smux keep-alive timeout these tests give the agent, so
// that "idle past the keep-alive window" takes a fraction of a second.
const muxWindow = 300 * time.Millisecond

// pluginFromSource is the version a session-manager-plugin built from its
// repository reports: old by number, though its code turns smux
// keep-alives off as a current plugin does.
const pluginFromSource = "1.2.0.0"

// TestIdlePassportClientOutlivesTheKeepAliveWindow: Passport's client and
// the agent both turn smux keep-alives off, from the versions each
// reported, so an idle multiplexed session stays up and carries the next
// connection.
func TestIdlePassportClientOutlivesTheKeepAliveWindow(t *testing.T) {
	port := listenTCP(t, digestServer)
	ta := newTestAgent(t, portForwarding(port), loopDial(port))
	ta.cfg.MuxKeepAlive = muxWindow
	s := dial(t, ta, nil)
	if err := roundTrip(s, 1000); err != nil {
		t.Fatal(err)
	}
	// Idle for five keep-alive windows: this wait is the scenario, not a
	// synchronisation.
	select {
	case <-s.Done():
		t.Fatalf("the idle session ended: %v", s.Err())
	case <-time.After(5 * muxWindow):
	}
	if err := roundTrip(s, 1000); err != nil {
		t.Fatalf("a connection after the idle spell: %v", err)
	}
}

// TestIdleEndIsAnnounced: a client reporting an old version (a plugin
// built from source) gets an agent whose smux keeps keep-alives on while
// its own are off, as on AWS. When the agent's keep-alive runs out, the
// session ends, and the client is told with ChannelClosed before the
// websocket closes, instead of being left with a session that is gone.
func TestIdleEndIsAnnounced(t *testing.T) {
	port := listenTCP(t, digestServer)
	ta := newTestAgent(t, portForwarding(port), loopDial(port))
	ta.cfg.MuxKeepAlive = muxWindow
	s := dial(t, ta, &Dialer{ClientVersion: pluginFromSource})
	if err := roundTrip(s, 1000); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the agent's keep-alive never ran out")
	}
	var closed *ClosedError
	if !errors.As(s.Err(), &closed) || !strings.Contains(closed.Output, "keep-alive") || closed.SessionID != "s-1" {
		t.Fatalf("the session ended with %v; want the agent's ChannelClosed for s-1 saying its keep-alive ran out", s.Err())
	}
	select {
	case err := <-ta.runErr:
		if err == nil || !strings.Contains(err.Error(), "keep-alive") {
			t.Fatalf("the agent ended with %v, want the keep-alive timeout", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the agent did not end")
	}
}

// TestClientCloseIsAnnounced: a client that ends the session tells the
// agent, which ends at once instead of waiting Reattach for it to come
// back.
func TestClientCloseIsAnnounced(t *testing.T) {
	port := listenTCP(t, echo)
	ta := newTestAgent(t, portForwarding(port), loopDial(port))
	ta.cfg.Reattach = time.Hour
	s := dial(t, ta, nil)
	s.Close()
	select {
	case err := <-ta.runErr:
		if err != nil {
			t.Fatalf("the agent ended with %v after the client closed", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the agent was not told the client ended the session")
	}
}

// TestAgentEndOfBasicSessionIsAnnounced: when the port's connection of an
// SSH session ends, the agent ends the session and says so.
func TestAgentEndOfBasicSessionIsAnnounced(t *testing.T) {
	port := listenTCP(t, func(c net.Conn) { c.Write([]byte("bye")) })
	ta := newTestAgent(t, sshSession(port), loopDial(port))
	s := dial(t, ta, nil)
	select {
	case <-s.Done():
	case <-time.After(time.Minute):
		t.Fatal("the session did not end when the port closed")
	}
	var closed *ClosedError
	if !errors.As(s.Err(), &closed) {
		t.Fatalf("the session ended with %v, want the agent's ChannelClosed", s.Err())
	}
}

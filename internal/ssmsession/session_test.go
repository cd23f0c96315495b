package ssmsession

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testAgent serves sessions the way the service and agent do together:
// one Agent per session id, a token per websocket, resumable.
type testAgent struct {
	t      testing.TB
	srv    *httptest.Server
	cfg    AgentConfig
	mu     sync.Mutex
	agent  *Agent
	tokens map[string]bool
	runErr chan error
	pings  atomic.Int32
	// cut, when set, wraps each accepted link (to drop or alter frames).
	wrap func(link) link
}

func newTestAgent(t testing.TB, st SessionType, dial func(ctx context.Context, host string, port int) (net.Conn, error)) *testAgent {
	t.Helper()
	ta := &testAgent{t: t, tokens: map[string]bool{"token-1": true}, runErr: make(chan error, 1)}
	ta.cfg = AgentConfig{SessionID: "s-1", TargetID: "i-0123456789abcdef0", Session: st, Dial: dial, HandshakeTimeout: 5 * time.Second}
	up := websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	// The lab serves data channels on batching connections; so does this.
	ta.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		ws.SetReadDeadline(time.Now().Add(time.Minute))
		_, b, err := ws.ReadMessage()
		var open openDataChannel
		if err != nil || json.Unmarshal(b, &open) != nil {
			ws.Close()
			return
		}
		ws.SetReadDeadline(time.Time{})
		ta.mu.Lock()
		ok := ta.tokens[open.TokenValue]
		delete(ta.tokens, open.TokenValue)
		first := ta.agent == nil
		if ok && first {
			ta.agent = NewAgent(ta.cfg)
			go func(a *Agent) { ta.runErr <- a.Run(context.Background()) }(ta.agent)
		}
		a := ta.agent
		wrap := ta.wrap
		ta.mu.Unlock()
		if !ok {
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "invalid token"), time.Now().Add(time.Second))
			ws.Close()
			return
		}
		ws.SetPingHandler(func(data string) error {
			ta.pings.Add(1)
			return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		if wrap == nil {
			a.Attach(ws) // as the lab attaches: its read limit too
			return
		}
		ws.SetReadLimit(HeaderSize + MaxPayload)
		a.attach(wrap(ws))
	}))
	ta.srv.Listener = NewBatchListener(ta.srv.Listener)
	ta.srv.Start()
	t.Cleanup(func() {
		ta.mu.Lock()
		if ta.agent != nil {
			ta.agent.Terminate("")
		}
		ta.mu.Unlock()
		ta.srv.Close()
	})
	return ta
}

func (ta *testAgent) url() string {
	return "ws" + strings.TrimPrefix(ta.srv.URL, "http") + "/v1/data-channel/s-1"
}

// newToken issues another token, as ResumeSession does.
func (ta *testAgent) newToken() string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	tok := "token-" + strconv.Itoa(len(ta.tokens)+100) + NewMessageID().String()
	ta.tokens[tok] = true
	return tok
}

// echoServer is a TCP server that echoes, or with sink set, hashes what it
// receives and answers with the hex digest when the client half-closes.
func listenTCP(t testing.TB, serve func(net.Conn)) (port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func echo(c net.Conn) { io.Copy(c, c) }

// digestServer reads a big-endian 8-byte length and that many bytes, and
// answers their SHA-256. (smux streams cannot half-close, so the length
// marks the end.)
func digestServer(c net.Conn) {
	var n [8]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return
	}
	h := sha256.New()
	if _, err := io.CopyN(h, c, int64(binary.BigEndian.Uint64(n[:]))); err != nil {
		return
	}
	c.Write(h.Sum(nil))
}

func loopDial(port int) func(ctx context.Context, host string, p int) (net.Conn, error) {
	return func(ctx context.Context, host string, p int) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
}

func portForwarding(port int) SessionType {
	return SessionType{SessionType: "Port", Properties: PortProperties{PortNumber: strconv.Itoa(port), Type: LocalPortForwarding}}
}

func sshSession(port int) SessionType {
	return SessionType{SessionType: "Port", Properties: PortProperties{PortNumber: strconv.Itoa(port)}}
}

func dial(t testing.TB, ta *testAgent, d *Dialer) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d == nil {
		d = &Dialer{}
	}
	s, err := d.Dial(ctx, ta.url(), "token-1")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStreamSessionEcho(t *testing.T) {
	port := listenTCP(t, echo)
	ta := newTestAgent(t, sshSession(port), loopDial(port))
	s := dial(t, ta, nil)
	if s.Multiplexed() {
		t.Fatal("an SSH session must not be multiplexed")
	}
	rw, err := s.Stream()
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("hello over the data channel "), 5000)
	go rw.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(rw, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs from what was sent")
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ta.runErr:
		if err != nil {
			t.Fatalf("agent ended with %v after TerminateSession", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("agent did not end after TerminateSession")
	}
}

func TestMuxSessionConcurrentConnections(t *testing.T) {
	port := listenTCP(t, digestServer)
	ta := newTestAgent(t, portForwarding(port), loopDial(port))
	s := dial(t, ta, nil)
	if !s.Multiplexed() {
		t.Fatal("a port-forwarding session to a current agent must be multiplexed")
	}
	const conns = 50
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- roundTrip(s, 256<<10+i*1000)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// roundTrip sends n random bytes on a new connection and checks the digest
// the server answers.
func roundTrip(s *Session, n int) error {
	c, err := s.Open()
	if err != nil {
		return err
	}
	defer c.Close()
	data := make([]byte, n)
	rand.Read(data)
	want := sha256.Sum256(data)
	if _, err := c.Write(binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
		return err
	}
	if _, err := c.Write(data); err != nil {
		return err
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, want[:]) {
		return errors.New("digest mismatch")
	}
	return nil
}

// TestPortUnreachable: the agent cannot reach the port; the connection
// closes at once, the client counts a ConnectToPortError, and the session
// still serves the next connection.
func TestPortUnreachable(t *testing.T) {
	port := listenTCP(t, digestServer)
	var calls atomic.Int32
	ta := newTestAgent(t, portForwarding(port), func(ctx context.Context, host string, p int) (net.Conn, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("connection refused")
		}
		return loopDial(port)(ctx, host, p)
	})
	s := dial(t, ta, nil)
	c, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a connection the agent could not make", n)
	}
	c.Close()
	deadline := time.Now().Add(time.Minute)
	for s.PortErrors() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.PortErrors(); got != 1 {
		t.Fatalf("PortErrors = %d, want 1", got)
	}
	if err := roundTrip(s, 1000); err != nil {
		t.Fatalf("the next connection: %v", err)
	}
}

// TestKeepAlive: an idle session pings the other end.
func TestKeepAlive(t *testing.T) {
	port := listenTCP(t, echo)
	ta := newTestAgent(t, sshSession(port), loopDial(port))
	dial(t, ta, &Dialer{KeepAlive: 20 * time.Millisecond})
	deadline := time.Now().Add(time.Minute)
	for ta.pings.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := ta.pings.Load(); got < 3 {
		t.Fatalf("%d pings in a minute with a 20 ms keep-alive", got)
	}
}

// TestAgentGivesUpWithoutClient: after its websocket drops, the agent
// waits Reattach for a resumed client, then ends the session.
func TestAgentGivesUpWithoutClient(t *testing.T) {
	port := listenTCP(t, echo)
	ta := newTestAgent(t, portForwarding(port), loopDial(port))
	ta.cfg.Reattach = 50 * time.Millisecond
	s := dial(t, ta, nil)
	s.ch.current().Close()
	select {
	case err := <-ta.runErr:
		if err == nil || !strings.Contains(err.Error(), "no client came back") {
			t.Fatalf("agent ended with %v, want it to say no client came back", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the agent kept a session without a client")
	}
	select {
	case <-s.Done():
	case <-time.After(time.Minute):
		t.Fatal("the client without Resume did not end when its websocket dropped")
	}
}

// TestTerminateEndsMultiplexedSession: the TerminateSession flag ends the
// agent's side of a port-forwarding session and its connections: the one
// the client has open, and the agent's own to the port.
func TestTerminateEndsMultiplexedSession(t *testing.T) {
	ended := make(chan error, 1)
	port := listenTCP(t, func(c net.Conn) {
		_, err := io.Copy(c, c)
		ended <- err
	})
	ta := newTestAgent(t, portForwarding(port), loopDial(port))
	s := dial(t, ta, nil)
	c, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := s.Terminate(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ta.runErr:
		if err != nil {
			t.Fatalf("agent ended with %v after TerminateSession", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("agent did not end after TerminateSession")
	}
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("the agent's connection to the port ended with %v, want a close", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the agent's connection to the port is still open after TerminateSession")
	}
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a connection of a terminated session", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the client's open connection did not end with its terminated session")
	}
	if _, err := s.Open(); err == nil {
		t.Fatal("Open succeeded on a terminated session")
	}
}

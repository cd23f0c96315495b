package ssmsession

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// sendAndCheck writes n pseudo-random bytes on c behind a length prefix and
// checks the digest the server answers; progress counts bytes written.
func sendAndCheck(t *testing.T, c net.Conn, n int64, progress *atomic.Int64) {
	t.Helper()
	if _, err := c.Write(binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	block := make([]byte, 256<<10)
	rand.Read(block)
	for sent := int64(0); sent < n; {
		k := min(int64(len(block)), n-sent)
		block[0]++ // vary every block, so a dropped or repeated block changes the digest
		h.Write(block[:k])
		if _, err := c.Write(block[:k]); err != nil {
			t.Fatalf("after %d bytes: %v", sent, err)
		}
		sent += k
		if progress != nil {
			progress.Store(sent)
		}
	}
	got := make([]byte, sha256.Size)
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the digest: %v", err)
	}
	if !bytes.Equal(got, h.Sum(nil)) {
		t.Fatal("the data that arrived differs from what was sent")
	}
}

func TestOneGiBIntact(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 1 GiB; skipped with -short")
	}
	port := listenTCP(t, digestServer)
	ta := newTestAgent(t, portForwarding(port), loopDial(port))
	s := dial(t, ta, nil)
	c, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	sendAndCheck(t, c, 1<<30, nil)
	t.Logf("1 GiB in %v (%.0f MB/s)", time.Since(start), float64(1<<30)/time.Since(start).Seconds()/1e6)
}

// TestResumeMidTransfer cuts the websocket under a transfer: the client
// resumes on a new one with a new token and nothing is lost or repeated.
func TestResumeMidTransfer(t *testing.T) {
	port := listenTCP(t, digestServer)
	ta := newTestAgent(t, portForwarding(port), loopDial(port))
	var mu sync.Mutex
	var conns []net.Conn
	d := &Dialer{
		Resume: func(ctx context.Context) (string, string, error) { return ta.url(), ta.newToken(), nil },
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, network, addr)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			return c, err
		},
	}
	s := dial(t, ta, d)
	c, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var progress atomic.Int64
	go func() {
		for _, at := range []int64{8 << 20, 24 << 20} {
			for progress.Load() < at {
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			conns[len(conns)-1].Close()
			mu.Unlock()
		}
	}()
	sendAndCheck(t, c, 48<<20, &progress)
	if got := s.Resumes(); got != 2 {
		t.Fatalf("the session resumed %d times, want 2 (one per cut)", got)
	}
}

// TestTamperedFramesAreRefused alters frames between client and agent: a
// flipped payload bit, a replayed sequence number with other data, and a
// sequence number far beyond the window. None of it may reach the port;
// the honest stream still arrives intact.
func TestTamperedFramesAreRefused(t *testing.T) {
	port := listenTCP(t, digestServer)
	ta := newTestAgent(t, portForwarding(port), loopDial(port))
	var forged atomic.Int32
	ta.wrap = func(l link) link {
		return &forgeLink{link: l, forge: func(n int, b []byte) [][]byte {
			m, err := Decode(b)
			if err != nil || m.Type != InputStreamData || m.PayloadType != Output || m.Sequence < 20 {
				return [][]byte{b}
			}
			switch {
			case n%97 == 0: // payload bit flipped in transit: digest fails
				bad := append([]byte(nil), b...)
				bad[len(bad)-1] ^= 0x40
				forged.Add(1)
				return [][]byte{bad}
			case n%89 == 0: // replay of an earlier sequence number with new data
				fake := m
				fake.Sequence = m.Sequence - 5
				fake.Payload = bytes.Repeat([]byte("X"), len(m.Payload))
				f, _ := fake.Encode(nil)
				forged.Add(1)
				return [][]byte{f, b}
			case n%83 == 0: // far ahead of anything the sender may have in flight
				fake := m
				fake.Sequence = m.Sequence + 1_000_000
				f, _ := fake.Encode(nil)
				forged.Add(1)
				return [][]byte{f, b}
			}
			return [][]byte{b}
		}}
	}
	s := dial(t, ta, nil)
	c, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendAndCheck(t, c, 16<<20, nil)
	if forged.Load() < 3 {
		t.Fatalf("only %d frames were tampered with; the test did not exercise refusal", forged.Load())
	}
}

// forgeLink alters or adds frames on their way in.
type forgeLink struct {
	link
	n     int
	extra [][]byte
	forge func(n int, frame []byte) [][]byte
}

func (l *forgeLink) ReadMessage() (int, []byte, error) {
	if len(l.extra) > 0 {
		f := l.extra[0]
		l.extra = l.extra[1:]
		return websocket.BinaryMessage, f, nil
	}
	typ, b, err := l.link.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage {
		return typ, b, err
	}
	l.n++
	out := l.forge(l.n, b)
	l.extra = out[1:]
	return typ, out[0], nil
}

// TestAgentSurvivesHostileClient: malformed frames, an oversized message
// and garbage before the token leave the agent serving other sessions.
func TestAgentSurvivesHostileClient(t *testing.T) {
	port := listenTCP(t, echo)
	ta := newTestAgent(t, sshSession(port), loopDial(port))
	url := ta.url()
	raw := func(t *testing.T, token string) *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		open, _ := json.Marshal(openDataChannel{TokenValue: token, MessageSchemaVersion: "1.0"})
		ws.WriteMessage(websocket.TextMessage, open)
		return ws
	}
	ws := raw(t, "token-1")
	good := validFrame(t, Message{Type: InputStreamData, ID: NewMessageID(), PayloadType: Output, Payload: []byte("x")})
	for _, f := range [][]byte{
		{}, []byte("not a frame"), good[:50], append(good[:len(good)-1:len(good)-1], 'y'),
		bytes.Repeat([]byte{0xff}, HeaderSize+10),
	} {
		ws.WriteMessage(websocket.BinaryMessage, f)
	}
	ws.WriteMessage(websocket.BinaryMessage, make([]byte, HeaderSize+MaxPayload+1))
	// The agent answers the frames above as it likes, but the oversized
	// message must end this websocket: reading on must meet its close,
	// not the deadline, which only turns a hang into a failure.
	ws.SetReadDeadline(time.Now().Add(time.Minute))
	var err error
	for err == nil {
		_, _, err = ws.ReadMessage()
	}
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("after an oversized message: %v; want the agent to close with 1009 (message too big)", err)
	}

	// A wrong token is refused with a close frame naming the token.
	bad := raw(t, "token-wrong")
	bad.SetReadDeadline(time.Now().Add(time.Minute))
	_, _, err = bad.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, "token") {
		t.Fatalf("wrong token: got %v, want a policy-violation close naming the token", err)
	}

	// The agent is still there: the handshake it sent the hostile client
	// was never acknowledged, so it is sent again to a client that resumes
	// the session with a fresh token, and the session works.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := (&Dialer{}).Dial(ctx, url, ta.newToken())
	if err != nil {
		t.Fatalf("resuming after the hostile client: %v", err)
	}
	defer s.Close()
	rw, err := s.Stream()
	if err != nil {
		t.Fatal(err)
	}
	rw.Write([]byte("still alive"))
	got := make([]byte, len("still alive"))
	if _, err := io.ReadFull(rw, got); err != nil || string(got) != "still alive" {
		t.Fatalf("echo after the hostile client: %q, %v", got, err)
	}
}

// reorderLink delivers every seventh frame after the one that follows it.
type reorderLink struct {
	link
	n       int
	swapped atomic.Int32
	held    []byte
	next    []byte
}

func (l *reorderLink) ReadMessage() (int, []byte, error) {
	if l.next != nil {
		f := l.next
		l.next = nil
		return websocket.BinaryMessage, f, nil
	}
	for {
		typ, b, err := l.link.ReadMessage()
		if err != nil || typ != websocket.BinaryMessage {
			return typ, b, err
		}
		l.n++
		if l.held == nil && l.n%7 == 0 {
			l.held = b
			continue
		}
		if l.held != nil {
			l.next, l.held = l.held, nil
			l.swapped.Add(1)
		}
		return typ, b, nil
	}
}

// TestOutOfOrderFramesAreDelivered: frames that arrive out of order are
// held and delivered in sequence.
func TestOutOfOrderFramesAreDelivered(t *testing.T) {
	port := listenTCP(t, digestServer)
	ta := newTestAgent(t, portForwarding(port), loopDial(port))
	var rl *reorderLink
	ta.wrap = func(l link) link {
		rl = &reorderLink{link: l}
		return rl
	}
	s := dial(t, ta, nil)
	c, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendAndCheck(t, c, 8<<20, nil)
	if swapped := rl.swapped.Load(); swapped < 50 {
		t.Fatalf("only %d frames were reordered; the test did not exercise the buffer", swapped)
	}
}

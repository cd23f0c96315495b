package session_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/lab/session"
	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// testLab is a lab with sessions wired into its SSM and endpoint, as the
// lab assembly does it.
type testLab struct {
	*lab.Lab
	sessions *session.Service
	ssm      *ssmsdk.Client
	clock    *clock.Offset
}

func startLab(t *testing.T, hosts int) *testLab {
	t.Helper()
	if hosts > 0 {
		if err := sandbox.Available(); err != nil {
			t.Skip(err)
		}
	}
	dir, err := os.MkdirTemp("", "lab")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &clock.Offset{}
	l, err := lab.Start(ctx, lab.Options{Dir: dir, Hosts: hosts, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tl := &testLab{Lab: l, clock: c, sessions: l.Sessions}
	tl.ssm = ssmsdk.NewFromConfig(l.AWSConfig())
	return tl
}

func (tl *testLab) start(t *testing.T, target, doc string, params map[string][]string) *ssmsdk.StartSessionOutput {
	t.Helper()
	out, err := tl.ssm.StartSession(context.Background(), &ssmsdk.StartSessionInput{
		Target: aws.String(target), DocumentName: aws.String(doc), Parameters: params,
	})
	if err != nil {
		t.Fatalf("StartSession %s on %s: %v", doc, target, err)
	}
	return out
}

// dialer resumes through the real ResumeSession API.
func (tl *testLab) dialer(sessionID string) *ssmsession.Dialer {
	return &ssmsession.Dialer{Resume: func(ctx context.Context) (string, string, error) {
		out, err := tl.ssm.ResumeSession(ctx, &ssmsdk.ResumeSessionInput{SessionId: aws.String(sessionID)})
		if err != nil {
			return "", "", err
		}
		return aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue), nil
	}}
}

// open opens the session StartSession answered, with Passport's client
// resuming through ResumeSession; set adjusts the dialer first. The
// session is closed when the test ends.
func (tl *testLab) open(t *testing.T, out *ssmsdk.StartSessionOutput, set ...func(*ssmsession.Dialer)) *ssmsession.Session {
	t.Helper()
	d := tl.dialer(aws.ToString(out.SessionId))
	for _, f := range set {
		f(d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := d.Dial(ctx, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// addUser creates a user that logs in with a new ed25519 key, through the
// host's Run Command agent.
func addUser(t *testing.T, h *sandbox.Host, name string) ssh.Signer {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	sshPub, _ := ssh.NewPublicKey(pub)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	res, err := h.Run(context.Background(), node.Script{Document: "AWS-RunShellScript", Timeout: time.Minute, Source: `set -e
useradd --create-home --shell /bin/sh ` + name + `
usermod -p '*' ` + name + `
install -d -m 700 -o ` + name + ` -g ` + name + ` /home/` + name + `/.ssh
printf '%s\n' '` + key + `' > /home/` + name + `/.ssh/authorized_keys
chown ` + name + `: /home/` + name + `/.ssh/authorized_keys
chmod 600 /home/` + name + `/.ssh/authorized_keys`})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("creating %s on the host: %v, exit %d: %s", name, err, res.ExitCode, res.Stderr)
	}
	return signer
}

// streamConn lets x/crypto/ssh run over a session's stream.
type streamConn struct {
	io.ReadWriteCloser
}

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "ssm" }
func (tunnelAddr) String() string  { return "session-manager" }

func (streamConn) LocalAddr() net.Addr              { return tunnelAddr{} }
func (streamConn) RemoteAddr() net.Addr             { return tunnelAddr{} }
func (streamConn) SetDeadline(time.Time) error      { return nil }
func (streamConn) SetReadDeadline(time.Time) error  { return nil }
func (streamConn) SetWriteDeadline(time.Time) error { return nil }

func TestSSHThroughTheTunnel(t *testing.T) {
	tl := startLab(t, 1)
	h := tl.Hosts[0]
	signer := addUser(t, h, "tunneluser")

	out := tl.start(t, h.Info().InstanceID, "AWS-StartSSHSession", map[string][]string{"portNumber": {"22"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := tl.dialer(aws.ToString(out.SessionId)).Dial(ctx, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rw, err := s.Stream()
	if err != nil {
		t.Fatal(err)
	}
	c, chans, reqs, err := ssh.NewClientConn(streamConn{rw}, "tunnel", &ssh.ClientConfig{
		User: "tunneluser", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatalf("SSH login through the tunnel: %v", err)
	}
	client := ssh.NewClient(c, chans, reqs)
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	got, err := sess.Output("id -un; hostname")
	if err != nil {
		t.Fatal(err)
	}
	if want := "tunneluser\n" + h.Info().ComputerName + "\n"; string(got) != want {
		t.Fatalf("through the tunnel: got %q, want %q", got, want)
	}
	client.Close()

	if _, err := tl.ssm.TerminateSession(ctx, &ssmsdk.TerminateSessionInput{SessionId: out.SessionId}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(time.Minute):
		t.Fatal("the client did not see TerminateSession end the session")
	}
	if _, err := tl.ssm.ResumeSession(ctx, &ssmsdk.ResumeSessionInput{SessionId: out.SessionId}); err == nil {
		t.Fatal("ResumeSession of a terminated session succeeded")
	}
}

func TestStartSessionRefusals(t *testing.T) {
	tl := startLab(t, 1)
	h := tl.Hosts[0]
	id := h.Info().InstanceID
	var notConnected *types.TargetNotConnected
	var badDoc *types.InvalidDocument
	var missing *types.DoesNotExistException
	tests := []struct {
		name string
		call func() error
		is   func(error) bool
	}{
		{"unknown target", func() error {
			_, err := tl.ssm.StartSession(context.Background(), &ssmsdk.StartSessionInput{Target: aws.String("i-00000000000000000"), DocumentName: aws.String("AWS-StartSSHSession")})
			return err
		}, func(err error) bool { return errors.As(err, &notConnected) }},
		{"unknown document", func() error {
			_, err := tl.ssm.StartSession(context.Background(), &ssmsdk.StartSessionInput{Target: aws.String(id), DocumentName: aws.String("AWS-Nope")})
			return err
		}, func(err error) bool { return errors.As(err, &badDoc) }},
		{"port out of range", func() error {
			_, err := tl.ssm.StartSession(context.Background(), &ssmsdk.StartSessionInput{Target: aws.String(id), DocumentName: aws.String("AWS-StartPortForwardingSession"), Parameters: map[string][]string{"portNumber": {"70000"}}})
			return err
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "InvalidParameters") }},
		{"resume unknown session", func() error {
			_, err := tl.ssm.ResumeSession(context.Background(), &ssmsdk.ResumeSessionInput{SessionId: aws.String("nobody-0123456789abcdef0")})
			return err
		}, func(err error) bool { return errors.As(err, &missing) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !tt.is(err) {
				t.Fatalf("got %v", err)
			}
		})
	}

	t.Run("stopped host", func(t *testing.T) {
		if err := h.Stop(); err != nil {
			t.Fatal(err)
		}
		defer h.Start(context.Background())
		_, err := tl.ssm.StartSession(context.Background(), &ssmsdk.StartSessionInput{Target: aws.String(id), DocumentName: aws.String("AWS-StartSSHSession")})
		if !errors.As(err, &notConnected) {
			t.Fatalf("StartSession to a stopped host: got %v, want TargetNotConnected", err)
		}
	})
}

// TestTokens: a token opens its session once, and not after it expires;
// an unknown session is refused before any websocket exists.
func TestTokens(t *testing.T) {
	tl := startLab(t, 1)
	id := tl.Hosts[0].Info().InstanceID
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	short := &ssmsession.Dialer{HandshakeTimeout: 2 * time.Second}

	out := tl.start(t, id, "AWS-StartSSHSession", nil)
	if _, err := short.Dial(ctx, aws.ToString(out.StreamUrl), "not-the-token"); err == nil {
		t.Fatal("a wrong token opened the session")
	}
	s, err := short.Dial(ctx, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue))
	if err != nil {
		t.Fatalf("the right token after a wrong one: %v", err)
	}
	s.Close()
	if _, err := short.Dial(ctx, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue)); err == nil {
		t.Fatal("a used token opened the session again")
	}

	out = tl.start(t, id, "AWS-StartSSHSession", nil)
	tl.clock.Advance(2 * time.Minute)
	if _, err := short.Dial(ctx, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue)); err == nil {
		t.Fatal("an expired token opened the session")
	}

	url := strings.Replace(aws.ToString(out.StreamUrl), aws.ToString(out.SessionId), "nobody-0123456789abcdef0", 1)
	if _, err := short.Dial(ctx, url, aws.ToString(out.TokenValue)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("an unknown session: got %v, want a 404 refusal", err)
	}
}

// TestPortForwardingToRemoteHost moves data through a multiplexed session
// to a server beside the host, many connections at once.
func TestPortForwardingToRemoteHost(t *testing.T) {
	tl := startLab(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	out := tl.start(t, tl.Hosts[0].Info().InstanceID, "AWS-StartPortForwardingSessionToRemoteHost",
		map[string][]string{"host": {"127.0.0.3"}, "portNumber": {port}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := tl.dialer(aws.ToString(out.SessionId)).Dial(ctx, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Terminate()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.Open()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			data := make([]byte, 100_000+i)
			rand.Read(data)
			go c.Write(data)
			got := make([]byte, len(data))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Error(err)
				return
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Error("echo through the tunnel differs")
			}
		}()
	}
	wg.Wait()
}

// TestDataChannelRefusesGarbage: the endpoint answers a first message that
// is not the OpenDataChannel JSON, or is too large, with a policy-violation
// close, and the session can still be opened with its token afterwards.
func TestDataChannelRefusesGarbage(t *testing.T) {
	tl := startLab(t, 1)
	out := tl.start(t, tl.Hosts[0].Info().InstanceID, "AWS-StartSSHSession", nil)
	url := aws.ToString(out.StreamUrl)
	for _, tt := range []struct {
		name string
		typ  int
		msg  []byte
	}{
		{"binary first message", websocket.BinaryMessage, []byte{0, 1, 2, 3}},
		{"not JSON", websocket.TextMessage, []byte("hello")},
		{"oversized", websocket.TextMessage, []byte(`{"TokenValue":"` + strings.Repeat("A", 1<<20) + `"}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ws, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			ws.WriteMessage(tt.typ, tt.msg)
			ws.SetReadDeadline(time.Now().Add(time.Minute))
			_, _, err = ws.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || (ce.Code != websocket.ClosePolicyViolation && ce.Code != websocket.CloseMessageTooBig) {
				t.Fatalf("got %v, want a policy-violation or too-big close", err)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := ssmsession.Dial(ctx, url, aws.ToString(out.TokenValue))
	if err != nil {
		t.Fatalf("the session after the garbage: %v", err)
	}
	s.Close()
}

// TestResumeThroughResumeSession cuts the websocket under a transfer: the
// client calls the real ResumeSession API, presents the new token on a new
// websocket, and the data arrives whole.
func TestResumeThroughResumeSession(t *testing.T) {
	tl := startLab(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 32 << 20
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		h := sha256.New()
		io.CopyN(h, c, size)
		c.Write(h.Sum(nil))
	}()
	out := tl.start(t, tl.Hosts[0].Info().InstanceID, "AWS-StartPortForwardingSessionToRemoteHost",
		map[string][]string{"host": {"127.0.0.3"}, "portNumber": {strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)}})
	d := tl.dialer(aws.ToString(out.SessionId))
	var mu sync.Mutex
	var wsConns []net.Conn
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, addr)
		mu.Lock()
		wsConns = append(wsConns, c)
		mu.Unlock()
		return c, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := d.Dial(ctx, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Terminate()
	c, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := sha256.New()
	block := make([]byte, 64<<10)
	for sent := 0; sent < size; sent += len(block) {
		rand.Read(block)
		h.Write(block)
		if _, err := c.Write(block); err != nil {
			t.Fatal(err)
		}
		if sent == size/2 {
			mu.Lock()
			wsConns[0].Close()
			mu.Unlock()
		}
	}
	got := make([]byte, sha256.Size)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the digest after the cut: %v", err)
	}
	if string(got) != string(h.Sum(nil)) {
		t.Fatal("the data that arrived differs from what was sent")
	}
	if s.Resumes() != 1 {
		t.Fatalf("the session resumed %d times, want 1", s.Resumes())
	}
	if calls := tl.Server.Calls()["AmazonSSM.ResumeSession"]; calls != 1 {
		t.Fatalf("ResumeSession was called %d times, want 1", calls)
	}
}

// TestIdleSessionPastKeepAliveWindow: through the lab's StartSession and
// data channel, Passport's client idles past the agent's smux keep-alive
// window and its session still carries connections; a client reporting
// the version of a plugin built from source (1.2.0.0) has its idle session
// ended by the agent, and is told.
func TestIdleSessionPastKeepAliveWindow(t *testing.T) {
	tl := startLab(t, 1)
	const window = 300 * time.Millisecond
	tl.sessions.SetMuxKeepAlive(window)
	target := tl.Hosts[0].Info().InstanceID
	open := func(version string) *ssmsession.Session {
		out := tl.start(t, target, "AWS-StartPortForwardingSession", map[string][]string{"portNumber": {"22"}})
		return tl.open(t, out, func(d *ssmsession.Dialer) { d.ClientVersion = version })
	}
	banner := func(s *ssmsession.Session) error {
		c, err := s.Open()
		if err != nil {
			return err
		}
		defer c.Close()
		line := make([]byte, 7)
		if _, err := io.ReadFull(c, line); err != nil || string(line) != "SSH-2.0" {
			return fmt.Errorf("read %q, %v", line, err)
		}
		return nil
	}
	passport, plugin := open(""), open("1.2.0.0")
	for _, s := range []*ssmsession.Session{passport, plugin} {
		if err := banner(s); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-plugin.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the agent's keep-alive never ended the session of a client that sends none")
	}
	var closed *ssmsession.ClosedError
	if !errors.As(plugin.Err(), &closed) || !strings.Contains(closed.Output, "keep-alive") {
		t.Fatalf("that session ended with %v; want the agent's ChannelClosed saying why", plugin.Err())
	}
	if passport.Err() != nil {
		t.Fatalf("Passport's idle session ended too: %v", passport.Err())
	}
	if err := banner(passport); err != nil {
		t.Fatalf("Passport's session after idling past the window: %v", err)
	}
}

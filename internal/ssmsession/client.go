package ssmsession

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/xtaci/smux"
)

// ClientVersion is the version this client reports to the agent. Agents
// choose behaviour by it (multiplexing, smux keep-alives), so it names the
// session-manager-plugin release whose protocol this package speaks.
const ClientVersion = "1.2.694.0"

// Dialer opens sessions. The zero value is usable; set Resume to survive a
// dropped websocket.
type Dialer struct {
	// Resume is called when the websocket drops: it should call
	// ResumeSession and return the new stream URL and token. Without it, a
	// dropped websocket ends the session.
	Resume func(ctx context.Context) (streamURL, token string, err error)
	// ClientID identifies this client to the service; random when empty.
	ClientID string
	// HandshakeTimeout bounds the wait for the agent's handshake; 30
	// seconds when zero.
	HandshakeTimeout time.Duration
	// NetDialContext dials the websocket's TCP connection; net.Dialer when
	// nil. Tests use it to cut connections.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// KeepAlive is how often a websocket ping goes out, so that proxies and
	// the service do not close an idle tunnel (an SSH session waiting for
	// its user); 5 minutes, as the plugin pings, when zero. A ping that
	// cannot be sent drops the websocket, which resumes the session.
	KeepAlive time.Duration
	// ClientVersion is the version reported to the agent; ClientVersion
	// (the constant) when empty. Tests set it to stand in for other
	// clients, such as a plugin built from source (1.2.0.0).
	ClientVersion string
}

// Session is the client's end of an open session.
type Session struct {
	d            Dialer
	id           string // the session id, the stream URL's last path segment
	ch           *channel
	sessionType  SessionType
	agentVersion string

	ctx    context.Context // for resuming; cancelled by Close
	cancel context.CancelFunc

	mux       *smux.Session
	streamMu  sync.Mutex
	streamOut bool

	mu        sync.Mutex
	portErrs  int
	resumes   int
	resumeErr error
}

// Dial opens a session with the zero Dialer.
func Dial(ctx context.Context, streamURL, token string) (*Session, error) {
	var d Dialer
	return d.Dial(ctx, streamURL, token)
}

// Dial opens the session's websocket at streamURL, presents token, and
// completes the agent's handshake. ctx bounds only that; the session lasts
// until Close or Terminate, or until the agent ends it.
func (d *Dialer) Dial(ctx context.Context, streamURL, token string) (*Session, error) {
	s := &Session{d: *d}
	if s.d.ClientID == "" {
		s.d.ClientID = NewMessageID().String()
	}
	if s.d.HandshakeTimeout == 0 {
		s.d.HandshakeTimeout = 30 * time.Second
	}
	if s.d.KeepAlive == 0 {
		s.d.KeepAlive = 5 * time.Minute
	}
	if s.d.ClientVersion == "" {
		s.d.ClientVersion = ClientVersion
	}
	if u, err := url.Parse(streamURL); err == nil {
		s.id = path.Base(u.Path)
	}
	ws, batch, err := s.open(ctx, streamURL, token)
	if err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ch = newChannel(InputStreamData, OutputStreamData, nil)
	s.ch.onLinkDown = s.linkDown
	s.ch.attachBatch(ws, batch)
	go s.ch.keepAlive(s.d.KeepAlive)
	stop := context.AfterFunc(ctx, func() { s.ch.close(ctx.Err()) })
	err = s.handshake()
	stop()
	if err != nil {
		s.Close()
		return nil, err
	}
	if s.Multiplexed() {
		cfg := muxConfig()
		cfg.KeepAliveDisabled = !clientKeepsAlive(s.agentVersion)
		// smux closes its connection when its keep-alive runs out; the
		// session then ends, and the agent is told.
		st := &stream{ch: s.ch, onFlag: s.flag, onClose: func() {
			s.end("The client's multiplexer closed: the agent sent nothing, not even a keep-alive, for longer than smux waits.", errMuxClientIdle)
		}}
		if s.mux, err = smux.Client(st, cfg); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// open dials the websocket and sends the OpenDataChannel message. It also
// returns the TCP connection under the websocket (and under TLS, for
// wss://), through which the channel batches its writes.
func (s *Session) open(ctx context.Context, streamURL, token string) (*websocket.Conn, *batchConn, error) {
	dial := s.d.NetDialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	var batch *batchConn
	wd := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10, Proxy: http.ProxyFromEnvironment,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			batch = newBatchConn(c)
			return batch, nil
		}}
	ws, resp, err := wd.DialContext(ctx, streamURL, nil)
	if err != nil {
		if resp != nil {
			return nil, nil, fmt.Errorf("ssmsession: opening the data channel: the service answered %s", resp.Status)
		}
		return nil, nil, fmt.Errorf("ssmsession: opening the data channel: %w", err)
	}
	ws.SetReadLimit(HeaderSize + MaxPayload)
	open, _ := json.Marshal(openDataChannel{
		MessageSchemaVersion: "1.0", RequestID: NewMessageID().String(),
		TokenValue: token, ClientID: s.d.ClientID, ClientVersion: s.d.ClientVersion,
	})
	if err := ws.WriteMessage(websocket.TextMessage, open); err != nil {
		ws.Close()
		return nil, nil, fmt.Errorf("ssmsession: sending the session token: %w", err)
	}
	return ws, batch, nil
}

func (s *Session) handshake() error {
	for {
		m, err := s.ch.recvTimeout(s.d.HandshakeTimeout)
		if err != nil {
			return handshakeError(err)
		}
		switch m.PayloadType {
		case HandshakeRequest:
			if err := s.answerHandshake(m.Payload); err != nil {
				return err
			}
		case HandshakeComplete:
			if s.sessionType.SessionType == "" {
				return errors.New("ssmsession: the agent completed the handshake without saying what kind of session this is")
			}
			return nil
		case EncChallengeRequest:
			return errors.New("ssmsession: the agent asks for KMS encryption of the session, which this client does not support; turn off KMS encryption in the Session Manager preferences")
		}
	}
}

func handshakeError(err error) error {
	var closed *ClosedError
	switch {
	case errors.Is(err, errHandshakeTimeout):
		return errors.New("ssmsession: the agent did not complete the handshake in time; check that the target's SSM agent is running and current")
	case errors.As(err, &closed):
		return fmt.Errorf("ssmsession: the session ended during the handshake: %s", closed.Output)
	case errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("ssmsession: the data channel failed during the handshake (a wrong or expired token closes it): %w", err)
}

func (s *Session) answerHandshake(payload []byte) error {
	var req handshakeRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return fmt.Errorf("ssmsession: the agent's HandshakeRequest is not valid JSON: %v", err)
	}
	s.agentVersion = req.AgentVersion
	resp := handshakeResponse{ClientVersion: s.d.ClientVersion, ProcessedClientActions: []processedAction{}}
	for _, a := range req.RequestedClientActions {
		pa := processedAction{ActionType: a.ActionType}
		switch a.ActionType {
		case actionSessionType:
			var st SessionType
			switch err := json.Unmarshal(a.ActionParameters, &st); {
			case err != nil:
				pa.ActionStatus, pa.Error = actionFailed, "Failed to process action SessionType: "+err.Error()
			case st.SessionType != "Port" && !IsShell(st.SessionType):
				pa.ActionStatus, pa.Error = actionFailed, "Failed to process action SessionType: this client opens Port and shell sessions only, not "+st.SessionType
			default:
				pa.ActionStatus = actionSuccess
				s.sessionType = st
			}
		case actionKMSEncryption:
			pa.ActionStatus, pa.Error = actionFailed, "Failed to process action KMSEncryption: not supported by this client"
		default:
			pa.ActionStatus, pa.Error = actionUnsupported, "Unsupported action "+a.ActionType
		}
		if pa.Error != "" {
			resp.Errors = append(resp.Errors, pa.Error)
		}
		resp.ProcessedClientActions = append(resp.ProcessedClientActions, pa)
	}
	b, _ := json.Marshal(resp)
	return s.ch.send(HandshakeResponse, b)
}

// linkDown resumes the session on a new websocket, if the Dialer can.
func (s *Session) linkDown(cause error) {
	if s.d.Resume == nil {
		s.ch.close(fmt.Errorf("ssmsession: the websocket dropped: %w", cause))
		return
	}
	go s.resume(cause)
}

func (s *Session) resume(cause error) {
	delay := 100 * time.Millisecond
	var err error
	for range 6 {
		var url, token string
		url, token, err = s.d.Resume(s.ctx)
		if err == nil {
			var ws *websocket.Conn
			var batch *batchConn
			if ws, batch, err = s.open(s.ctx, url, token); err == nil {
				s.mu.Lock()
				s.resumes++
				s.mu.Unlock()
				s.ch.attachBatch(ws, batch)
				return
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		select {
		case <-time.After(delay):
		case <-s.ctx.Done():
			return
		}
		delay = min(2*delay, 3*time.Second)
	}
	s.ch.close(fmt.Errorf("ssmsession: the websocket dropped (%v) and resuming the session failed: %w", cause, err))
}

func (s *Session) flag(f FlagValue) {
	if f == ConnectToPortError {
		s.mu.Lock()
		s.portErrs++
		s.mu.Unlock()
	}
}

// SessionType is what the agent announced in the handshake.
func (s *Session) SessionType() SessionType { return s.sessionType }

// AgentVersion is the version the agent announced.
func (s *Session) AgentVersion() string { return s.agentVersion }

// Multiplexed reports whether the session carries many TCP connections
// (Open) rather than one (Stream): port-forwarding sessions to agents that
// support it.
func (s *Session) Multiplexed() bool {
	return s.sessionType.Properties.Type == LocalPortForwarding && compareVersions(s.agentVersion, muxAgentVersion) >= 0
}

// Open starts a new TCP connection to the session's port, for a
// multiplexed session. If the agent cannot reach the port the connection
// is closed at once, and PortErrors counts it.
func (s *Session) Open() (net.Conn, error) {
	if s.mux == nil {
		return nil, errors.New("ssmsession: this session carries a single connection (AWS-StartSSHSession or an old agent); use Stream")
	}
	st, err := s.mux.OpenStream()
	if err != nil {
		if e := s.ch.err(); e != nil {
			return nil, e
		}
		return nil, err
	}
	return st, nil
}

// Stream returns the session's single connection, for an unmultiplexed
// session such as AWS-StartSSHSession. Closing it ends the session.
func (s *Session) Stream() (io.ReadWriteCloser, error) {
	if s.mux != nil {
		return nil, errors.New("ssmsession: this session is multiplexed; use Open for each connection")
	}
	if IsShell(s.sessionType.SessionType) {
		return nil, errors.New("ssmsession: this is a shell session; use Shell")
	}
	s.streamMu.Lock()
	defer s.streamMu.Unlock()
	if s.streamOut {
		return nil, errors.New("ssmsession: the session's stream was already taken")
	}
	s.streamOut = true
	return &clientStream{stream: stream{ch: s.ch, onFlag: s.flag}, s: s}, nil
}

type clientStream struct {
	stream
	s *Session
}

func (c *clientStream) Close() error { return c.s.Terminate() }

// PortErrors counts the connections the agent could not make to the port.
func (s *Session) PortErrors() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.portErrs
}

// Resumes counts the times the session moved to a new websocket.
func (s *Session) Resumes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resumes
}

// Done is closed when the session has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.ch.done }

// Err is nil while the session is open, ErrClosed after Close or Terminate,
// a *ClosedError when the agent ended it, and otherwise what broke it.
func (s *Session) Err() error { return s.ch.err() }

// Terminate asks the agent to end the session (the TerminateSession flag,
// as the plugin sends on Ctrl-C), waits briefly for it to be acknowledged,
// and closes. Callers should also call the TerminateSession API.
func (s *Session) Terminate() error {
	if s.ch.err() == nil {
		if err := s.ch.send(Flag, flagPayload(TerminateSession)); err == nil {
			s.ch.flush(2 * time.Second)
		}
	}
	return s.Close()
}

// Close ends the session from this end: it tells the agent with
// ChannelClosed (unless the session has already ended) and closes the
// websocket. Terminate also asks the agent to end it first.
func (s *Session) Close() error {
	s.end("The client closed the session.", ErrClosed)
	return nil
}

// errMuxClientIdle is how a multiplexed session ends when the client's
// smux keep-alive ran out.
var errMuxClientIdle = errors.New("ssmsession: the agent sent nothing, not even a keep-alive, for longer than smux waits")

// end announces the end to the agent and closes everything; err is what
// Err reports afterwards.
func (s *Session) end(output string, err error) {
	if s.cancel != nil {
		s.cancel()
	}
	s.ch.end(s.id, output, err)
	if s.mux != nil {
		s.mux.Close()
	}
}

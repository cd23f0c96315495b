package ssmsession

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/xtaci/smux"
)

// Versions at which the reference implementations change behaviour. The
// agent multiplexes LocalPortForwarding sessions for clients from
// muxClientVersion on, and turns smux keep-alives off (they would defeat the
// session idle timeout) for clients after keepAliveOffClientVersion; the
// client mirrors that with the agent's version (agentKeepsAlive,
// clientKeepsAlive).
const (
	muxClientVersion          = "1.1.70"
	keepAliveOffClientVersion = "1.2.331.0"
	muxAgentVersion           = "3.0.196.0"
	keepAliveOffAgentVersion  = "3.1.1511.0"
)

// agentKeepsAlive is whether the agent's smux sends and expects
// keep-alives, from the version the client reported; clientKeepsAlive is
// the client's side of the same rule, from the agent's version. Both ends
// decide from what the other reported, as the reference implementations
// do. A plugin built from source reports 1.2.0.0 but turns its keep-alives
// off: against an agent that keeps them on, its idle multiplexed sessions
// end after smux's timeout, on AWS as here, and the agent says so with
// ChannelClosed.
func agentKeepsAlive(clientVersion string) bool {
	return compareVersions(clientVersion, keepAliveOffClientVersion) <= 0
}

func clientKeepsAlive(agentVersion string) bool {
	return compareVersions(agentVersion, keepAliveOffAgentVersion) <= 0
}

// DefaultAgentVersion is the agent version announced when AgentConfig
// leaves it empty.
const DefaultAgentVersion = "3.3.0.0"

// AgentConfig describes the session an Agent serves.
type AgentConfig struct {
	SessionID    string
	TargetID     string
	AgentVersion string      // DefaultAgentVersion when empty
	Session      SessionType // announced in the handshake; decides what is served
	// Dial connects to the port the session forwards to. host is empty for
	// the target itself, or the session's host property for a remote host.
	Dial func(ctx context.Context, host string, port int) (net.Conn, error)
	// Shell starts the process of a shell session (ShellSession,
	// InteractiveCommands, NonInteractiveCommands), as the user the
	// session runs as.
	Shell func(ctx context.Context, req ShellRequest) (Process, error)
	// Command is what an InteractiveCommands or NonInteractiveCommands
	// session runs.
	Command string
	// SeparateOutput sends a NonInteractiveCommands session's stderr and
	// exit code apart (StdErr, ExitCode), as separateOutputStream asks.
	SeparateOutput bool
	// HandshakeTimeout bounds the wait for the client's HandshakeResponse;
	// 15 seconds when zero.
	HandshakeTimeout time.Duration
	// Reattach is how long the session survives without a websocket, for
	// the client to resume it; 2 minutes when zero.
	Reattach time.Duration
	// MuxKeepAlive is the smux keep-alive timeout of a multiplexed session
	// when keep-alives are on (pings go out at a third of it); smux's 30
	// seconds when zero. Tests shorten it.
	MuxKeepAlive time.Duration
}

// Agent is the agent's end of one session: it performs the handshake, then
// forwards the client's data to the session's port, one TCP connection per
// smux stream for multiplexed sessions.
type Agent struct {
	cfg AgentConfig
	ch  *channel

	mu        sync.Mutex
	lost      *time.Timer
	clientVer string
}

// NewAgent returns an agent for cfg, not yet attached to a websocket.
func NewAgent(cfg AgentConfig) *Agent {
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = DefaultAgentVersion
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 15 * time.Second
	}
	if cfg.Reattach == 0 {
		cfg.Reattach = 2 * time.Minute
	}
	a := &Agent{cfg: cfg, ch: newChannel(OutputStreamData, InputStreamData, nil)}
	a.ch.onLinkDown = a.linkDown
	return a
}

// Attach gives the session a websocket: the first one, or the one a
// resumed session opened after the previous one dropped. The caller has
// already checked the client's token.
func (a *Agent) Attach(ws *websocket.Conn) {
	ws.SetReadLimit(HeaderSize + MaxPayload)
	a.attach(ws)
}

func (a *Agent) attach(l link) {
	a.mu.Lock()
	if a.lost != nil {
		a.lost.Stop()
		a.lost = nil
	}
	a.mu.Unlock()
	a.ch.attach(l)
}

func (a *Agent) linkDown(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lost == nil {
		a.lost = time.AfterFunc(a.cfg.Reattach, func() {
			a.ch.close(fmt.Errorf("ssmsession: session %s: no client came back within %v after its websocket failed (%v)", a.cfg.SessionID, a.cfg.Reattach, err))
		})
	}
}

// Done is closed when the session has ended.
func (a *Agent) Done() <-chan struct{} { return a.ch.done }

// Attached reports whether a client's websocket is attached now; between
// a dropped websocket and the resumed one, it is not.
func (a *Agent) Attached() bool { return a.ch.current() != nil }

// Terminate ends the session, telling the client why.
func (a *Agent) Terminate(reason string) {
	a.ch.end(a.cfg.SessionID, reason, ErrClosed)
}

// errClientEnded is how a session ends when the client asked for it
// (TerminateSession or DisconnectToPort): the client knows, and nothing is
// announced back.
var errClientEnded = errors.New("ssmsession: the client ended the session")

// errMuxIdle is how a multiplexed session ends when its smux keep-alive
// ran out: the client sent nothing, not even a keep-alive, for longer
// than smux waits.
var errMuxIdle = errors.New("the client sent nothing, not even a keep-alive, for longer than the agent's smux keep-alive timeout")

// Run performs the handshake and serves the session until it ends: the
// client terminates it, the forwarded connection of an unmultiplexed session
// ends, ctx is cancelled, or the client stays away longer than Reattach. It
// returns nil when the session ended normally.
//
// Whenever the agent is the end that ends the session, it announces it
// with ChannelClosed before the websocket closes, so that a client is
// never left holding a session that is gone.
func (a *Agent) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { a.Terminate("") })
	defer stop()
	err := a.run(ctx)
	var closed *ClosedError
	switch {
	case errors.As(err, &closed), errors.Is(err, errClientEnded):
		a.ch.close(ErrClosed)
	case errors.Is(err, errShellExited):
		a.ch.end(a.cfg.SessionID, "", ErrClosed)
	case err == nil, errors.Is(err, io.EOF):
		a.ch.end(a.cfg.SessionID, "The connection to the port ended.", ErrClosed)
	default:
		a.ch.end(a.cfg.SessionID, err.Error(), ErrClosed)
	}
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, errClientEnded) || errors.Is(err, errShellExited) || errors.As(err, &closed) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func (a *Agent) run(ctx context.Context) error {
	if err := a.handshake(); err != nil {
		return err
	}
	if IsShell(a.cfg.Session.SessionType) {
		return a.serveShell(ctx)
	}
	port, err := strconv.Atoi(a.cfg.Session.Properties.PortNumber)
	if err != nil || port < 1 || port > 65535 {
		return fmt.Errorf("session %s: portNumber %q is not a port", a.cfg.SessionID, a.cfg.Session.Properties.PortNumber)
	}
	dial := func() (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return a.cfg.Dial(dctx, a.cfg.Session.Properties.Host, port)
	}
	if a.cfg.Session.Properties.Type == LocalPortForwarding && compareVersions(a.clientVer, muxClientVersion) >= 0 {
		return a.serveMux(dial)
	}
	return a.serveBasic(dial)
}

func (a *Agent) handshake() error {
	action, _ := json.Marshal(a.cfg.Session)
	req, _ := json.Marshal(handshakeRequest{
		AgentVersion:           a.cfg.AgentVersion,
		RequestedClientActions: []clientAction{{ActionType: actionSessionType, ActionParameters: action}},
	})
	start := time.Now()
	if err := a.ch.send(HandshakeRequest, req); err != nil {
		return err
	}
	for {
		m, err := a.ch.recvTimeout(a.cfg.HandshakeTimeout)
		if errors.Is(err, errHandshakeTimeout) {
			return errors.New("Handshake timed out. Please ensure that you have the latest version of the session manager plugin.")
		}
		if err != nil {
			return err
		}
		if m.PayloadType != HandshakeResponse {
			continue // nothing else means anything before the handshake ends
		}
		var resp handshakeResponse
		if err := json.Unmarshal(m.Payload, &resp); err != nil {
			return fmt.Errorf("the client's HandshakeResponse is not valid JSON: %v", err)
		}
		for _, pa := range resp.ProcessedClientActions {
			if pa.ActionType == actionSessionType && pa.ActionStatus != actionSuccess {
				return fmt.Errorf("the client cannot open a %s session: %s", a.cfg.Session.SessionType, pa.Error)
			}
		}
		a.mu.Lock()
		a.clientVer = resp.ClientVersion
		a.mu.Unlock()
		break
	}
	done, _ := json.Marshal(handshakeComplete{HandshakeTimeToComplete: time.Since(start)})
	return a.ch.send(HandshakeComplete, done)
}

// serveBasic forwards one TCP connection over the session itself, as
// AWS-StartSSHSession does: when that connection ends, so does the session.
func (a *Agent) serveBasic(dial func() (net.Conn, error)) error {
	conn, err := dial()
	if err != nil {
		return fmt.Errorf("Unable to connect to specified port: %v", err)
	}
	defer conn.Close()
	done := make(chan error, 1)
	s := &stream{ch: a.ch, onFlag: func(f FlagValue) {
		if f == TerminateSession || f == DisconnectToPort {
			done <- errClientEnded
		}
	}}
	go func() {
		_, err := io.Copy(conn, s)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok && err == nil {
			cw.CloseWrite()
			return // the port may still answer; the other copy ends the session
		}
		done <- err
	}()
	go func() {
		_, err := io.Copy(s, conn)
		if err == nil {
			a.ch.flush(30 * time.Second)
			err = io.EOF
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-a.ch.done:
		err = a.ch.err()
	}
	return err
}

// serveMux accepts the client's smux streams and connects each to the port.
func (a *Agent) serveMux(dial func() (net.Conn, error)) error {
	cfg := muxConfig()
	cfg.KeepAliveDisabled = !agentKeepsAlive(a.clientVer)
	if a.cfg.MuxKeepAlive > 0 {
		cfg.KeepAliveInterval, cfg.KeepAliveTimeout = a.cfg.MuxKeepAlive/3, a.cfg.MuxKeepAlive
	}
	terminated := make(chan struct{})
	var once sync.Once
	s := &stream{ch: a.ch, onFlag: func(f FlagValue) {
		if f == TerminateSession {
			once.Do(func() { close(terminated) })
		}
	}, onClose: func() {}} // Run announces the end, then closes the channel
	mux, err := smux.Server(s, cfg)
	if err != nil {
		return err
	}
	defer mux.Close()
	go func() {
		select {
		case <-terminated:
			mux.Close()
		case <-a.ch.done:
		}
	}()
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			select {
			case <-terminated:
				return errClientEnded
			default:
			}
			if e := a.ch.err(); e != nil {
				return e
			}
			if errors.Is(err, io.ErrClosedPipe) && mux.IsClosed() {
				// Nothing here closed the mux: its keep-alive did.
				return fmt.Errorf("session %s ended: %w (client version %s; keep-alives are off on clients after %s)", a.cfg.SessionID, errMuxIdle, a.clientVer, keepAliveOffClientVersion)
			}
			return err
		}
		go func() {
			conn, err := dial()
			if err != nil {
				a.ch.send(Flag, flagPayload(ConnectToPortError))
				st.Close()
				return
			}
			splice(st, conn)
		}()
	}
}

// splice copies both ways until both directions end, passing half-closes on
// where the connection supports them.
func splice(a, b io.ReadWriteCloser) {
	var wg sync.WaitGroup
	wg.Add(2)
	half := func(dst, src io.ReadWriteCloser) {
		defer wg.Done()
		Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
		dst.Close()
		src.Close()
	}
	go half(a, b)
	go half(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// Serve serves one session on ws until it ends: NewAgent, Attach and Run
// for an agent with no way to take a resumed websocket, so that a dropped
// one ends the session at once unless cfg.Reattach says otherwise.
func Serve(ctx context.Context, ws *websocket.Conn, cfg AgentConfig) error {
	if cfg.Reattach == 0 {
		cfg.Reattach = time.Nanosecond
	}
	a := NewAgent(cfg)
	a.Attach(ws)
	return a.Run(ctx)
}

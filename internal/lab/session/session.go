// Package session is the lab's Session Manager: StartSession, ResumeSession,
// TerminateSession and DescribeSessions for the lab's SSM, and the
// ssmmessages data-channel websocket, where the agent's end of each session
// (package ssmsession) forwards to a port of the target host or runs a
// shell on it.
//
// Port sessions (AWS-StartSSHSession, AWS-StartPortForwardingSession,
// AWS-StartPortForwardingSessionToRemoteHost) and shell sessions (no
// document, or SSM-SessionManagerRunShell; AWS-StartInteractiveCommand;
// AWS-StartNonInteractiveCommand) are served. Tokens are single-use and
// expire, as the service's are.
package session

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// Target is a managed node a session can reach: sandbox hosts satisfy it.
type Target interface {
	Online() bool
	// DialPort connects to a TCP port of the node through its agent.
	DialPort(ctx context.Context, port int) (net.Conn, error)
}

// ShellTarget is a Target that can also run shell sessions: sandbox hosts
// can; the lab's Windows hosts are models and cannot.
type ShellTarget interface {
	Target
	// Shell starts a shell session's process as user.
	Shell(ctx context.Context, user string, req ssmsession.ShellRequest) (ssmsession.Process, error)
}

// Preferences are the Session Manager preferences shell sessions follow
// (the SSM-SessionManagerRunShell document's inputs on AWS). With Run As
// off, sessions run as ssm-user; with it on, as the user in the starting
// principal's SSMSessionRunAs tag, else RunAsDefaultUser.
type Preferences struct {
	RunAsEnabled     bool
	RunAsDefaultUser string
}

// Config configures a Service.
type Config struct {
	// Lookup finds a managed node by instance id.
	Lookup func(instanceID string) (Target, bool)
	// Endpoint returns the lab's endpoint (http://127.0.0.1:PORT); stream
	// URLs point at it.
	Endpoint func() string
	// TokenTTL is how long a token may wait to be presented; 60 seconds
	// when zero.
	TokenTTL time.Duration
	// Now is the clock tokens expire by, and sessions' start and end dates
	// are read from; time.Now when nil.
	Now func() time.Time
	// Owner names the principal that signed a request (its IAM ARN), for
	// DescribeSessions; "" when nil.
	Owner func(ctx context.Context) string
	// RunAsTag is the signing principal's SSMSessionRunAs tag, "" when it
	// has none (or when nil).
	RunAsTag func(ctx context.Context) string
}

// Service holds the lab's sessions.
type Service struct {
	cfg      Config
	upgrader websocket.Upgrader

	mu           sync.Mutex
	muxKeepAlive time.Duration // AgentConfig.MuxKeepAlive of new sessions
	prefs        Preferences
	lifetime     time.Duration // how long a websocket stays open (gateway.go)
	dropMean     time.Duration // mean time to a random drop; 0 for none
	stop         chan struct{} // closed by Close: the gateway stops
	sessions     map[string]*session
	started      int // sessions started so far; orders DescribeSessions
	pages        *awsjson.Pager
}

type session struct {
	id, target string
	doc        string
	kind       string // "Port", or a shell session type
	props      ssmsession.PortProperties
	command    string // what an InteractiveCommands or NonInteractiveCommands session runs
	separate   bool   // separateOutputStream
	runAs      string // the user a shell session runs as
	seq        int
	owner      string
	reason     string
	start      time.Time

	// guarded by Service.mu
	token      string
	expires    time.Time
	agent      *ssmsession.Agent
	link       *link // the client's websocket while attached
	terminated bool
	end        time.Time
}

// New returns a service with no sessions.
func New(cfg Config) *Service {
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{
		cfg:      cfg,
		lifetime: DefaultWebsocketLifetime,
		stop:     make(chan struct{}),
		sessions: make(map[string]*session),
		pages:    awsjson.NewPager("InvalidNextToken", "The specified token is not valid."),
		// The plugin sends no Origin; the token is the credential.
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10},
	}
	go s.recycle()
	return s
}

// Operations returns StartSession, ResumeSession, TerminateSession and
// DescribeSessions, to add to the AmazonSSM service's operations.
func (s *Service) Operations() map[string]awsjson.Operation {
	return map[string]awsjson.Operation{
		"StartSession":     operation(s.startSession),
		"ResumeSession":    operation(s.resumeSession),
		"TerminateSession": operation(s.terminateSession),
		"DescribeSessions": operation(s.describeSessions),
	}
}

func operation[In, Out any](f func(context.Context, *In) (*Out, error)) awsjson.Operation {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		in := new(In)
		if err := awsjson.Decode(raw, in); err != nil {
			return nil, err
		}
		return f(ctx, in)
	}
}

type startSessionInput struct {
	Target       *string
	DocumentName *string
	Parameters   map[string][]string
	Reason       *string
}

type sessionOutput struct {
	SessionId  string
	StreamUrl  string `json:",omitempty"`
	TokenValue string `json:",omitempty"`
}

// sessionDoc is a session document the lab serves: its session type, the
// parameters it accepts and how they become the session's properties.
type sessionDoc struct {
	kind   string            // "Port", or a shell session type
	params map[string]string // name -> default ("" = required, unless optional)
	// optional are parameters whose default is empty.
	optional []string
	props    func(p map[string]string) ssmsession.PortProperties
}

// defaultShellDocument is what StartSession runs without a DocumentName.
const defaultShellDocument = "SSM-SessionManagerRunShell"

var documents = map[string]sessionDoc{
	"AWS-StartSSHSession": {
		kind:   "Port",
		params: map[string]string{"portNumber": "22"},
		props: func(p map[string]string) ssmsession.PortProperties {
			return ssmsession.PortProperties{PortNumber: p["portNumber"]}
		},
	},
	"AWS-StartPortForwardingSession": {
		kind:   "Port",
		params: map[string]string{"portNumber": "80", "localPortNumber": "0"},
		props: func(p map[string]string) ssmsession.PortProperties {
			return ssmsession.PortProperties{PortNumber: p["portNumber"], LocalPortNumber: p["localPortNumber"], Type: ssmsession.LocalPortForwarding}
		},
	},
	"AWS-StartPortForwardingSessionToRemoteHost": {
		kind:   "Port",
		params: map[string]string{"host": "", "portNumber": "80", "localPortNumber": "0"},
		props: func(p map[string]string) ssmsession.PortProperties {
			return ssmsession.PortProperties{Host: p["host"], PortNumber: p["portNumber"], LocalPortNumber: p["localPortNumber"], Type: ssmsession.LocalPortForwarding}
		},
	},
	defaultShellDocument:          {kind: ssmsession.ShellSession, params: map[string]string{}},
	"AWS-StartInteractiveCommand": {kind: ssmsession.InteractiveCommands, params: map[string]string{"command": ""}},
	"AWS-StartNonInteractiveCommand": {kind: ssmsession.NonInteractiveCommands, params: map[string]string{
		"command": "", "separateOutputStream": "false", "stdoutSeparatorPrefix": "", "stderrSeparatorPrefix": "",
	}, optional: []string{"stdoutSeparatorPrefix", "stderrSeparatorPrefix"}},
}

func (s *Service) startSession(ctx context.Context, in *startSessionInput) (*sessionOutput, error) {
	if in.Target == nil || *in.Target == "" {
		return nil, awsjson.Errorf("ValidationException", "1 validation error detected: Value null at 'target' failed to satisfy constraint: Member must not be null")
	}
	docName := defaultShellDocument
	if in.DocumentName != nil && *in.DocumentName != "" {
		docName = *in.DocumentName
	}
	in.DocumentName = &docName
	doc, ok := documents[docName]
	if !ok {
		return nil, awsjson.Errorf("InvalidDocument", "Document with name %s does not exist.", clip(docName))
	}
	params := make(map[string]string, len(doc.params))
	for name, v := range in.Parameters {
		if _, known := doc.params[name]; !known {
			return nil, awsjson.Errorf("InvalidParameters", "Document %s has no parameter %q.", *in.DocumentName, clip(name))
		}
		if len(v) != 1 {
			return nil, awsjson.Errorf("InvalidParameters", "Parameter %s takes exactly one value.", name)
		}
		params[name] = v[0]
	}
	for name, def := range doc.params {
		if _, set := params[name]; !set {
			if def == "" && !slices.Contains(doc.optional, name) {
				return nil, awsjson.Errorf("InvalidParameters", "Document %s requires parameter %s.", *in.DocumentName, name)
			}
			params[name] = def
		}
	}
	for _, name := range []string{"portNumber", "localPortNumber"} {
		if v, set := params[name]; set {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 || (name == "portNumber" && n == 0) {
				return nil, awsjson.Errorf("InvalidParameters", "Parameter %s must be a port number, not %q.", name, clip(v))
			}
		}
	}
	if h, set := params["host"]; set && (len(h) > 253 || strings.ContainsAny(h, " /\\@\x00")) {
		return nil, awsjson.Errorf("InvalidParameters", "Parameter host %q is not a host name or address.", clip(h))
	}

	if v := params["separateOutputStream"]; v != "" && v != "true" && v != "false" {
		return nil, awsjson.Errorf("InvalidParameters", "Parameter separateOutputStream takes true or false, not %q.", clip(v))
	}

	t, ok := s.cfg.Lookup(*in.Target)
	if !ok || !t.Online() {
		return nil, awsjson.Errorf("TargetNotConnected", "%s is not connected.", clip(*in.Target))
	}
	owner := ""
	if s.cfg.Owner != nil {
		owner = s.cfg.Owner(ctx)
	}
	sess := &session{id: sessionID(owner), target: *in.Target, doc: docName, kind: doc.kind,
		command: params["command"], separate: params["separateOutputStream"] == "true",
		reason: deref(in.Reason), start: s.cfg.Now()}
	if doc.props != nil {
		sess.props = doc.props(params)
	}
	if doc.kind != "Port" {
		if _, ok := t.(ShellTarget); !ok {
			return nil, awsjson.Errorf("InvalidDocument", "%s is one of the lab's Windows host models, which have no shell; it serves port sessions only.", clip(*in.Target))
		}
		user, err := s.runAs(ctx)
		if err != nil {
			return nil, err
		}
		sess.runAs = user
	}
	if s.cfg.Owner != nil {
		sess.owner = s.cfg.Owner(ctx)
	}
	s.mu.Lock()
	s.started++
	sess.seq = s.started
	s.sessions[sess.id] = sess
	out := s.issue(sess)
	s.mu.Unlock()
	return out, nil
}

// issue gives sess a fresh token; s.mu is held.
func (s *Service) issue(sess *session) *sessionOutput {
	b := make([]byte, 96)
	rand.Read(b)
	sess.token = base64.StdEncoding.EncodeToString(b)
	sess.expires = s.cfg.Now().Add(s.cfg.TokenTTL)
	cell := make([]byte, 12)
	rand.Read(cell)
	url := "ws" + strings.TrimPrefix(s.cfg.Endpoint(), "http") + "/v1/data-channel/" + sess.id +
		"?role=publish_subscribe&cell-number=" + base64.RawURLEncoding.EncodeToString(cell)
	return &sessionOutput{SessionId: sess.id, StreamUrl: url, TokenValue: sess.token}
}

type sessionIDInput struct {
	SessionId *string
}

func (s *Service) resumeSession(ctx context.Context, in *sessionIDInput) (*sessionOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, err := s.find(in.SessionId)
	if err != nil {
		return nil, err
	}
	if sess.terminated {
		return nil, awsjson.Errorf("DoesNotExistException", "Session %s has ended; start a new one.", sess.id)
	}
	return s.issue(sess), nil
}

func (s *Service) terminateSession(ctx context.Context, in *sessionIDInput) (*sessionOutput, error) {
	s.mu.Lock()
	sess, err := s.find(in.SessionId)
	var agent *ssmsession.Agent
	if err == nil {
		s.end(sess)
		agent = sess.agent
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if agent != nil {
		agent.Terminate("Session " + sess.id + " was terminated.")
	}
	return &sessionOutput{SessionId: sess.id}, nil
}

// end marks sess over, keeping the first end date; s.mu is held.
func (s *Service) end(sess *session) {
	if !sess.terminated {
		sess.terminated = true
		sess.end = s.cfg.Now()
	}
	sess.token = ""
	sess.link = nil
}

// find returns a session by id; s.mu is held.
func (s *Service) find(id *string) (*session, error) {
	if id == nil || *id == "" {
		return nil, awsjson.Errorf("ValidationException", "1 validation error detected: Value null at 'sessionId' failed to satisfy constraint: Member must not be null")
	}
	sess, ok := s.sessions[*id]
	if !ok {
		return nil, awsjson.Errorf("DoesNotExistException", "Session %s does not exist.", clip(*id))
	}
	return sess, nil
}

// SetPreferences sets the Session Manager preferences shell sessions
// started from now on follow.
func (s *Service) SetPreferences(p Preferences) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prefs = p
}

// runAs is the user a shell session started by the caller runs as.
func (s *Service) runAs(ctx context.Context) (string, error) {
	s.mu.Lock()
	prefs := s.prefs
	s.mu.Unlock()
	if !prefs.RunAsEnabled {
		return "ssm-user", nil
	}
	if s.cfg.RunAsTag != nil {
		if user := s.cfg.RunAsTag(ctx); user != "" {
			return user, nil
		}
	}
	if prefs.RunAsDefaultUser == "" {
		return "", awsjson.Errorf("InvalidDocument", "Run As is on in the Session Manager preferences, but your principal has no SSMSessionRunAs tag and no runAsDefaultUser is set.")
	}
	return prefs.RunAsDefaultUser, nil
}

// SetMuxKeepAlive sets the smux keep-alive timeout of sessions started
// from now on, where keep-alives are on (smux's 30 seconds by default), so
// that tests can idle a session past it quickly.
func (s *Service) SetMuxKeepAlive(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.muxKeepAlive = d
}

// Close terminates every session.
func (s *Service) Close() {
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	var agents []*ssmsession.Agent
	for _, sess := range s.sessions {
		s.end(sess)
		if sess.agent != nil {
			agents = append(agents, sess.agent)
		}
	}
	s.mu.Unlock()
	for _, a := range agents {
		a.Terminate("The service is shutting down.")
	}
}

// sessionID is an id as Session Manager makes them: the caller's name (an
// IAM user's name, or an assumed role's session name: the end of its ARN)
// and a random suffix.
func sessionID(owner string) string {
	b := make([]byte, 9)
	rand.Read(b)
	name := owner[strings.LastIndexByte(owner, '/')+1:]
	if name == "" {
		name = "lab"
	}
	return name + "-" + hex.EncodeToString(b)[:17]
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

// ServeHTTP serves the data channel: GET /v1/data-channel/<session-id>,
// upgraded to a websocket whose first message presents the token.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/data-channel/")
	s.mu.Lock()
	sess, ok := s.sessions[id]
	s.mu.Unlock()
	if !ok || id == "" {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	if err := s.open(ws, sess); err != nil {
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, err.Error()), time.Now().Add(time.Second))
		ws.Close()
	}
}

// openTimeout bounds the wait for a client's OpenDataChannel message.
const openTimeout = 10 * time.Second

// open checks the token the client presents and attaches the websocket to
// the session's agent, starting the agent on first use.
func (s *Service) open(ws *websocket.Conn, sess *session) error {
	ws.SetReadLimit(8 << 10)
	ws.SetReadDeadline(time.Now().Add(openTimeout))
	typ, b, err := ws.ReadMessage()
	if err != nil {
		return fmt.Errorf("no OpenDataChannel message: %v", err)
	}
	var open struct {
		TokenValue    string
		ClientVersion string
	}
	if typ != websocket.TextMessage || json.Unmarshal(b, &open) != nil {
		return fmt.Errorf("the first message must be the OpenDataChannel JSON")
	}
	ws.SetReadDeadline(time.Time{})

	s.mu.Lock()
	switch {
	case sess.terminated:
		s.mu.Unlock()
		return fmt.Errorf("session %s has ended", sess.id)
	case sess.token == "" || subtle.ConstantTimeCompare([]byte(open.TokenValue), []byte(sess.token)) != 1:
		s.mu.Unlock()
		return fmt.Errorf("the token is not valid for session %s (tokens are single-use; call ResumeSession for another)", sess.id)
	case !s.cfg.Now().Before(sess.expires):
		sess.token = ""
		s.mu.Unlock()
		return fmt.Errorf("the token for session %s has expired; call ResumeSession for another", sess.id)
	}
	sess.token = ""
	agent := sess.agent
	if agent == nil {
		agent = s.startAgent(sess)
		sess.agent = agent
	}
	s.mu.Unlock()
	s.mu.Lock()
	s.track(sess, ws)
	s.mu.Unlock()
	agent.Attach(ws)
	return nil
}

// startAgent starts the agent's end of sess; s.mu is held.
func (s *Service) startAgent(sess *session) *ssmsession.Agent {
	a := ssmsession.NewAgent(ssmsession.AgentConfig{
		SessionID:      sess.id,
		TargetID:       sess.target,
		MuxKeepAlive:   s.muxKeepAlive,
		Command:        sess.command,
		SeparateOutput: sess.separate,
		Session:        ssmsession.SessionType{SessionType: sess.kind, Properties: sess.props},
		Shell: func(ctx context.Context, req ssmsession.ShellRequest) (ssmsession.Process, error) {
			t, ok := s.cfg.Lookup(sess.target)
			st, shell := t.(ShellTarget)
			if !ok || !shell || !t.Online() {
				return nil, fmt.Errorf("%s is not connected", sess.target)
			}
			return st.Shell(ctx, sess.runAs, req)
		},
		Dial: func(ctx context.Context, host string, port int) (net.Conn, error) {
			t, ok := s.cfg.Lookup(sess.target)
			if !ok || !t.Online() {
				return nil, fmt.Errorf("%s is not connected", sess.target)
			}
			if host == "" || host == "localhost" {
				return t.DialPort(ctx, port)
			}
			// A remote host is reached from the target's network, which in
			// the lab is the machine's own.
			var d net.Dialer
			return d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		},
	})
	go func() {
		a.Run(context.Background())
		s.mu.Lock()
		s.end(sess)
		s.mu.Unlock()
	}()
	return a
}

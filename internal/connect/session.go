package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// SessionAPI is the part of the SSM client sessions use.
type SessionAPI interface {
	StartSession(context.Context, *ssm.StartSessionInput, ...func(*ssm.Options)) (*ssm.StartSessionOutput, error)
	ResumeSession(context.Context, *ssm.ResumeSessionInput, ...func(*ssm.Options)) (*ssm.ResumeSessionOutput, error)
	TerminateSession(context.Context, *ssm.TerminateSessionInput, ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error)
}

var _ SessionAPI = (*ssm.Client)(nil)

// Session is an open Session Manager session to one port of a target.
type Session struct {
	*ssmsession.Session
	ID     string
	Target string
	Port   int
	api    SessionAPI
}

// Document names for the two kinds of session Passport opens.
const (
	SSHDocument         = "AWS-StartSSHSession"
	PortForwardDocument = "AWS-StartPortForwardingSession"
)

// Connector starts sessions.
type Connector struct {
	API SessionAPI
	// Dialer is the data channel's settings (keep-alives, how the
	// websocket's TCP connection is dialed); its Resume is always the
	// session's own ResumeSession call.
	Dialer ssmsession.Dialer
}

// Start opens a session to port on target: doc is SSHDocument (one
// connection, the way ProxyCommand uses it) or PortForwardDocument (many
// connections over one session, on current agents). The session resumes
// through ResumeSession when its websocket drops; End terminates it.
func (c Connector) Start(ctx context.Context, target string, port int, doc string) (*Session, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("port %d is not a TCP port (1-65535)", port)
	}
	s, err := c.start(ctx, &ssm.StartSessionInput{
		Target:       aws.String(target),
		DocumentName: aws.String(doc),
		Parameters:   map[string][]string{"portNumber": {strconv.Itoa(port)}},
		Reason:       aws.String("passport connect to port " + strconv.Itoa(port)),
	})
	if err != nil {
		return nil, err
	}
	s.Port = port
	return s, nil
}

// start starts a session and opens its data channel, resuming through
// ResumeSession when the websocket drops.
func (c Connector) start(ctx context.Context, in *ssm.StartSessionInput) (*Session, error) {
	target := aws.ToString(in.Target)
	out, err := c.API.StartSession(ctx, in)
	if err != nil {
		return nil, startError(target, err)
	}
	s := &Session{ID: aws.ToString(out.SessionId), Target: target, api: c.API}
	d := c.Dialer
	d.Resume = s.resume
	s.Session, err = d.Dial(ctx, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue))
	if err != nil {
		s.terminate()
		return nil, fmt.Errorf("connecting to %s (%s): %w", target, aws.ToString(in.DocumentName), err)
	}
	return s, nil
}

func (s *Session) resume(ctx context.Context) (string, string, error) {
	out, err := s.api.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: aws.String(s.ID)})
	if err != nil {
		return "", "", err
	}
	return aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue), nil
}

// End tells the agent the session is over and calls TerminateSession, so
// the service's record shows it ended rather than timed out.
func (s *Session) End() error {
	s.Session.Terminate()
	return s.terminate()
}

// terminate calls TerminateSession even when the caller's context has
// ended (a Ctrl-C is exactly when it must run), within its own bound.
func (s *Session) terminate() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.api.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(s.ID)}); err != nil {
		return fmt.Errorf("terminating session %s to %s: %w", s.ID, s.Target, err)
	}
	return nil
}

// Conn returns a new connection to the session's port: one per call on a
// multiplexed session, the single one otherwise.
func (s *Session) Conn() (io.ReadWriteCloser, error) {
	if s.Multiplexed() {
		return s.Open()
	}
	return s.Stream()
}

// OfflineError says that Session Manager cannot reach a target's agent.
type OfflineError struct{ Target string }

func (e *OfflineError) Error() string {
	return fmt.Sprintf("%s is offline: Session Manager cannot reach its SSM agent (TargetNotConnected); check that the instance is running and its agent is connected", e.Target)
}

// startError says in a person's words why StartSession refused.
func startError(target string, err error) error {
	var offline *types.TargetNotConnected
	if errors.As(err, &offline) {
		return &OfflineError{Target: target}
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "AccessDeniedException", "AccessDenied":
			return fmt.Errorf("starting a session to %s was denied (AccessDenied): your AWS identity needs ssm:StartSession on the instance and on the %s documents; ask your AWS administrator", target, "AWS-StartSSHSession and AWS-StartPortForwardingSession")
		case "ExpiredTokenException", "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException", "SignatureDoesNotMatch":
			return fmt.Errorf("starting a session to %s: AWS refused your credentials (%s): they are expired, or the key is wrong; sign in again or check AWS_PROFILE", target, api.ErrorCode())
		}
		return fmt.Errorf("starting a session to %s: %s: %s", target, api.ErrorCode(), api.ErrorMessage())
	}
	return fmt.Errorf("starting a session to %s: %w", target, err)
}

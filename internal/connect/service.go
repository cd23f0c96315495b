package connect

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
)

// ServiceSessions opens a request's Session Manager sessions through the
// Passport service, which calls StartSession, ResumeSession and
// TerminateSession with its own AWS identity: the person needs no
// ssm:StartSession. It is a SessionAPI, so Connector, tunnels and the
// resume of a dropped websocket work on it exactly as on the SSM client.
type ServiceSessions struct {
	// Client is signed in as the requester.
	Client *client.Client
	// RequestID is the access request whose targets the sessions reach.
	RequestID string
}

var _ SessionAPI = ServiceSessions{}

// StartSession asks the service for a session to a target of the request:
// AWS-StartSSHSession or AWS-StartPortForwardingSession to the port in
// the input's portNumber, the only sessions the service opens.
func (s ServiceSessions) StartSession(ctx context.Context, in *ssm.StartSessionInput, _ ...func(*ssm.Options)) (*ssm.StartSessionOutput, error) {
	req := api.SessionRequest{Target: aws.ToString(in.Target)}
	switch doc := aws.ToString(in.DocumentName); doc {
	case SSHDocument:
		req.Kind = "ssh"
	case PortForwardDocument:
		req.Kind = "port"
	default:
		return nil, fmt.Errorf("the Passport service opens %s and %s sessions only, not %q", SSHDocument, PortForwardDocument, doc)
	}
	if p := in.Parameters["portNumber"]; len(p) == 1 {
		port, err := strconv.Atoi(p[0])
		if err != nil {
			return nil, fmt.Errorf("port %q is not a TCP port", p[0])
		}
		req.Port = port
	}
	out, err := s.Client.StartSession(ctx, s.RequestID, req)
	if err != nil {
		return nil, err
	}
	return &ssm.StartSessionOutput{SessionId: aws.String(out.SessionID), StreamUrl: aws.String(out.StreamURL), TokenValue: aws.String(out.Token)}, nil
}

// ResumeSession asks the service for a new data channel to a session it
// opened for this person.
func (s ServiceSessions) ResumeSession(ctx context.Context, in *ssm.ResumeSessionInput, _ ...func(*ssm.Options)) (*ssm.ResumeSessionOutput, error) {
	out, err := s.Client.ResumeSession(ctx, aws.ToString(in.SessionId))
	if err != nil {
		return nil, err
	}
	return &ssm.ResumeSessionOutput{SessionId: aws.String(out.SessionID), StreamUrl: aws.String(out.StreamURL), TokenValue: aws.String(out.Token)}, nil
}

// TerminateSession asks the service to end a session it opened for this
// person.
func (s ServiceSessions) TerminateSession(ctx context.Context, in *ssm.TerminateSessionInput, _ ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error) {
	if err := s.Client.EndSession(ctx, aws.ToString(in.SessionId)); err != nil {
		return nil, err
	}
	return &ssm.TerminateSessionOutput{SessionId: in.SessionId}, nil
}

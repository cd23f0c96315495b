package awsjson

import (
	"context"
	"net/http"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/lab/iam"
)

// The lab's permissions. Each access key may have a Principal: its ARN and
// an identity-based policy (package iam) that every call is decided by,
// on the resources the call acts on (Service.Resources names them). A key
// without one, or with a nil policy, may do anything, as the operator of
// an account may. Deny adds an explicit deny of one action on top, for
// tests that need one refusal without writing a policy. Refusals are
// answered as AWS answers them, so every caller's "you lack permission"
// message is exercised with the real SDK's error.

// Principal is who signs with an access key and what it may do.
type Principal struct {
	// ARN is the identity's ARN, which refusals name.
	ARN string
	// Policy decides every call; nil allows everything.
	Policy *iam.Policy
}

// SetPrincipal says who an access key belongs to and what it may do.
func (s *Server) SetPrincipal(accessKeyID string, p Principal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.principals[accessKeyID] = p
}

// Deny makes every later call of action ("ssm:StartSession", the IAM
// action name: the service's signing name, a colon, the operation) signed
// with accessKeyID fail with AccessDeniedException, whatever its policy
// allows.
func (s *Server) Deny(accessKeyID, action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.denied[accessKeyID] == nil {
		s.denied[accessKeyID] = make(map[string]bool)
	}
	s.denied[accessKeyID][strings.ToLower(action)] = true
}

// Undeny takes back a Deny of action for accessKeyID.
func (s *Server) Undeny(accessKeyID, action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.denied[accessKeyID], strings.ToLower(action))
}

// Authorize decides whether the caller of ctx (a request Verify checked)
// may call action on resources: nil when it may, else
// AccessDeniedException as the JSON protocols answer it. Handlers of
// query-protocol services give the refusal their own code.
func (s *Server) Authorize(ctx context.Context, action string, resources []iam.Resource) error {
	return s.authorize(CallerAccessKey(ctx), action, resources)
}

func (s *Server) authorize(caller, action string, resources []iam.Resource) error {
	s.mu.Lock()
	p, known := s.principals[caller]
	denied := s.denied[caller][strings.ToLower(action)]
	s.mu.Unlock()
	if !known {
		p.ARN = "arn:aws:iam::" + labAccount + ":user/" + caller
	}
	d := iam.Decision{Allowed: true}
	switch {
	case denied:
		d = iam.Decision{Explicit: true}
	case p.Policy != nil:
		d = p.Policy.Decide(iam.Request{Action: action, Resources: resources, Account: account(p.ARN)})
	}
	if d.Allowed {
		return nil
	}
	msg := "User: " + p.ARN + " is not authorized to perform: " + action
	if d.Resource != "" && d.Resource != "*" {
		msg += " on resource: " + d.Resource
	}
	if d.Explicit {
		msg += " with an explicit deny in an identity-based policy"
	} else {
		msg += " because no identity-based policy allows the " + action + " action"
	}
	return &Error{Code: "AccessDeniedException", HTTPStatus: http.StatusBadRequest, Message: msg}
}

// account is the account field of an ARN.
func account(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 {
		return labAccount
	}
	return parts[4]
}

// labAccount is the account id the lab's identities belong to.
const labAccount = "123456789012"

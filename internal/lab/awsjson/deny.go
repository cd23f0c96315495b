package awsjson

import (
	"net/http"
	"strings"
)

// The lab has no IAM. Deny is the one piece of it that clients need to be
// tested against: an identity that signs correctly and is still refused an
// action, answered as AWS answers it, so that every caller's "you lack
// permission" message is exercised with the real SDK's error.

// Deny makes every later call of action ("ssm:StartSession", the IAM
// action name: the service's signing name, a colon, the operation) signed
// with accessKeyID fail with AccessDeniedException.
func (s *Server) Deny(accessKeyID, action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.denied == nil {
		s.denied = make(map[string]map[string]bool)
	}
	if s.denied[accessKeyID] == nil {
		s.denied[accessKeyID] = make(map[string]bool)
	}
	s.denied[accessKeyID][strings.ToLower(action)] = true
}

// deniedError answers a call of action by the caller when Deny forbade it,
// and is nil otherwise.
func (s *Server) deniedError(caller, action string) error {
	s.mu.Lock()
	denied := s.denied[caller][strings.ToLower(action)]
	s.mu.Unlock()
	if !denied {
		return nil
	}
	return &Error{
		Code:       "AccessDeniedException",
		HTTPStatus: http.StatusBadRequest,
		Message: "User: arn:aws:iam::" + labAccount + ":user/" + caller + " is not authorized to perform: " + action +
			" because no identity-based policy allows the " + action + " action",
	}
}

// labAccount is the account id the lab's identities belong to.
const labAccount = "123456789012"

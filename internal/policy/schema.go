package policy

import (
	_ "embed"
	"fmt"

	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
)

// Schema is the Cedar schema of Passport's requests, in Cedar's schema
// syntax: User in Group, Action "access", Instance with a platform and
// string tags, and the context (duration, reason, sudo, target_count).
// Operators can feed it to Cedar's own tools to check policies offline.
//
//go:embed passport.cedarschema
var Schema string

// Names of the entity types and the action, as policies spell them.
const (
	typeUser     = "Passport::User"
	typeMachine  = "Passport::Machine"
	typeGroup    = "Passport::Group"
	typeInstance = "Passport::Instance"
	typeAction   = "Passport::Action"
)

// resolvedSchema is Schema, parsed once; it is a constant of the program,
// so a failure is a build defect.
var resolvedSchema = func() *resolved.Schema {
	var s schema.Schema
	s.SetFilename("passport.cedarschema")
	if err := s.UnmarshalCedar([]byte(Schema)); err != nil {
		panic(fmt.Sprintf("policy: the embedded schema does not parse: %v", err))
	}
	r, err := s.Resolve()
	if err != nil {
		panic(fmt.Sprintf("policy: the embedded schema does not resolve: %v", err))
	}
	return r
}()

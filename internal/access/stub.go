package access

import (
	"context"
	"errors"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

var errNotYet = errors.New("access: not implemented yet")

// Grant validates req, checks every target, signs a certificate and
// provisions the user on every target in one fan-out. When any target fails,
// every target is revoked again and the error lists each failure.
func (s *Service) Grant(ctx context.Context, req Request) (*Grant, error) { return nil, errNotYet }

// Extend moves the window's end to g.IssuedAt + duration (later or earlier):
// a new certificate for the same key, and the hosts' expiry moved.
func (s *Service) Extend(ctx context.Context, g *Grant, ca *sshca.CA, duration time.Duration) (*Grant, error) {
	return nil, errNotYet
}

// SetTargets provisions the added targets and revokes the removed ones.
func (s *Service) SetTargets(ctx context.Context, g *Grant, ca *sshca.CA, targets []string) (*Grant, error) {
	return nil, errNotYet
}

// Revoke removes the user from every target and revokes the certificate.
func (s *Service) Revoke(ctx context.Context, g *Grant) error { return errNotYet }

// Check reports whether g has expired and whether its user is still on
// every target.
func (s *Service) Check(ctx context.Context, g *Grant) (Health, error) { return Health{}, errNotYet }

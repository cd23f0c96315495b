package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
)

// serviceBroker makes requests through the Passport service, signed in as
// the caller: the service holds every AWS permission.
type serviceBroker struct {
	c   *client.Client
	url string
	ca  string
}

func (s *serviceBroker) server() string { return s.url }
func (s *serviceBroker) close() error   { return nil }

// createAttempts is how often create is sent when no answer came back: a
// dropped connection or a proxy's 503. The idempotency key makes a repeat
// find the first call's request rather than grant again.
const createAttempts = 3

func (s *serviceBroker) create(ctx context.Context, in createInput) (made, error) {
	if in.wait {
		// A create that waits picks up the same request an earlier one
		// left waiting, with the keys it kept.
		ask := api.CreateRequest{Targets: in.targets, Tags: in.tags, Reason: in.reason, Duration: in.duration.String(), Sudo: in.sudo, BreakGlass: in.breakGlass}
		if in.key.privatePEM == "" {
			ask.PublicKey = in.key.line
		}
		r, found, err := s.c.FindPending(ctx, ask)
		if err != nil {
			return made{}, err
		}
		if found {
			kept, _ := client.LoadPending(r.ID)
			m := made{req: r}
			if kept.PrivateKey != "" {
				m.key = &requestKey{line: r.PublicKey, privatePEM: kept.PrivateKey}
			}
			return s.waitFor(ctx, in, m, kept.PasswordKey)
		}
	}
	// The instances say which targets run Windows, whose passwords need a
	// key of ours, and give the targets their names. Not knowing them is
	// no reason to fail: a key is made anyway, and ids stand in for names.
	known, lookupErr := s.c.Targets(ctx, client.TargetFilter{Tags: in.tags})
	names := map[string]string{}
	windows := lookupErr != nil
	for _, i := range known {
		names[i.InstanceID] = i.ComputerName
		if i.Platform == access.Windows && (len(in.tags) > 0 || slices.Contains(in.targets, i.InstanceID)) {
			windows = true
		}
	}
	body := api.CreateRequest{Targets: in.targets, Tags: in.tags, Reason: in.reason, Duration: in.duration.String(), Sudo: in.sudo, PublicKey: in.key.line, BreakGlass: in.breakGlass}
	var seal *client.PasswordKey
	if windows {
		var err error
		if seal, err = client.NewPasswordKey(); err != nil {
			return made{}, err
		}
		body.PasswordKey = seal.Public()
	}
	var r api.Request
	var err error
	for attempt := 1; ; attempt++ {
		r, err = s.c.Create(ctx, body, in.idempotencyKey)
		code := client.CodeOf(err)
		if err == nil || attempt == createAttempts || (code != "" && code != api.CodeUnavailable) {
			break
		}
		select {
		case <-ctx.Done():
			return made{}, err
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
	if err != nil {
		return made{}, err
	}
	m := made{req: r, names: names}
	if client.Waiting(r) {
		// Kept for a later create --wait that picks it up.
		if err := client.KeepPending(r.ID, client.Pending{PrivateKey: in.key.privatePEM, PasswordKey: seal}); err != nil {
			return m, err
		}
		if !in.wait {
			return m, nil
		}
		return s.waitFor(ctx, in, m, seal)
	}
	return openSealed(m, seal)
}

// waitFor waits until m's request is decided, and opens its passwords
// with seal once granted.
func (s *serviceBroker) waitFor(ctx context.Context, in createInput, m made, seal *client.PasswordKey) (made, error) {
	r, err := s.c.Wait(ctx, m.req.ID, in.progress)
	if err != nil {
		return m, fmt.Errorf("waiting for access request %s: %w (it still waits; run the same request create with --wait to wait again)", m.req.ID, err)
	}
	m.req = r
	if !client.Waiting(r) {
		client.DropPending(r.ID)
	}
	return openSealed(m, seal)
}

// openSealed opens the Windows passwords m's request carries.
func openSealed(m made, seal *client.PasswordKey) (made, error) {
	r := m.req
	var err error
	if seal != nil && len(r.SealedPasswords) > 0 {
		// A password that does not open is reported, but the request is
		// still kept: its Linux targets and other passwords work.
		m.passwords, err = seal.Open(r)
		if err != nil {
			return m, &partialError{made: m, err: err}
		}
	}
	return m, nil
}

func (s *serviceBroker) extend(ctx context.Context, id string, d time.Duration) (api.Request, error) {
	return s.c.Extend(ctx, id, d)
}

func (s *serviceBroker) end(ctx context.Context, id string) (api.Request, error) {
	return s.c.End(ctx, id)
}

func (s *serviceBroker) list(ctx context.Context, all bool, state string) ([]api.Request, error) {
	return s.c.List(ctx, client.ListOptions{All: all, State: state})
}

// partialError is a create that granted access but could not deliver all
// of it (a Windows password that would not open): the request is kept and
// the error said.
type partialError struct {
	made made
	err  error
}

func (e *partialError) Error() string { return e.err.Error() }
func (e *partialError) Unwrap() error { return e.err }

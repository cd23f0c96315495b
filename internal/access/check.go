package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
)

// Check reports whether g still stands. Once the window has ended it says
// so without asking any host; before that it runs a read-only program on
// every Active target and reports those where the user or its grant record
// has vanished, and those that could not be asked. Either finding means
// the request should be replaced, not silently re-created. The error is for
// when no host could be asked at all.
func (s *Service) Check(ctx context.Context, g *Grant) (Health, error) {
	if g == nil {
		return Health{}, errors.New("access: Check of a nil grant")
	}
	if !s.now().Before(g.ExpiresAt) {
		return Health{Expired: true}, nil
	}
	active := ids(g.Targets, Active)
	if len(active) == 0 {
		return Health{}, nil
	}
	p, err := checkPrograms(g, active)
	if err != nil {
		return Health{}, fmt.Errorf("building the check program for %s: %w", g.ID, err)
	}
	runs, err := s.run(ctx, "check", g.ID, g.Username, p, active, g.platformOf)
	if err != nil {
		return Health{}, err
	}
	var h Health
	for _, r := range runs {
		if !r.ok {
			h.Unreachable = append(h.Unreachable, r.id)
			continue
		}
		// A result that does not parse is a host that could not be
		// checked, not evidence that the user is gone.
		switch p, err := hostscript.ParsePresence(r.result); {
		case err != nil:
			h.Unreachable = append(h.Unreachable, r.id)
		case !p.Present():
			h.Missing = append(h.Missing, r.id)
		}
	}
	return h, nil
}

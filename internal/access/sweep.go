package access

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// Stray is a Passport user on a host that no open grant accounts for: left
// by a run that was never recorded, or made behind Passport's back.
type Stray struct {
	InstanceID string
	Username   string
	// Platform is the host's, as Inventory.Platforms reports it; empty is
	// Linux.
	Platform string
}

// Inventory is what the hosts of one sweep said.
type Inventory struct {
	// Users maps each host that answered to the Passport users it has
	// (members of Passport's group, or holders of a grant record).
	Users map[string][]hostscript.HostUser
	// Unreachable lists the hosts that could not be asked, each with why.
	Unreachable []string
	// Truncated lists hosts with more users than one answer holds; the
	// users past the first are found on later sweeps, once those are gone.
	Truncated []string
	// Platforms maps each host asked to its platform, Linux or Windows.
	Platforms map[string]string
}

// HostUsers runs the read-only inventory program of each host's platform
// on targets; nodes of other platforms are skipped, as they cannot hold a
// Passport user. It changes nothing; the error is for when no host could be
// asked at all.
func (s *Service) HostUsers(ctx context.Context, targets []string) (Inventory, error) {
	inv := Inventory{Users: make(map[string][]hostscript.HostUser), Platforms: make(map[string]string)}
	if len(targets) == 0 {
		return inv, nil
	}
	nodes, err := s.fleetInventory(ctx, targets)
	if err != nil {
		return inv, err
	}
	var asked []string
	for _, id := range targets {
		switch n := nodes[id]; {
		case n.Unreachable() != "":
			inv.Unreachable = append(inv.Unreachable, n.Unreachable())
		case n.PlatformType == Linux || n.PlatformType == Windows:
			inv.Platforms[id] = n.PlatformType
			asked = append(asked, id)
		}
	}
	if len(asked) == 0 {
		return inv, nil
	}
	p := programs{linux: hostscript.Inventory(), windows: hostscript.InventoryWindows()}
	runs, err := s.run(ctx, "inventory", "sweep", "", p, asked, func(id string) string { return inv.Platforms[id] })
	if err != nil {
		return inv, err
	}
	for _, h := range runs {
		if !h.ok {
			inv.Unreachable = append(inv.Unreachable, h.why)
			continue
		}
		inv.Users[h.id] = h.result.Inventory
		if h.result.Truncated {
			inv.Truncated = append(inv.Truncated, h.id)
		}
	}
	return inv, nil
}

// RemoveStrays removes each stray user with the revoke program, the same
// one Revoke runs, and records a swept event per host where the program
// found something to remove (a revoke-failed one where it failed). A host
// where the user was already gone records nothing: the inventory that
// named it is older than the revoke that removed it. No certificate serial
// is known for a stray, so none enters the host's revoked keys: the user
// it would open is what goes. It returns the strays removed, and an error
// naming each user and host that remain.
//
// by is who sweeps, as the audit trail names them.
func (s *Service) RemoveStrays(ctx context.Context, by string, strays []Stray) ([]Stray, error) {
	s = s.as(by)
	byUser := make(map[string][]string)
	platforms := make(map[string]string)
	var users []string
	for _, st := range strays {
		platforms[st.InstanceID] = st.Platform
		if !slices.Contains(users, st.Username) {
			users = append(users, st.Username)
		}
		byUser[st.Username] = append(byUser[st.Username], st.InstanceID)
	}
	var errs []error
	var removed []Stray
	for _, user := range users {
		// A stray has no grant, so no certificate serial is known: the
		// program removes the user it would open.
		stray := &Grant{Username: user, Requester: user, Targets: make([]Target, len(byUser[user]))}
		for i, id := range byUser[user] {
			stray.Targets[i] = Target{InstanceID: id, Platform: platforms[id]}
		}
		p, err := revokePrograms(stray, byUser[user])
		if err != nil {
			errs = append(errs, fmt.Errorf("stray user %q: %w", user, err))
			continue
		}
		runs, err := s.run(ctx, "revoke", "sweep", user, p, byUser[user], stray.platformOf)
		if err != nil {
			errs = append(errs, fmt.Errorf("stray user %s was not removed: %w", user, err))
			continue
		}
		for _, h := range runs {
			switch {
			case !h.ok:
				detail := "stray user " + user + " not removed: " + h.why
				errs = append(errs, errors.New(detail), s.event(ctx, stray, ledger.ActionRevokeFailed, h.id, detail))
			case h.result.Fields["removed"] != "yes":
				// Gone before this program reached the host: whoever closed
				// its grant after the hosts were asked (a destroy, another
				// reconciler) revoked it, and says so in the trail. There
				// was nothing to sweep.
			default:
				removed = append(removed, Stray{InstanceID: h.id, Username: user, Platform: platforms[h.id]})
				errs = append(errs, s.event(ctx, stray, ledger.ActionSwept, h.id, "no open grant accounts for Passport user "+user+" on this host"))
				stray.target(h.id).Status = Revoked
			}
		}
		errs = append(errs, s.collectAfterRevoke(ctx, stray, user, byUser[user]))
	}
	return removed, errors.Join(errs...)
}

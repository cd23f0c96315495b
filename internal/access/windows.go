package access

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"maps"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
)

// sealKeyBits is the size of the one-off RSA key each Windows provision
// seals its passwords to. A Windows host makes its own user's password, so
// the password never travels in a command SSM stores; what comes back in
// the command's output opens only with this key, which lives in memory for
// the length of one provision and is then dropped.
const sealKeyBits = 3072

// provisionPrograms builds the provision program of each platform among
// targets. The key is nil when no target is Windows.
func provisionPrograms(g *Grant, targets []string, requireRecording bool) (programs, *rsa.PrivateKey, error) {
	var p programs
	var err error
	p.linux, err = hostscript.Provision(hostscript.Grant{
		Username:    g.Username,
		RequestID:   g.ID,
		Requester:   hostRequester(g.Requester),
		CAPublicKey: g.CAPublicKey,
		ExpiresAt:   g.ExpiresAt,
		Sudo:        g.Sudo,
		Serial:      g.Serial,
		// Policy's rule, where it requires recording and refuses a host
		// that cannot (see provisionRecorded).
		RequireRecording: requireRecording,
	})
	if err != nil || !hasWindows(targets, g.platformOf) {
		return p, nil, err
	}
	seal := g.SealTo
	var key *rsa.PrivateKey
	if seal == nil {
		if key, err = rsa.GenerateKey(rand.Reader, sealKeyBits); err != nil {
			return p, nil, fmt.Errorf("making the key Windows passwords are sealed to: %w", err)
		}
		seal = &key.PublicKey
	}
	// Administrators goes with sudo: both are "may administer the host",
	// and policy has already decided whether this request may.
	p.windows, err = hostscript.ProvisionWindows(hostscript.WindowsGrant{
		Username:  g.Username,
		RequestID: g.ID,
		Requester: hostRequester(g.Requester),
		ExpiresAt: g.ExpiresAt,
		Admin:     g.Sudo,
		SealKey:   seal,
	})
	return p, key, err
}

// openPasswords opens the sealed password each Windows host of runs
// reported and keeps it in g.Passwords. A host whose password cannot be
// opened counts as failed: its user exists, but nobody could log on as it,
// so the caller's undo removes it like any other failure. The reason never
// holds the password or its ciphertext.
func openPasswords(g *Grant, key *rsa.PrivateKey, runs []hostRun) {
	for i := range runs {
		h := &runs[i]
		if !h.ok || !isWindows(g.platformOf(h.id)) {
			continue
		}
		pw, err := hostscript.OpenPassword(key, h.result)
		if err != nil {
			h.ok = false
			h.why = fmt.Sprintf("%s: the user was created, but its password could not be read back (%v); it is removed again", h.id, err)
			continue
		}
		if g.Passwords == nil {
			g.Passwords = make(map[string]string)
		}
		g.Passwords[h.id] = pw
	}
}

// checkSealing refuses, before any host is touched, Windows targets
// without the requester's own key where the Service must never read a
// password (Config.SealedOnly).
func (s *Service) checkSealing(to *rsa.PublicKey, targets []string, platform func(string) string) error {
	if !s.sealedOnly || to != nil || !hasWindows(targets, platform) {
		return nil
	}
	return invalid("password_key", "password_key is required for Windows targets: each host seals its password to your own RSA key, so that only you can read it; nothing was changed")
}

// keepSealed keeps the sealed password each Windows host of runs reported
// in g.SealedPasswords, unopened: it was sealed to the requester's own key
// (g.SealTo). A host whose answer does not have the shape of a password
// sealed to that key counts as failed, as in openPasswords.
func keepSealed(g *Grant, runs []hostRun) {
	for i := range runs {
		h := &runs[i]
		if !h.ok || !isWindows(g.platformOf(h.id)) {
			continue
		}
		sealed, err := hostscript.SealedPassword(h.result, g.SealTo)
		if err != nil {
			h.ok = false
			h.why = fmt.Sprintf("%s: the user was created, but its sealed password is unusable (%v); it is removed again", h.id, err)
			continue
		}
		if g.SealedPasswords == nil {
			g.SealedPasswords = make(map[string]string)
		}
		g.SealedPasswords[h.id] = sealed
	}
}

// revokePrograms builds the revoke program of each platform among targets.
func revokePrograms(g *Grant, targets []string) (programs, error) {
	return forPlatforms(g, targets, func() (string, error) {
		return hostscript.Revoke(hostscript.Revocation{Username: g.Username, Serial: g.Serial, CAPublicKey: g.CAPublicKey})
	}, func() (string, error) { return hostscript.RevokeWindows(g.Username) })
}

// forPlatforms builds an operation's Linux program, and its Windows one
// when any of targets is a Windows node.
func forPlatforms(g *Grant, targets []string, linux, windows func() (string, error)) (programs, error) {
	var p programs
	var err error
	if p.linux, err = linux(); err != nil || !hasWindows(targets, g.platformOf) {
		return p, err
	}
	p.windows, err = windows()
	return p, err
}

// extendPrograms builds the extend program of each platform among targets.
func extendPrograms(g *Grant, targets []string) (programs, error) {
	return forPlatforms(g, targets,
		func() (string, error) { return hostscript.Extend(g.Username, g.ExpiresAt) },
		func() (string, error) { return hostscript.ExtendWindows(g.Username, g.ExpiresAt) })
}

// checkPrograms builds the read-only check program of each platform among
// targets; both report in the form hostscript.ParsePresence reads.
func checkPrograms(g *Grant, targets []string) (programs, error) {
	return forPlatforms(g, targets,
		func() (string, error) { return hostscript.Check(g.Username, g.ID) },
		func() (string, error) { return hostscript.CheckWindows(g.Username, g.ID) })
}

// dropPasswords forgets the passwords of targets that no longer hold the
// user: a password is only worth keeping while it opens something.
func (g *Grant) dropPasswords() {
	gone := func(id string, _ string) bool {
		for _, t := range g.Targets {
			if t.InstanceID == id {
				return t.Status != Active
			}
		}
		return true
	}
	maps.DeleteFunc(g.Passwords, gone)
	maps.DeleteFunc(g.SealedPasswords, gone)
	if len(g.Passwords) == 0 {
		g.Passwords = nil
	}
	if len(g.SealedPasswords) == 0 {
		g.SealedPasswords = nil
	}
}

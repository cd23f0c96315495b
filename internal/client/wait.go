package client

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// Requests that wait for approval: a client that asked may wait for them
// here (Wait), and one that stopped waiting may pick its request up
// later (FindPending) with the keys it kept meanwhile (KeepPending).

// Waiting reports whether r waits for approval: a pending request, or an
// active one whose longer window waits.
func Waiting(r api.Request) bool {
	return r.State == "pending" || r.State == "active" && r.Extension != nil
}

// WaitingFor says in words what r waits for: "1 more approval from
// group:admins, until 2026-12-06T10:30:00Z".
func WaitingFor(r api.Request) string {
	a := r.Approval
	if r.State == "active" && r.Extension != nil {
		a = &r.Extension.Approval
	}
	if a == nil {
		return "nothing"
	}
	need := a.Required - len(a.Given)
	who := "approvers no policy names"
	if len(a.Approvers) > 0 {
		who = strings.Join(a.Approvers, " or ")
	}
	noun := "approvals"
	if need == 1 {
		noun = "approval"
	}
	return fmt.Sprintf("%d more %s from %s, until %s", need, noun, who, a.Deadline.UTC().Format(time.RFC3339))
}

// Denied says who denied request r and why ("carol: no change ticket"),
// and whether it was denied at all.
func Denied(r api.Request) (string, bool) {
	if r.State != "denied" {
		return "", false
	}
	if r.Approval == nil || r.Approval.Denied == nil {
		return "an approver", true
	}
	return r.Approval.Denied.By + ": " + r.Approval.Denied.Comment, true
}

// Wait reads request id until it no longer waits for approval (nor is
// being provisioned after its last one), and returns it then: granted, or
// denied, expired or withdrawn. progress, when
// given, hears what it waits for whenever that changes, and at least every
// minute. When ctx ends first, Wait returns the request as it last stood
// with ctx's error.
func (c *Client) Wait(ctx context.Context, id string, progress func(api.Request)) (api.Request, error) {
	var last api.Request
	var said string
	var saidAt time.Time
	pause := time.Second
	for {
		r, err := c.Get(ctx, id)
		switch {
		case err != nil && ctx.Err() != nil:
			return last, ctx.Err()
		case err != nil && CodeOf(err) != api.CodeUnavailable && CodeOf(err) != api.CodeRateLimited:
			return last, err
		case err == nil:
			last = r
			// Provisioning follows the last approval: the approver's call
			// is making the user on the hosts.
			if !Waiting(r) && r.State != "provisioning" {
				return r, nil
			}
			if now := WaitingFor(r); progress != nil && (now != said || time.Since(saidAt) >= time.Minute) {
				progress(r)
				said, saidAt = now, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(pause*2, 10*time.Second)
	}
}

// FindPending finds the caller's own request that asks what in asks (the
// same targets, reason, duration, sudo and, when in names them, CA and
// public key), the newest first, and either still waits for approval or
// was approved after this machine stopped waiting for it (its keys are
// still kept here, so no one has collected it): a client asked again
// picks it up instead of asking anew. Without a public key in in, only a
// request whose keys were kept here (KeepPending) will do. Targets
// asked by tag are the instances the tags reach now, as the service
// resolves them.
func (c *Client) FindPending(ctx context.Context, in api.CreateRequest) (api.Request, bool, error) {
	asked := in.Targets
	if len(asked) == 0 && len(in.Tags) > 0 {
		p, err := c.Preview(ctx, api.PreviewRequest{Tags: in.Tags, Duration: in.Duration, Sudo: in.Sudo, BreakGlass: in.BreakGlass})
		if err != nil {
			return api.Request{}, false, err
		}
		for _, t := range p.Targets {
			asked = append(asked, t.InstanceID)
		}
	}
	mine, err := c.List(ctx, ListOptions{})
	if err != nil {
		return api.Request{}, false, err
	}
	want, _ := time.ParseDuration(in.Duration)
	if want == 0 {
		want = time.Hour
	}
	for _, r := range mine {
		got, _ := time.ParseDuration(r.Duration)
		var targets []string
		for _, t := range r.Targets {
			targets = append(targets, t.InstanceID)
		}
		switch {
		case r.State != "pending" && !pendingKept(r.ID):
			// Open, but not one this machine asked for and left waiting.
		case r.Reason != in.Reason, r.Sudo != in.Sudo, got != want, r.BreakGlass != in.BreakGlass, !sameSet(targets, asked):
		case in.CertificateAuthority != "" && r.CertificateAuthority != in.CertificateAuthority:
		case in.PublicKey != "" && keyOf(r.PublicKey) != keyOf(in.PublicKey):
		case in.PublicKey == "" && !pendingKept(r.ID):
		default:
			return r, true, nil
		}
	}
	return api.Request{}, false, nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// keyOf is an authorized_keys line without its comment.
func keyOf(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return line
	}
	return f[0] + " " + f[1]
}

// Pending keeps the private halves a client made for a request that
// waits: its SSH key (when the client made the pair) and its Windows
// password key. They never leave this machine; a file of the user's own
// (0600) keeps them until the request is picked up.
type Pending struct {
	PrivateKey  string       `json:"private_key,omitempty"`
	PasswordKey *PasswordKey `json:"-"`
	SealPEM     string       `json:"password_key,omitempty"`
}

func pendingPath(id string) (string, error) {
	if !strings.HasPrefix(id, "ar-") || strings.ContainsAny(id, `/\.`) {
		return "", fmt.Errorf("%q is not a request id", id)
	}
	dir, err := ConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "pending", id+".json"), nil
}

// KeepPending keeps p for request id.
func KeepPending(id string, p Pending) error {
	path, err := pendingPath(id)
	if err != nil {
		return err
	}
	if p.PasswordKey != nil {
		der, err := x509.MarshalPKCS8PrivateKey(p.PasswordKey.key)
		if err != nil {
			return err
		}
		p.SealPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("keeping the keys of %s while it waits: %w", id, err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("keeping the keys of %s while it waits: %w", id, err)
	}
	return nil
}

// LoadPending reads what KeepPending kept for request id.
func LoadPending(id string) (Pending, error) {
	var p Pending
	path, err := pendingPath(id)
	if err != nil {
		return p, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%s is not what passport keeps: %w", path, err)
	}
	if p.SealPEM != "" {
		block, _ := pem.Decode([]byte(p.SealPEM))
		if block == nil {
			return p, fmt.Errorf("%s holds no password key", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return p, fmt.Errorf("%s: %w", path, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return p, fmt.Errorf("%s: the password key is not RSA", path)
		}
		p.PasswordKey = &PasswordKey{key: rk}
	}
	return p, nil
}

// DropPending forgets what was kept for request id.
func DropPending(id string) {
	if path, err := pendingPath(id); err == nil {
		os.Remove(path)
	}
}

func pendingKept(id string) bool {
	_, err := LoadPending(id)
	return err == nil
}

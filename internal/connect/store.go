// Package connect is what the CLI's connect commands share: the live
// access requests a person holds (kept on their machine, with the key and
// certificate as OpenSSH files), Session Manager sessions to a request's
// targets that resume when the websocket drops and end with
// TerminateSession, local port tunnels over one session, and the
// ssh_config that points OpenSSH at all of it.
package connect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Request is an access request as the connect commands need it: who to
// log in as, until when, on which targets.
type Request struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	ExpiresAt time.Time `json:"expires_at"`
	// Targets are the request's active targets.
	Targets []Target `json:"targets"`
	// HasKey says whether Passport generated the key pair (the store then
	// holds the private key); otherwise the person logs in with their own
	// key, which must match the certificate.
	HasKey bool `json:"has_key"`
	// IdentityFile is the person's own private key, when the request was
	// made for its public half (`passport request create --public-key`)
	// and the private key lay beside it, so that ssh needs no -i.
	IdentityFile string `json:"identity_file,omitempty"`
	// Server is the Passport service the request was made through: the
	// connect commands open their sessions there, with the person's
	// sign-in, and need no AWS permission. Empty: Session Manager is
	// called with the person's own AWS credentials.
	Server string `json:"server,omitempty"`
	// ServerCA is the CA bundle the service's TLS certificate chains to,
	// as given when the request was made; empty for the system's roots.
	ServerCA string `json:"server_ca,omitempty"`
}

// Target is one host of a request.
type Target struct {
	InstanceID string `json:"instance_id"`
	// Name is the host's computer name as Systems Manager reports it; an
	// alias in ssh_config. Empty when it was not known at import.
	Name string `json:"name,omitempty"`
	// Address is the host's private IP address.
	Address string `json:"address,omitempty"`
	// Windows is set for a Windows target: it is reached with a password
	// over Remote Desktop, not with SSH, and ssh_config leaves it out.
	Windows bool `json:"windows,omitempty"`
}

// Credential is the secret half of a request, as imported.
type Credential struct {
	// PrivateKey is the OpenSSH PEM private key; empty when the person
	// brought their own key.
	PrivateKey string
	// Certificate is the SSH certificate in authorized_keys form.
	Certificate string
	// Passwords are the generated passwords of the Windows targets, by
	// instance id.
	Passwords map[string]string
}

// Store keeps requests in a directory, one directory per request:
// request.json, the certificate as key-cert.pub, when Passport generated
// the key pair the private key as key (mode 0600), and when the request has
// Windows targets their passwords as passwords.json (mode 0600). OpenSSH
// finds key-cert.pub beside key by itself.
type Store struct {
	Dir string
}

const (
	requestFile = "request.json"
	keyFile     = "key"
	certFile    = "key-cert.pub"
	passFile    = "passwords.json"
)

var (
	reRequestID  = regexp.MustCompile(`^ar-[0-9a-f]{16}$`)
	reInstanceID = regexp.MustCompile(`^(i|mi)-[0-9a-f]{8,17}$`)
	reUsername   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)
	reName       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$`)
)

// ValidName reports whether a computer name may serve as a host alias in
// an ssh_config: one plain word, nothing that could start another line or
// option of the config.
func ValidName(name string) bool { return reName.MatchString(name) }

// check refuses what must not reach a file name, an ssh_config line or an
// ssh command line: everything here came from a Terraform state.
func (r Request) check() error {
	if !reRequestID.MatchString(r.ID) {
		return fmt.Errorf("access request id %q is not ar- and 16 hex digits", clip(r.ID))
	}
	if !reUsername.MatchString(r.Username) {
		return fmt.Errorf("access request %s: username %q is not a Passport user name", r.ID, clip(r.Username))
	}
	if r.ExpiresAt.IsZero() {
		return fmt.Errorf("access request %s has no expiry", r.ID)
	}
	for _, t := range r.Targets {
		if !reInstanceID.MatchString(t.InstanceID) {
			return fmt.Errorf("access request %s: target %q is not an instance id", r.ID, clip(t.InstanceID))
		}
		if t.Name != "" && !reName.MatchString(t.Name) {
			return fmt.Errorf("access request %s: target %s has the unusable name %q", r.ID, t.InstanceID, clip(t.Name))
		}
	}
	if r.IdentityFile != "" && (!filepath.IsAbs(r.IdentityFile) || strings.ContainsAny(r.IdentityFile, "\x00\r\n")) {
		return fmt.Errorf("access request %s: identity file %q is not an absolute path on one line", r.ID, clip(r.IdentityFile))
	}
	if r.ServerCA != "" && (!filepath.IsAbs(r.ServerCA) || strings.ContainsAny(r.ServerCA, "\x00\r\n")) {
		return fmt.Errorf("access request %s: server CA %q is not an absolute path on one line", r.ID, clip(r.ServerCA))
	}
	if r.Server != "" {
		u, err := url.Parse(r.Server)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(r.Server, " \t\x00\r\n") {
			return fmt.Errorf("access request %s: server %q is not a Passport service's URL", r.ID, clip(r.Server))
		}
	}
	return nil
}

// Save writes r and its credential, replacing an older copy of the same
// request (an extension brings a new expiry and certificate). Each file is
// written beside its final name and renamed over it, so a reader sees the
// old files or the new, never half of one.
func (s Store) Save(r Request, c Credential) error {
	r.HasKey = c.PrivateKey != ""
	if err := r.check(); err != nil {
		return err
	}
	if err := checkCertificate(r.ID, c.Certificate); err != nil {
		return err
	}
	dir := s.requestDir(r.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the request directory: %w", err)
	}
	if r.HasKey {
		if err := writeFile(filepath.Join(dir, keyFile), []byte(c.PrivateKey), 0o600); err != nil {
			return err
		}
	} else if err := os.Remove(filepath.Join(dir, keyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := s.savePasswords(r, c.Passwords); err != nil {
		return err
	}
	return s.saveRequest(r, c.Certificate)
}

// saveRequest writes r's certificate, then r itself: request.json last,
// so that a request listed is a request whole.
func (s Store) saveRequest(r Request, certificate string) error {
	dir := s.requestDir(r.ID)
	if err := writeFile(filepath.Join(dir, certFile), []byte(strings.TrimSpace(certificate)+"\n"), 0o644); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, requestFile), append(b, '\n'), 0o600)
}

func checkCertificate(id, certificate string) error {
	if !strings.HasPrefix(certificate, "ssh-") || strings.ContainsAny(strings.TrimSpace(certificate), "\n\r") {
		return fmt.Errorf("access request %s: the certificate is not one authorized_keys line", id)
	}
	return nil
}

// savePasswords writes the Windows targets' passwords owner-only, or
// removes an older file when the request has none. A password for an
// instance that is not one of r's Windows targets is refused: it would be
// printed for the wrong host.
func (s Store) savePasswords(r Request, passwords map[string]string) error {
	name := filepath.Join(s.requestDir(r.ID), passFile)
	if len(passwords) == 0 {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	for id, pw := range passwords {
		i := slices.IndexFunc(r.Targets, func(t Target) bool { return t.InstanceID == id })
		if i < 0 || !r.Targets[i].Windows {
			return fmt.Errorf("access request %s has a password for %q, which is not one of its active Windows targets", r.ID, clip(id))
		}
		if pw == "" || strings.ContainsAny(pw, "\x00\r\n") {
			return fmt.Errorf("access request %s: the password for %s is empty or not one line", r.ID, id)
		}
	}
	b, err := json.Marshal(passwords)
	if err != nil {
		return err
	}
	return writeFile(name, b, 0o600)
}

// Password returns the generated password of Windows target instance of
// request id.
func (s Store) Password(id, instance string) (string, error) {
	b, err := os.ReadFile(filepath.Join(s.requestDir(id), passFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("access request %s holds no Windows password: %s is not one of its Windows targets", id, clip(instance))
	}
	if err != nil {
		return "", err
	}
	var passwords map[string]string
	if err := json.Unmarshal(b, &passwords); err != nil {
		return "", fmt.Errorf("%s is damaged: import the request again", filepath.Join(s.requestDir(id), passFile))
	}
	pw, ok := passwords[instance]
	if !ok {
		return "", fmt.Errorf("access request %s holds no password for %s: it is not one of its Windows targets", id, clip(instance))
	}
	return pw, nil
}

// Remove forgets request id: its key, certificate and passwords go with
// it. A request not held is no error.
func (s Store) Remove(id string) error {
	if !reRequestID.MatchString(id) {
		return fmt.Errorf("access request id %q is not ar- and 16 hex digits", clip(id))
	}
	if err := os.RemoveAll(s.requestDir(id)); err != nil {
		return fmt.Errorf("removing access request %s from %s: %w", id, s.Dir, err)
	}
	return nil
}

// Renew keeps request id's new window and certificate, after an
// extension: its key, passwords and targets stay as they are.
func (s Store) Renew(id string, expires time.Time, certificate string) error {
	r, err := s.Get(id)
	if err != nil {
		return err
	}
	if err := checkCertificate(id, certificate); err != nil {
		return err
	}
	r.ExpiresAt = expires
	if err := r.check(); err != nil {
		return err
	}
	return s.saveRequest(r, certificate)
}

// Get returns the request id as stored, or an error naming it when it is
// not held here.
func (s Store) Get(id string) (Request, error) {
	all, err := s.List()
	if err != nil {
		return Request{}, err
	}
	for _, r := range all {
		if r.ID == id {
			return r, nil
		}
	}
	return Request{}, fmt.Errorf("access request %s is not held in %s", clip(id), s.Dir)
}

// writeFile creates the file with mode from the start (never a wider mode
// for a moment, whatever the umask or an older file) and renames it into
// place.
func writeFile(name string, b []byte, mode os.FileMode) error {
	tmp := name + ".new"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, mode)
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

func (s Store) requestDir(id string) string { return filepath.Join(s.Dir, id) }

// KeyFile is the private key of request id, when Passport generated it.
func (s Store) KeyFile(id string) string { return filepath.Join(s.requestDir(id), keyFile) }

// CertificateFile is the certificate of request id.
func (s Store) CertificateFile(id string) string { return filepath.Join(s.requestDir(id), certFile) }

// KnownHostsFile is where Passport's OpenSSH invocations record host keys,
// by instance id, apart from the person's own known_hosts.
func (s Store) KnownHostsFile() string { return filepath.Join(s.Dir, "known_hosts") }

// List returns every stored request, live or not, soonest expiry first.
// A directory that is not a request is skipped; a request that cannot be
// read is an error naming it.
func (s Store) List() ([]Request, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the request store: %w", err)
	}
	var out []Request
	for _, e := range entries {
		if !e.IsDir() || !reRequestID.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.Dir, e.Name(), requestFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r Request
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s is damaged (%v): import the request again", filepath.Join(s.Dir, e.Name(), requestFile), err)
		}
		if err := r.check(); err != nil || r.ID != e.Name() {
			return nil, fmt.Errorf("%s is damaged: import the request again", filepath.Join(s.Dir, e.Name(), requestFile))
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Request) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	return out, nil
}

// Live returns the requests whose window is open at now.
func (s Store) Live(now time.Time) ([]Request, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(r Request) bool { return !now.Before(r.ExpiresAt) }), nil
}

// ExpiredError says that the only requests for a target have ended.
type ExpiredError struct {
	Target    string
	RequestID string
	ExpiresAt time.Time
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("access request %s for %s expired at %s: ask for access again (passport request create, or terraform apply and passport request import)",
		e.RequestID, e.Target, e.ExpiresAt.UTC().Format(time.RFC3339))
}

// UnknownTargetError says that no stored request names a target.
type UnknownTargetError struct {
	Target string
	Dir    string
}

func (e *UnknownTargetError) Error() string {
	return fmt.Sprintf("no access request in %s covers %q: check the instance id or name, or ask for one with `passport request create` (or import Terraform's with `passport request import`)", e.Dir, clip(e.Target))
}

// Find returns the live request for target (an instance id, or a name
// when it is unambiguous) that lasts longest, and that target.
func (s Store) Find(target string, now time.Time) (Request, Target, error) {
	all, err := s.List()
	if err != nil {
		return Request{}, Target{}, err
	}
	var expired *ExpiredError
	// Latest expiry last: the last live match wins.
	var found *Request
	var foundTarget Target
	for _, r := range all {
		for _, t := range r.Targets {
			if t.InstanceID != target && t.Name != target {
				continue
			}
			if !now.Before(r.ExpiresAt) {
				expired = &ExpiredError{Target: target, RequestID: r.ID, ExpiresAt: r.ExpiresAt}
				continue
			}
			if found != nil && foundTarget.InstanceID != t.InstanceID {
				return Request{}, Target{}, fmt.Errorf("%q names both %s and %s: use the instance id", target, foundTarget.InstanceID, t.InstanceID)
			}
			found, foundTarget = &r, t
		}
	}
	switch {
	case found != nil:
		return *found, foundTarget, nil
	case expired != nil:
		return Request{}, Target{}, expired
	}
	return Request{}, Target{}, &UnknownTargetError{Target: target, Dir: s.Dir}
}

// clip keeps an untrusted string short and printable in an error.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// IsInstanceID reports whether s has the form of a managed node's id
// (i-… for EC2, mi-… for hybrid nodes).
func IsInstanceID(s string) bool { return reInstanceID.MatchString(s) }

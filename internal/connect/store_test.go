package connect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

const testCert = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t pp-test"

func request(id string, expires time.Duration, targets ...Target) Request {
	return Request{ID: id, Username: "pp-" + id[len(id)-4:], ExpiresAt: now.Add(expires), Targets: targets}
}

func save(t *testing.T, s Store, r Request, key string) {
	t.Helper()
	if err := s.Save(r, Credential{PrivateKey: key, Certificate: testCert}); err != nil {
		t.Fatal(err)
	}
}

func TestSaveWritesKeyOwnerOnlyAndReplaces(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "requests")}
	r := request("ar-00000000000000a1", time.Hour, Target{InstanceID: "i-0123456789abcdef0"})
	// A loose umask must not widen the key's mode.
	defer setUmask(0)()
	save(t, s, r, "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n")
	for name, want := range map[string]os.FileMode{s.KeyFile(r.ID): 0o600, filepath.Join(s.Dir, r.ID): 0o700, s.Dir: 0o700} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	// Imported again, now for the person's own key: the old private key
	// must go, or OpenSSH would pair the new certificate with it.
	r.ExpiresAt = r.ExpiresAt.Add(time.Hour)
	save(t, s, r, "")
	if _, err := os.Stat(s.KeyFile(r.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the generated key is still there after importing the request for an own key: %v", err)
	}
	all, err := s.List()
	if err != nil || len(all) != 1 || !all[0].ExpiresAt.Equal(r.ExpiresAt) || all[0].HasKey {
		t.Errorf("List after the second import: %+v %v", all, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Dir, r.ID)); len(entries) != 2 {
		t.Errorf("the request directory holds %d files, want request.json and key-cert.pub", len(entries))
	}
}

func TestSaveRefusesWhatCannotBeAFileOrConfig(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	good := request("ar-00000000000000a1", time.Hour, Target{InstanceID: "i-0123456789abcdef0", Name: "web-1"})
	for _, c := range []struct {
		name string
		edit func(*Request)
		cert string
		want string
	}{
		{"id with a path", func(r *Request) { r.ID = "../../etc" }, testCert, "not ar-"},
		{"id with a newline", func(r *Request) { r.ID = "ar-00000000000000a1\nHost *" }, testCert, "not ar-"},
		{"username with a space", func(r *Request) { r.Username = "pp-a ProxyCommand" }, testCert, "username"},
		{"root", func(r *Request) { r.Username = "Root" }, testCert, "username"},
		{"target not an instance", func(r *Request) { r.Targets[0].InstanceID = "*" }, testCert, "not an instance id"},
		{"name with a newline", func(r *Request) { r.Targets[0].Name = "web\n  ProxyCommand x" }, testCert, "unusable name"},
		{"no expiry", func(r *Request) { r.ExpiresAt = time.Time{} }, testCert, "no expiry"},
		{"two-line certificate", func(*Request) {}, testCert + "\nssh-ed25519 AAAA", "one authorized_keys line"},
		{"not a certificate", func(*Request) {}, "-----BEGIN", "one authorized_keys line"},
		{"relative identity file", func(r *Request) { r.IdentityFile = "id_ed25519" }, testCert, "identity file"},
		{"identity file with a newline", func(r *Request) { r.IdentityFile = "/home/a/id\nProxyCommand x" }, testCert, "identity file"},
		{"server not a URL", func(r *Request) { r.Server = "passport.example.com" }, testCert, "not a Passport service's URL"},
		{"server with a newline", func(r *Request) { r.Server = "https://p.example.com\nHost *" }, testCert, "not a Passport service's URL"},
		{"server of another scheme", func(r *Request) { r.Server = "file:///etc/passwd" }, testCert, "not a Passport service's URL"},
		{"relative server CA", func(r *Request) { r.ServerCA = "ca.pem" }, testCert, "server CA"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := good
			r.Targets = append([]Target(nil), good.Targets...)
			c.edit(&r)
			err := s.Save(r, Credential{Certificate: c.cert})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Save: %v, want an error saying %q", err, c.want)
			}
		})
	}
	if entries, _ := os.ReadDir(s.Dir); len(entries) != 0 {
		t.Errorf("refused requests left %d entries in the store", len(entries))
	}
}

func TestFind(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	web1 := Target{InstanceID: "i-00000000000000001", Name: "web-1"}
	web2 := Target{InstanceID: "i-00000000000000002", Name: "web-2"}
	dup := Target{InstanceID: "i-00000000000000003", Name: "web-2"}
	old := Target{InstanceID: "i-00000000000000009", Name: "db-1"}
	save(t, s, request("ar-00000000000000a1", time.Hour, web1, web2), "k")
	save(t, s, request("ar-00000000000000a2", 2*time.Hour, web1), "k")
	save(t, s, request("ar-00000000000000a3", -time.Minute, old, web1), "k")
	save(t, s, request("ar-00000000000000a4", time.Hour, dup), "k")
	for _, c := range []struct {
		target, wantRequest, wantID, wantErr string
	}{
		{"i-00000000000000001", "ar-00000000000000a2", web1.InstanceID, ""},
		{"web-1", "ar-00000000000000a2", web1.InstanceID, ""},
		{"i-00000000000000002", "ar-00000000000000a1", web2.InstanceID, ""},
		{"web-2", "", "", "use the instance id"},
		{"db-1", "", "", "ar-00000000000000a3 for db-1 expired at 2026-11-24T11:59:00Z"},
		{"i-0ffffffffffffffff", "", "", `covers "i-0ffffffffffffffff"`},
		{"web-1\x1b[2J", "", "", `covers "web-1?[2J"`},
	} {
		r, tg, err := s.Find(c.target, now)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Find(%q): %v, want an error saying %q", c.target, err, c.wantErr)
			}
			continue
		}
		if err != nil || r.ID != c.wantRequest || tg.InstanceID != c.wantID {
			t.Errorf("Find(%q) = %s %s %v, want %s %s", c.target, r.ID, tg.InstanceID, err, c.wantRequest, c.wantID)
		}
	}
	var expired *ExpiredError
	if _, _, err := s.Find("db-1", now); !errors.As(err, &expired) {
		t.Errorf("an expired request's error is %T, want *ExpiredError", err)
	}
	live, err := s.Live(now)
	if err != nil || len(live) != 3 {
		t.Errorf("Live: %d requests, %v; want 3", len(live), err)
	}
}

func TestListRefusesADamagedRequest(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	save(t, s, request("ar-00000000000000a1", time.Hour, Target{InstanceID: "i-00000000000000001"}), "k")
	f := filepath.Join(s.Dir, "ar-00000000000000a1", "request.json")
	os.WriteFile(f, []byte(`{"id":"ar-00000000000000a1","username":"pp-x\nHost *","expires_at":"2026-11-24T12:00:00Z"}`), 0o600)
	if _, err := s.List(); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("List of a tampered request: %v", err)
	}
}

// A request made through the service keeps where it was made; an
// extension renews its window and certificate and keeps its key; end
// forgets it whole.
func TestRenewKeepsTheKeyAndRemoveForgets(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	r := request("ar-00000000000000a1", time.Hour, Target{InstanceID: "i-0123456789abcdef0"})
	r.Server, r.ServerCA, r.IdentityFile = "https://passport.example.com", "/etc/passport/ca.pem", ""
	save(t, s, r, "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n")
	const renewed = "ssh-ed25519-cert-v01@openssh.com AAAArenewed pp-test"
	if err := s.Renew(r.ID, r.ExpiresAt.Add(time.Hour), renewed); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(r.ID)
	if err != nil || !got.ExpiresAt.Equal(r.ExpiresAt.Add(time.Hour)) || got.Server != r.Server || got.ServerCA != r.ServerCA || !got.HasKey {
		t.Errorf("after Renew: %+v, %v; want the new expiry, the same server and key", got, err)
	}
	if b, _ := os.ReadFile(s.CertificateFile(r.ID)); strings.TrimSpace(string(b)) != renewed {
		t.Errorf("the certificate after Renew is %q", b)
	}
	if _, err := os.Stat(s.KeyFile(r.ID)); err != nil {
		t.Errorf("Renew lost the key: %v", err)
	}
	if err := s.Renew(r.ID, r.ExpiresAt, "not a certificate"); err == nil {
		t.Error("Renew took a certificate that is not one")
	}
	if err := s.Remove(r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(r.ID); err == nil {
		t.Error("a removed request is still held")
	}
	if err := s.Remove("../x"); err == nil {
		t.Error("Remove took a path for an id")
	}
}

// A request made for the person's own key logs in with the private key
// found beside it, and an -i given on the command line wins.
func TestOptionsUseTheRequestsOwnIdentityFile(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	r := request("ar-00000000000000a1", time.Hour, Target{InstanceID: "i-0123456789abcdef0"})
	r.IdentityFile = "/home/alice/.ssh/id_ed25519"
	for _, c := range []struct{ given, want string }{{"", r.IdentityFile}, {"/tmp/other", "/tmp/other"}} {
		opts, err := OpenSSH{Store: s, Proxy: []string{"passport", "proxy"}, IdentityFile: c.given}.Options(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range opts {
			if o.Key == "IdentityFile" && o.Value != c.want {
				t.Errorf("with -i %q the identity file is %q, want %q", c.given, o.Value, c.want)
			}
		}
	}
}

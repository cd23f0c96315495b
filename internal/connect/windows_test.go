package connect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mixedShow is a request with one Linux and two Windows targets, one of
// which failed: only active Windows targets carry a password into the store.
const mixedShow = `{"values":{"root_module":{"resources":[
 {"address":"passport_access_request.mixed","mode":"managed","type":"passport_access_request","name":"mixed","values":{
  "id":"ar-00000000000000b1","username":"pp-w1n","expires_at":"2026-11-24T13:00:00Z",
  "certificate":"` + testCert + `","private_key":null,
  "passwords":{"i-0000000000000000a":"Kq7-Rm4!pT9x+Wb3_Hn8#Lc2Jd6e","i-0000000000000000b":"never-stored-Ab3!"},
  "target_status":{"i-00000000000000001":"active","i-0000000000000000a":"active","i-0000000000000000b":"failed"},
  "target_addresses":{}}}]}}}`

func TestWindowsPasswordsFromTerraformToRDP(t *testing.T) {
	got, err := ParseTerraformShow(strings.NewReader(mixedShow))
	if err != nil || len(got) != 1 {
		t.Fatalf("ParseTerraformShow: %d requests, %v", len(got), err)
	}
	imp := got[0]
	windows := map[string]bool{}
	for _, tg := range imp.Request.Targets {
		windows[tg.InstanceID] = tg.Windows
	}
	if len(windows) != 2 || windows["i-00000000000000001"] || !windows["i-0000000000000000a"] {
		t.Errorf("targets %+v: want the Linux one and the active Windows one, marked", imp.Request.Targets)
	}
	if len(imp.Credential.Passwords) != 1 || imp.Credential.Passwords["i-0000000000000000a"] == "" {
		t.Errorf("imported passwords for %d targets, want only the active Windows one", len(imp.Credential.Passwords))
	}

	s := Store{Dir: filepath.Join(t.TempDir(), "requests")}
	defer setUmask(0)()
	if err := s.Save(imp.Request, imp.Credential); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(s.Dir, imp.Request.ID, passFile)
	if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want 0600", name, err, fi)
	}
	if pw, err := s.Password(imp.Request.ID, "i-0000000000000000a"); err != nil || pw != "Kq7-Rm4!pT9x+Wb3_Hn8#Lc2Jd6e" {
		t.Errorf("Password(Windows target) = %q, %v", pw, err)
	}
	if _, err := s.Password(imp.Request.ID, "i-00000000000000001"); err == nil || !strings.Contains(err.Error(), "not one of its Windows targets") {
		t.Errorf("Password(Linux target) = %v, want an error saying it is not a Windows target", err)
	}

	// ssh_config has no Host block for a target SSH cannot reach.
	cfg, err := OpenSSH{Store: s, Proxy: []string{"passport", "proxy"}, IdentityFile: "/home/me/.ssh/id_ed25519"}.SSHConfig([]Request{imp.Request}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg, "Host i-00000000000000001") || strings.Contains(cfg, "i-0000000000000000a") {
		t.Errorf("ssh_config must list the Linux target and not the Windows one:\n%s", cfg)
	}

	// Imported again without Windows targets, the old passwords go.
	imp.Request.Targets = imp.Request.Targets[:1]
	if err := s.Save(imp.Request, Credential{Certificate: testCert}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Errorf("passwords.json survived an import without Windows targets: %v", err)
	}
}

func TestSaveRefusesAPasswordForTheWrongTarget(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	r := request("ar-00000000000000b2", time.Hour, Target{InstanceID: "i-00000000000000001"}, Target{InstanceID: "i-0000000000000000a", Windows: true})
	for name, pw := range map[string]map[string]string{
		"a Linux target":   {"i-00000000000000001": "Kq7-Rm4!pT9x+Wb3_Hn8#Lc2Jd6e"},
		"another instance": {"i-0000000000000000c": "Kq7-Rm4!pT9x+Wb3_Hn8#Lc2Jd6e"},
		"two lines":        {"i-0000000000000000a": "Kq7-Rm4!\nrm -rf"},
		"empty":            {"i-0000000000000000a": ""},
	} {
		err := s.Save(r, Credential{Certificate: testCert, Passwords: pw})
		if err == nil {
			t.Errorf("%s: Save accepted the password", name)
			continue
		}
		if strings.Contains(err.Error(), "Kq7-") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
}

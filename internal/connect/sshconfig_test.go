package connect

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSSHConfigIsReadByOpenSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("OpenSSH's ssh is not installed")
	}
	// A config directory with a space and a percent sign: both need
	// quoting in ssh_config, and % would otherwise be a token.
	dir := filepath.Join(t.TempDir(), "my config 100%")
	s := Store{Dir: filepath.Join(dir, "requests")}
	web1 := Target{InstanceID: "i-00000000000000001", Name: "web-1"}
	web2 := Target{InstanceID: "i-00000000000000002", Name: "web-2"}
	twin := Target{InstanceID: "i-00000000000000003", Name: "web-2"}
	r1 := request("ar-00000000000000a1", time.Hour, web1, web2)
	r1.HasKey = true
	r2 := request("ar-00000000000000a2", 2*time.Hour, web1, twin)
	r2.HasKey = true
	o := OpenSSH{Store: s, Proxy: []string{filepath.Join(dir, "passport"), "proxy", "--profile", "ops team"}}
	text, err := o.SSHConfig([]Request{r1, r2}, now)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		alias string
		want  map[string]string
	}{
		// web-1 is in both requests: the longer one wins.
		{"web-1", map[string]string{"hostname": "i-00000000000000001", "user": r2.Username, "certificatefile": s.CertificateFile(r2.ID)}},
		{"i-00000000000000001", map[string]string{"user": r2.Username, "identityfile": s.KeyFile(r2.ID)}},
		{"i-00000000000000002", map[string]string{"user": r1.Username, "stricthostkeychecking": "accept-new", "identitiesonly": "yes",
			"userknownhostsfile": s.KnownHostsFile(),
			"proxycommand":       "'" + filepath.Join(dir, "passport") + "' proxy --profile 'ops team' %h %p"}},
	} {
		got := resolved(t, cfg, c.alias)
		for k, v := range c.want {
			// ssh -G prints paths with %% still doubled: it expands
			// tokens when it uses them.
			if g := strings.ReplaceAll(got[k], "%%", "%"); g != v {
				t.Errorf("ssh -G %s: %s = %q, want %q", c.alias, k, got[k], v)
			}
		}
	}
	// web-2 names two hosts, so it is no alias: ssh must not pick one.
	if got := resolved(t, cfg, "web-2"); got["user"] == r1.Username || got["user"] == r2.Username {
		t.Errorf("the ambiguous name web-2 resolved to a Passport host (user %s)", got["user"])
	}
}

// resolved is OpenSSH's reading of a config for host: ssh -G.
func resolved(t *testing.T, cfg, host string) map[string]string {
	t.Helper()
	out, err := exec.Command("ssh", "-G", "-F", cfg, host).Output()
	if err != nil {
		t.Fatalf("ssh -G -F %s %s: %v", cfg, host, err)
	}
	m := map[string]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		if _, seen := m[k]; !seen {
			m[k] = v
		}
	}
	return m
}

func TestOptionsNeedAKey(t *testing.T) {
	r := request("ar-00000000000000a1", time.Hour, Target{InstanceID: "i-00000000000000001"})
	o := OpenSSH{Store: Store{Dir: t.TempDir()}, Proxy: []string{"passport", "proxy"}}
	if _, err := o.Options(r); err == nil || !strings.Contains(err.Error(), "-i") {
		t.Errorf("a request for the person's own key without -i: %v", err)
	}
	o.IdentityFile = "/home/alice/.ssh/id_ed25519"
	opts, err := o.Options(r)
	if err != nil || opts[1] != (Option{"IdentityFile", "/home/alice/.ssh/id_ed25519"}) {
		t.Errorf("Options with -i: %v %v", opts, err)
	}
	o.IdentityFile = `/home/alice/"quoted"/key`
	if _, err := o.Options(r); err == nil || !strings.Contains(err.Error(), "quote") {
		t.Errorf("a key path ssh_config cannot express: %v", err)
	}
}

package sandbox

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

func validConfig() Config {
	return Config{Dir: "/var/lib/passport-lab/hosts/web-1", InstanceID: "i-0123456789abcdef0", Hostname: "web-1", Address: "127.0.10.1"}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // "" means valid
	}{
		{"valid", func(*Config) {}, ""},
		{"custom port", func(c *Config) { c.SSHPort = 2222 }, ""},
		{"fqdn hostname", func(c *Config) { c.Hostname = "web-1.internal.example" }, ""},
		{"short instance id", func(c *Config) { c.InstanceID = "i-0123" }, "InstanceID"},
		{"upper-case instance id", func(c *Config) { c.InstanceID = "i-0123456789ABCDEF0" }, "InstanceID"},
		{"instance id with a path", func(c *Config) { c.InstanceID = "i-0123456789abcdef0/../x" }, "InstanceID"},
		{"relative dir", func(c *Config) { c.Dir = "hosts/web-1" }, "absolute"},
		{"dir with a comma", func(c *Config) { c.Dir = "/tmp/a,lowerdir=/etc" }, "must not contain"},
		{"dir with a colon", func(c *Config) { c.Dir = "/tmp/a:b" }, "must not contain"},
		{"dir too long for a socket", func(c *Config) { c.Dir = "/" + strings.Repeat("d", 120) }, "too long"},
		{"empty hostname", func(c *Config) { c.Hostname = "" }, "Hostname"},
		{"hostname with a space", func(c *Config) { c.Hostname = "web 1" }, "Hostname"},
		{"hostname with a newline", func(c *Config) { c.Hostname = "web\n127.0.0.1 evil" }, "Hostname"},
		{"hostname too long", func(c *Config) { c.Hostname = strings.Repeat("a", 65) }, "Hostname"},
		{"public address", func(c *Config) { c.Address = "10.0.0.5" }, "loopback"},
		{"ipv6 loopback", func(c *Config) { c.Address = "::1" }, "loopback"},
		{"address with a port", func(c *Config) { c.Address = "127.0.0.5:22" }, "loopback"},
		{"negative port", func(c *Config) { c.SSHPort = -1 }, "SSHPort"},
		{"port too large", func(c *Config) { c.SSHPort = 70000 }, "SSHPort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("valid config rejected: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("config accepted, want an error about %s", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestSSHAddr(t *testing.T) {
	c := validConfig()
	if got := c.sshAddr(); got != "127.0.10.1:22" {
		t.Errorf("port 0: %s, want 127.0.10.1:22", got)
	}
	c.SSHPort = 2222
	if got := c.sshAddr(); got != "127.0.10.1:2222" {
		t.Errorf("port 2222: %s", got)
	}
}

// FuzzConfigValidate checks that whatever a config file says, an accepted
// config cannot smuggle options into the overlay mount, a line into
// /etc/hosts, or a host onto a non-loopback address.
func FuzzConfigValidate(f *testing.F) {
	f.Add("/var/lib/lab/web-1", "i-0123456789abcdef0", "web-1", "127.0.10.1", 0)
	f.Add("/tmp/a,upperdir=/", "i-0123456789abcdef0", "web-1", "127.0.10.1", 22)
	f.Add("/tmp/x", "i-0123456789abcdef0", "a\nb", "127.1.1.1", 2222)
	f.Add("/tmp/x", "i-0123456789abcdef0", "web", "0.0.0.0", 22)
	f.Fuzz(func(t *testing.T, dir, id, hostname, addr string, port int) {
		c := Config{Dir: dir, InstanceID: id, Hostname: hostname, Address: addr, SSHPort: port}
		if c.validate() != nil {
			return
		}
		if strings.ContainsAny(c.Dir, ",:\\\x00") || !filepath.IsAbs(c.Dir) {
			t.Errorf("accepted Dir %q", c.Dir)
		}
		if strings.ContainsAny(c.Hostname, " \t\n\r\x00/") || c.Hostname == "" {
			t.Errorf("accepted Hostname %q", c.Hostname)
		}
		if a, err := netip.ParseAddr(c.Address); err != nil || !a.Is4() || !a.IsLoopback() {
			t.Errorf("accepted Address %q", c.Address)
		}
		if !instanceIDPattern.MatchString(c.InstanceID) || strings.Contains(c.InstanceID, "/") {
			t.Errorf("accepted InstanceID %q", c.InstanceID)
		}
		c.sshAddr() // must not panic
	})
}

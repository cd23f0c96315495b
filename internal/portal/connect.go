package portal

import (
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

// connectView is how a person connects to their active request: with the
// passport CLI, signed in to the service, and their own private key,
// which never came to the service. The commands are what a person types;
// the ssh_config is what `passport ssh-config` writes for the request.
type connectView struct {
	Login string
	// Keep makes the CLI keep the request's certificate for the connect
	// commands, beside the person's key.
	Keep     string
	Commands []command
	// SSHConfig is a Host block per Linux target, for ssh, scp, rsync and
	// Ansible; empty when every target is Windows.
	SSHConfig string
	// Identity is the private key the commands assume: the usual name of
	// a key of the public key's type.
	Identity string
	CertFile string
}

type command struct{ Target, Line string }

// configHome is where the passport CLI keeps its requests on Linux
// (PASSPORT_CONFIG_DIR overrides it): the ssh_config points there.
const configHome = "~/.config/passport"

func (p *Portal) connectView(r api.Request, targets []targetView) *connectView {
	server := p.cfg.URL.String()
	c := &connectView{Login: "passport login --server " + server, Identity: identityFor(r.PublicKey), CertFile: certFileName(r.ID)}
	c.Keep = "passport request get " + r.ID + " --server " + server + " --identity " + c.Identity
	held := connect.Request{ID: r.ID, Username: r.Username, ExpiresAt: r.ExpiresAt, Server: server}
	for _, t := range targets {
		if t.Status != "active" {
			continue
		}
		name := t.InstanceID
		if t.Name != "" && connect.ValidName(t.Name) {
			name = t.Name
		}
		verb := "ssh"
		if t.Platform == "Windows" {
			verb = "rdp"
		}
		c.Commands = append(c.Commands, command{Target: name, Line: "passport " + verb + " " + name})
		held.Targets = append(held.Targets, connect.Target{InstanceID: t.InstanceID, Name: name, Windows: t.Platform == "Windows"})
	}
	osh := connect.OpenSSH{Store: connect.Store{Dir: configHome + "/requests"}, Proxy: []string{"passport", "proxy"}, IdentityFile: c.Identity}
	if hosts, err := osh.Hosts([]connect.Request{held}); err == nil {
		c.SSHConfig = strings.TrimPrefix(hosts, "\n")
	}
	return c
}

// identityFor is the usual file of the private key whose public half is
// pub (ssh-keygen's default names).
func identityFor(pub string) string {
	switch kind, _, _ := strings.Cut(pub, " "); {
	case kind == "ssh-rsa":
		return "~/.ssh/id_rsa"
	case strings.HasPrefix(kind, "ecdsa-"):
		return "~/.ssh/id_ecdsa"
	case strings.HasPrefix(kind, "sk-ssh-ed25519"):
		return "~/.ssh/id_ed25519_sk"
	case strings.HasPrefix(kind, "sk-ecdsa"):
		return "~/.ssh/id_ecdsa_sk"
	}
	return "~/.ssh/id_ed25519"
}

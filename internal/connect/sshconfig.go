package connect

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// OpenSSH is how Passport points OpenSSH at a request: the same options go
// into an ssh_config Host block and onto the command line of `passport ssh`.
type OpenSSH struct {
	Store Store
	// Proxy is the command that carries a connection, without the target
	// and port: the passport binary, "proxy" and any AWS flags.
	Proxy []string
	// IdentityFile is the person's own private key, for requests whose
	// certificate was issued for their public key.
	IdentityFile string
}

// Option is one ssh_config keyword and its value, quoted for ssh_config.
type Option struct{ Key, Value string }

// Options returns the ssh_config options that log in to r's targets
// through a Session Manager tunnel.
func (o OpenSSH) Options(r Request) ([]Option, error) {
	key := o.IdentityFile
	switch {
	case key != "":
	case r.HasKey:
		key = o.Store.KeyFile(r.ID)
	default:
		key = r.IdentityFile
	}
	if key == "" {
		return nil, fmt.Errorf("access request %s was issued for your own public key: name its private key with -i", r.ID)
	}
	var opts []Option
	add := func(k, path string) error {
		v, err := configPath(path)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		opts = append(opts, Option{k, v})
		return nil
	}
	opts = append(opts, Option{"User", r.Username})
	if err := add("IdentityFile", key); err != nil {
		return nil, err
	}
	if err := add("CertificateFile", o.Store.CertificateFile(r.ID)); err != nil {
		return nil, err
	}
	// Only the request's key: an agent full of other keys would otherwise
	// be tried first and could exhaust sshd's MaxAuthTries.
	opts = append(opts, Option{"IdentitiesOnly", "yes"})
	proxy, err := o.proxyCommand()
	if err != nil {
		return nil, err
	}
	opts = append(opts, Option{"ProxyCommand", proxy})
	// Host keys are recorded by instance id in Passport's own file: the
	// first login to a new host accepts its key, a changed key is refused.
	if err := add("UserKnownHostsFile", o.Store.KnownHostsFile()); err != nil {
		return nil, err
	}
	opts = append(opts, Option{"StrictHostKeyChecking", "accept-new"})
	return opts, nil
}

// proxyCommand is the rest of a ProxyCommand line, which OpenSSH hands to
// the shell after expanding %h and %p.
func (o OpenSSH) proxyCommand() (string, error) {
	if len(o.Proxy) == 0 {
		return "", fmt.Errorf("no proxy command")
	}
	parts := make([]string, 0, len(o.Proxy)+2)
	for _, a := range o.Proxy {
		if strings.ContainsAny(a, "\n\r\x00") {
			return "", fmt.Errorf("proxy argument %q holds a line break", clip(a))
		}
		parts = append(parts, strings.ReplaceAll(shellQuote(a), "%", "%%"))
	}
	return strings.Join(append(parts, "%h", "%p"), " "), nil
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@+-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// configPath quotes a file name for ssh_config, which expands % tokens and
// splits on white space; names OpenSSH cannot quote are refused.
func configPath(p string) (string, error) {
	if strings.ContainsAny(p, "\"\\'\n\r\x00") {
		return "", fmt.Errorf("the path %q holds a quote, backslash or line break, which ssh_config cannot express: move the Passport config directory", clip(p))
	}
	p = strings.ReplaceAll(p, "%", "%%")
	if strings.ContainsAny(p, " \t") {
		p = `"` + p + `"`
	}
	return p, nil
}

// Args returns options as OpenSSH command-line arguments (-o Key=Value).
func Args(opts []Option) []string {
	args := make([]string, 0, 2*len(opts))
	for _, o := range opts {
		args = append(args, "-o", o.Key+"="+o.Value)
	}
	return args
}

// SSHConfig renders an ssh_config for the live requests: a header saying
// when it was written (now), then Hosts.
func (o OpenSSH) SSHConfig(live []Request, now time.Time) (string, error) {
	hosts, err := o.Hosts(live)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("# Written by passport ssh-config at %s for the live access requests.\n", now.UTC().Format(time.RFC3339)) +
		"# Each entry stops working when its request expires; run passport ssh-config again after a new request.\n" + hosts, nil
}

// Hosts renders one ssh_config Host block per target of the live
// requests: the alias is the instance id, and the computer name where it
// names one target only. A target in several live requests is reached
// through the one that lasts longest. Windows targets are left out: they
// take Remote Desktop with a password (passport rdp), not SSH.
func (o OpenSSH) Hosts(live []Request) (string, error) {
	type entry struct {
		req    Request
		target Target
	}
	latest := map[string]entry{}
	var order []string
	names := map[string]int{}
	for _, r := range live {
		for _, t := range r.Targets {
			if t.Windows {
				continue
			}
			prev, seen := latest[t.InstanceID]
			if !seen {
				order = append(order, t.InstanceID)
				if t.Name != "" {
					names[t.Name]++
				}
			}
			if !seen || r.ExpiresAt.After(prev.req.ExpiresAt) {
				latest[t.InstanceID] = entry{r, t}
			}
		}
	}
	var b strings.Builder
	for _, id := range order {
		e := latest[id]
		opts, err := o.Options(e.req)
		if err != nil {
			return "", err
		}
		aliases := id
		if n := e.target.Name; n != "" && names[n] == 1 {
			aliases += " " + n
		}
		fmt.Fprintf(&b, "\n# access request %s, expires %s\nHost %s\n    HostName %s\n", e.req.ID, e.req.ExpiresAt.UTC().Format(time.RFC3339), aliases, id)
		for _, opt := range opts {
			fmt.Fprintf(&b, "    %s %s\n", opt.Key, opt.Value)
		}
	}
	return b.String(), nil
}

// Package sandbox boots Linux hosts for the lab that Passport cannot tell
// from real machines: each has its own PID, mount, UTS and IPC namespaces,
// its own users and files, a real OpenSSH sshd on its own loopback address,
// and an agent that runs Run Command scripts under a real shell as root.
// Nothing a host does touches the machine's own users or files.
//
// A host's first process is the calling binary re-executed under the name
// "passport-sandbox-init" (the reexec pattern): this package's init function
// recognises that name and runs the host's init instead of the program, so
// every binary that links the package, test binaries included, can boot
// hosts. The init mounts an overlay of the machine's root filesystem (or
// of a Debian release's tree, Config.Root) with the upper layer in the
// host's state directory, so the host can change anything while the
// machine's files stay untouched, and its disk survives Stop and Start as
// an EBS volume would. A release host may boot the release's own systemd
// as its first process (Config.Systemd, systemd_linux.go).
//
// Hosts need Linux, root and the distribution's sshd; Available says why
// not when they cannot boot.
//
// What a host is not: a security boundary against hostile root code. Hosts
// share the machine's kernel and network namespace (each listens on its own
// 127.x.y.z), have no resource limits, and see the machine's files through
// the overlay's lower layer, except their own state directory,
// Config.Hidden, and /root, which a new disk starts empty. Guard rails keep
// the scripts Passport runs from harming the machine by accident: a /dev
// without disks, a read-only /proc/sys and /sys, and no capabilities to set
// the clock, configure the network, load modules or make device nodes.
package sandbox

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// Config describes one host.
type Config struct {
	Dir        string            // the host's state directory (created; survives Stop/Start)
	InstanceID string            // "i-" + 17 hex digits
	Hostname   string            // the host's name (sethostname, /etc/hostname)
	Address    string            // 127.x.y.z: sshd listens here, in the machine's network
	SSHPort    int               // 0 = 22
	Tags       map[string]string // instance tags, reported in Info
	// Hidden lists machine directories the host must not see through its
	// overlay (the lab's own state, other hosts' disks); each is covered
	// with an empty read-only directory. Dir is always hidden.
	Hidden []string
	// Schedulers starts cron and atd in the host, as a Debian server runs
	// them; the root filesystem needs the cron and at packages. Without it,
	// jobs can still be queued but nothing runs them. Systemd hosts run
	// them as units whatever this says.
	Schedulers bool
	// Root is the root filesystem the host boots from, the read-only layer
	// under its disk: a Debian release's, built by package rootfs. Empty
	// for the machine's own, the fast default.
	Root string
	// Systemd boots the release's systemd as the host's first process
	// instead of the lab's init, so sshd, cron, atd, logind and timers run
	// as units, as on a Debian server. It needs Root and a cgroup2
	// hierarchy it can delegate (SystemdAvailable).
	Systemd bool
}

// AgentVersion is the SSM agent version hosts report.
const AgentVersion = "3.3.0.0"

// initName is argv[0] of a host's init; Kill relies on it to recognise one.
const initName = "passport-sandbox-init"

// sshdPath and keygenPath are the distribution's OpenSSH binaries, used
// unchanged inside every host.
const (
	sshdPath   = "/usr/sbin/sshd"
	keygenPath = "/usr/bin/ssh-keygen"
)

var (
	instanceIDPattern = regexp.MustCompile(`^i-[0-9a-f]{17}$`)
	hostnamePattern   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
)

// maxSocketPath is what fits in sockaddr_un.sun_path with its terminator.
const maxSocketPath = 107

func (c Config) port() int {
	if c.SSHPort == 0 {
		return 22
	}
	return c.SSHPort
}

func (c Config) sshAddr() string {
	return netip.AddrPortFrom(netip.MustParseAddr(c.Address), uint16(c.port())).String()
}

func (c Config) socketPath() string { return filepath.Join(c.Dir, "agent.sock") }

func (c Config) validate() error {
	if !instanceIDPattern.MatchString(c.InstanceID) {
		return fmt.Errorf("sandbox host: InstanceID %q must be \"i-\" followed by 17 lowercase hex digits", c.InstanceID)
	}
	name := c.InstanceID
	if !filepath.IsAbs(c.Dir) {
		return fmt.Errorf("sandbox host %s: Dir %q must be an absolute path", name, c.Dir)
	}
	// The path goes into overlay mount options, where these separate values.
	if strings.ContainsAny(c.Dir, ",:\\\x00") {
		return fmt.Errorf("sandbox host %s: Dir %q must not contain ',', ':', '\\' or NUL", name, c.Dir)
	}
	if n := len(c.socketPath()); n > maxSocketPath {
		return fmt.Errorf("sandbox host %s: Dir %q is too long for the agent's unix socket (%d bytes, at most %d); choose a shorter state directory", name, c.Dir, n, maxSocketPath)
	}
	if len(c.Hostname) > 64 || !hostnamePattern.MatchString(c.Hostname) {
		return fmt.Errorf("sandbox host %s: Hostname %q is not a valid host name (letters, digits, hyphens and dots, at most 64 characters)", name, c.Hostname)
	}
	if c.Root != "" && (!filepath.IsAbs(c.Root) || filepath.Clean(c.Root) == "/" || strings.ContainsAny(c.Root, ",:\\\x00")) {
		return fmt.Errorf("sandbox host %s: Root %q must be an absolute path other than /, without ',', ':', '\\' or NUL", name, c.Root)
	}
	if c.Systemd && c.Root == "" {
		return fmt.Errorf("sandbox host %s: Systemd needs a Root with systemd in it (a release built by package rootfs); the machine's own root has none", name)
	}
	for _, p := range c.Hidden {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
			return fmt.Errorf("sandbox host %s: Hidden path %q must be an absolute path other than /", name, p)
		}
	}
	addr, err := netip.ParseAddr(c.Address)
	if err != nil || !addr.Is4() || !addr.IsLoopback() {
		return fmt.Errorf("sandbox host %s: Address %q must be an IPv4 loopback address such as 127.0.10.1", name, c.Address)
	}
	if c.SSHPort < 0 || c.SSHPort > 65535 {
		return fmt.Errorf("sandbox host %s: SSHPort %d is out of range (0 means 22)", name, c.SSHPort)
	}
	return nil
}

// Available returns nil when hosts can boot on this machine, and otherwise
// says what is missing, for t.Skip and for `passport lab up` to print.
func Available() error { return available("/") }

// available is Available for hosts booting from root.
func available(root string) error {
	if runtime.GOOS != "linux" {
		return errors.New("sandbox hosts cannot boot here: they need Linux (namespaces, overlayfs), this is " + runtime.GOOS)
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (hosts need mount and PID namespaces; run as root)")
	}
	for _, bin := range []string{sshdPath, keygenPath} {
		if _, err := os.Stat(filepath.Join(root, bin)); err != nil {
			missing = append(missing, filepath.Join(root, bin)+" (install the openssh-server package)")
		}
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fs), "\toverlay\n") {
		missing = append(missing, "the overlay filesystem (modprobe overlay)")
	}
	if len(missing) > 0 {
		return errors.New("sandbox hosts cannot boot here: missing " + strings.Join(missing, "; "))
	}
	return nil
}

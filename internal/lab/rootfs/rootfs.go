// Package rootfs builds the root filesystems of Debian releases that lab
// hosts boot from (sandbox.Config.Root), so that Passport's host programs
// meet each release's own OpenSSH, sudo, useradd, cron, at and systemd
// rather than only the machine's. A release is built once with debootstrap
// (minbase, then the packages a server has) into a cache outside any
// checkout, and reused by every later lab and test run.
package rootfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Release is a Debian release lab hosts can run.
type Release struct {
	Name    string // the codename, as debootstrap and --release take it
	Version string // the Debian version, as /etc/os-release says it
}

// Releases are the releases the lab builds: three OpenSSH generations
// (8.4, 9.2 and 10.0) and three of systemd.
var Releases = []Release{
	{Name: "bullseye", Version: "11"},
	{Name: "bookworm", Version: "12"},
	{Name: "trixie", Version: "13"},
}

// Lookup finds a release by codename or version number.
func Lookup(name string) (Release, error) {
	for _, r := range Releases {
		if name == r.Name || name == r.Version {
			return r, nil
		}
	}
	names := make([]string, len(Releases))
	for i, r := range Releases {
		names[i] = r.Name + " (" + r.Version + ")"
	}
	return Release{}, fmt.Errorf("%q is not a Debian release the lab builds; use one of %s", name, strings.Join(names, ", "))
}

// Packages are installed on top of minbase: what a Debian server runs and
// Passport's programs use (sshd and ssh-keygen, sudo and visudo, cron and
// at, pkill), and systemd with logind and D-Bus for hosts that boot it.
var Packages = []string{
	"openssh-server", "sudo", "cron", "at", "procps",
	"systemd", "systemd-sysv", "dbus", "libpam-systemd",
}

// DefaultCache is where built releases are kept: $PASSPORT_ROOTFS_CACHE,
// else rootfs in $PASSPORT_CACHE (scripts/tools.env's cache), else
// /var/cache/passport/rootfs: outside any checkout, so that every clone
// and run shares them.
func DefaultCache() string {
	if d := os.Getenv("PASSPORT_ROOTFS_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("PASSPORT_CACHE"); d != "" {
		return filepath.Join(d, "rootfs")
	}
	return "/var/cache/passport/rootfs"
}

// marker is the file a finished build leaves in its root; a directory
// without it is a build that did not finish.
const marker = "etc/passport-rootfs"

// Find returns the built root filesystem of a release in cache, or says
// how to build it.
func Find(cache, release string) (string, error) {
	r, err := Lookup(release)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, r.Name)
	if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
		return "", fmt.Errorf("Debian %s (%s) is not built in %s: run passport lab rootfs build --release %s (scripts/install.sh builds every release)", r.Version, r.Name, cache, r.Name)
	}
	return dir, nil
}

// Build builds a release into cache unless it is there already, and
// returns its directory. Concurrent builds of one release wait for each
// other. Progress goes to log. It needs root and debootstrap.
func Build(ctx context.Context, cache, release string, log io.Writer) (string, error) {
	r, err := Lookup(release)
	if err != nil {
		return "", err
	}
	if dir, err := Find(cache, r.Name); err == nil {
		return dir, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("building a release's root filesystem needs root (debootstrap and chroot)")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", errors.New("debootstrap is not installed: apt-get install debootstrap (scripts/install.sh does)")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(cache, r.Name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if dir, err := Find(cache, r.Name); err == nil {
		return dir, nil // another process built it while this one waited
	}

	dir := filepath.Join(cache, r.Name)
	tmp := dir + ".building"
	if err := removeAll(tmp); err != nil {
		return "", err
	}
	if err := removeAll(dir); err != nil {
		return "", err
	}
	args := []string{"--variant=minbase", "--components=main", r.Name, tmp}
	if m := Mirror(); m != "" {
		args = append(args, m)
	}
	fmt.Fprintf(log, "rootfs: debootstrap %s\n", strings.Join(args, " "))
	if err := run(ctx, log, "debootstrap", args...); err != nil {
		return "", fmt.Errorf("debootstrap of Debian %s failed (see its log above, and %s/debootstrap/debootstrap.log): %w", r.Name, tmp, err)
	}
	// Packages go in with apt inside the new root, not with debootstrap's
	// --include: its resolver cannot order systemd on trixie. No service
	// may start while they install (policy-rc.d); /proc is mounted in a
	// mount namespace of the chroot's own, which ends with it.
	if err := os.WriteFile(filepath.Join(tmp, "usr/sbin/policy-rc.d"), []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return "", err
	}
	install := "mount -t proc proc \"$1/proc\" && chroot \"$1\" apt-get install -y -q --no-install-recommends " + strings.Join(Packages, " ") + " && chroot \"$1\" apt-get clean"
	fmt.Fprintf(log, "rootfs: apt-get install %s\n", strings.Join(Packages, " "))
	if err := run(ctx, log, "unshare", "--mount", "--propagation", "private", "sh", "-c", install, "sh", tmp); err != nil {
		return "", fmt.Errorf("installing %s in Debian %s failed: %w", strings.Join(Packages, ", "), r.Name, err)
	}
	if err := finish(tmp, r); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "rootfs: Debian %s (%s) is ready in %s\n", r.Version, r.Name, dir)
	return dir, nil
}

// finish makes a built tree an image: no service blocked, no identity of
// its own (each host makes its SSH host keys and machine-id on first
// boot), nothing that fails in a container, and the marker.
func finish(root string, r Release) error {
	if err := os.Remove(filepath.Join(root, "usr/sbin/policy-rc.d")); err != nil {
		return err
	}
	keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	// Hosts have no kernel modules to load and no consoles to log in on.
	for _, unit := range []string{"systemd-modules-load.service", "getty@tty1.service", "console-getty.service"} {
		link := filepath.Join(root, "etc/systemd/system", unit)
		os.Remove(link)
		if err := os.Symlink("/dev/null", link); err != nil {
			return err
		}
	}
	os.Remove(filepath.Join(root, "etc/systemd/system/getty.target.wants/getty@tty1.service"))
	note := fmt.Sprintf("Debian %s (%s), built for Passport's lab hosts with debootstrap (minbase) and %s\n", r.Version, r.Name, strings.Join(Packages, " "))
	return os.WriteFile(filepath.Join(root, marker), []byte(note), 0o644)
}

// Mirror is the Debian archive this machine's apt uses, so that builds go
// where the machine's packages come from: $PASSPORT_DEBIAN_MIRROR, else
// the first archive (not security) in /etc/apt/sources.list.d/*.sources or
// /etc/apt/sources.list, else "" for debootstrap's own default.
func Mirror() string {
	if m := os.Getenv("PASSPORT_DEBIAN_MIRROR"); m != "" {
		return m
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	files = append(files, "/etc/apt/sources.list")
	for _, f := range files {
		if m := archiveIn(f); m != "" {
			return m
		}
	}
	return ""
}

// archiveIn reads one apt sources file (deb822 or one-line) and returns
// its first URI of a Debian archive other than the security one.
func archiveIn(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		var uris []string
		if rest, ok := strings.CutPrefix(line, "URIs:"); ok {
			uris = strings.Fields(rest)
		} else if rest, ok := strings.CutPrefix(line, "deb "); ok {
			// deb [options] URI suite components
			rest = strings.TrimSpace(rest)
			if strings.HasPrefix(rest, "[") {
				_, rest, _ = strings.Cut(rest, "]")
			}
			if f := strings.Fields(rest); len(f) > 0 {
				uris = f[:1]
			}
		}
		for _, u := range uris {
			if (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) && strings.HasSuffix(strings.TrimSuffix(u, "/"), "/debian") {
				return strings.TrimSuffix(u, "/")
			}
		}
	}
	return ""
}

// removeAll removes a tree, refusing while anything is mounted below it
// (an interrupted build's /proc), so that no mount of the machine's is
// ever removed through.
func removeAll(dir string) error {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err == nil {
		for _, line := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
				return fmt.Errorf("%s is still mounted below %s: unmount it first", f[4], dir)
			}
		}
	}
	return os.RemoveAll(dir)
}

func run(ctx context.Context, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
	cmd.Stdout, cmd.Stderr = log, log
	return cmd.Run()
}

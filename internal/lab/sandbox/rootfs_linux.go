package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// mountRoot builds the host's root filesystem under Dir/root in this
// process's new mount namespace and returns its path.
func mountRoot(cfg Config) (string, error) {
	// Without this, mounts below could propagate back to the machine's
	// namespace through shared peer groups.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return "", fmt.Errorf("making / private: %w", err)
	}
	upper, work, root := filepath.Join(cfg.Dir, "upper"), filepath.Join(cfg.Dir, "work"), filepath.Join(cfg.Dir, "root")
	for _, d := range []string{upper, work, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	lower := "/"
	if cfg.Root != "" {
		// A release's own tree has a /root of its own and no lab in it.
		lower = cfg.Root
	} else if err := freshRootHome(upper); err != nil {
		return "", err
	}
	// Overlay refuses an upper layer still held by a previous boot's mount,
	// which the kernel may release a moment after that boot's last process.
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	for deadline := time.Now().Add(3 * time.Second); ; {
		err := syscall.Mount("overlay", root, "overlay", 0, opts)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return "", fmt.Errorf("mounting the overlay root (%s): %w", opts, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	const nosuid, nodev, noexec = syscall.MS_NOSUID, syscall.MS_NODEV, syscall.MS_NOEXEC
	mounts := []struct {
		source, target, fstype string
		flags                  uintptr
		data                   string
	}{
		// proc mounted from inside the new PID namespace shows only the host.
		{"proc", "proc", "proc", nosuid | nodev | noexec, ""},
		{"sysfs", "sys", "sysfs", syscall.MS_RDONLY | nosuid | nodev | noexec, ""},
		// A /dev of its own rather than the machine's: root in the host must
		// not reach the machine's disks; mountDev fills in what it needs.
		{"dev", "dev", "tmpfs", nosuid | noexec, "mode=0755"},
		// /run and /tmp start empty at each boot, as on a real machine.
		{"run", "run", "tmpfs", nosuid | nodev, "mode=0755"},
		{"tmp", "tmp", "tmpfs", nosuid | nodev, "mode=1777"},
	}
	for _, m := range mounts {
		if err := syscall.Mount(m.source, filepath.Join(root, m.target), m.fstype, m.flags, m.data); err != nil {
			return "", fmt.Errorf("mounting /%s in the host: %w", m.target, err)
		}
	}
	if err := mountDev(filepath.Join(root, "dev")); err != nil {
		return "", err
	}
	if err := protectProc(filepath.Join(root, "proc")); err != nil {
		return "", err
	}
	// The lower layer is the machine's whole root, state directory included:
	// cover it, and what the lab asks, so the host cannot read its own upper
	// layer, its agent socket or its neighbours' disks.
	for _, p := range append([]string{cfg.Dir}, cfg.Hidden...) {
		target := filepath.Join(root, p)
		if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
			continue // not in the host's view (under /tmp or /run) or not a directory
		}
		if err := syscall.Mount("hidden", target, "tmpfs", syscall.MS_RDONLY|nosuid|nodev|noexec, "size=4k,mode=0755"); err != nil {
			return "", fmt.Errorf("hiding %s from the host: %w", p, err)
		}
	}
	return root, nil
}

// freshRootHome gives a new disk an empty /root, as a fresh image has,
// instead of the machine's (its caches, its credentials). Marking the
// directory opaque in the upper layer, before the overlay is mounted,
// hides the lower /root without copying or deleting anything.
func freshRootHome(upper string) error {
	home := filepath.Join(upper, "root")
	if _, err := os.Lstat(home); err == nil {
		return nil // made on an earlier boot, and the host's own since
	}
	if err := os.Mkdir(home, 0o700); err != nil {
		return err
	}
	if err := syscall.Setxattr(home, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		return fmt.Errorf("making the host's /root opaque: %w", err)
	}
	skel, _ := os.ReadDir("/etc/skel")
	for _, e := range skel {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/etc/skel", e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(home, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// mountDev fills the host's empty /dev as container runtimes do: the
// harmless character devices bound from the machine, a private devpts
// instance (so the host's terminals stay out of the machine's /dev/pts;
// gid 5 is Debian's fixed tty group), its own shared memory, the POSIX
// message queues of its IPC namespace (as systemd mounts them), and the
// usual links.
func mountDev(dev string) error {
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		target := filepath.Join(dev, name)
		if err := os.WriteFile(target, nil, 0o666); err != nil {
			return err
		}
		if err := syscall.Mount("/dev/"+name, target, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /dev/%s into the host: %w", name, err)
		}
	}
	for _, d := range []struct{ dir, fstype, data string }{
		{"pts", "devpts", "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{"shm", "tmpfs", "mode=1777"},
		{"mqueue", "mqueue", ""},
	} {
		target := filepath.Join(dev, d.dir)
		if err := os.Mkdir(target, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(d.fstype, target, d.fstype, syscall.MS_NOSUID|syscall.MS_NOEXEC, d.data); err != nil {
			return fmt.Errorf("mounting /dev/%s in the host: %w", d.dir, err)
		}
	}
	for link, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd",
		"stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, link)); err != nil {
			return err
		}
	}
	return nil
}

// protectProc makes read-only the parts of the host's /proc that reach
// the machine's kernel rather than the host's processes (sysctls, the
// magic SysRq key, IRQ and bus settings), as container runtimes do.
func protectProc(proc string) error {
	for _, name := range []string{"sys", "sysrq-trigger", "irq", "bus", "fs", "acpi", "scsi"} {
		p := filepath.Join(proc, name)
		if _, err := os.Stat(p); err != nil {
			continue // not in this kernel
		}
		if err := syscall.Mount(p, p, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("protecting /proc/%s: %w", name, err)
		}
		if err := syscall.Mount(p, p, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("making /proc/%s read-only: %w", name, err)
		}
	}
	return nil
}

// pivot makes root the process's root and detaches the machine's tree, so
// that nothing outside the host stays reachable (chroot would leave it one
// escape away for root).
func pivot(root string) error {
	if err := syscall.Chdir(root); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; the
	// detach below removes it without needing a directory for it.
	if err := syscall.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %s: %w", root, err)
	}
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the machine's root: %w", err)
	}
	return syscall.Chdir("/")
}

package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// init turns this process into a host's init when it was started as one;
// it must run before anything else in the program, which is why it is a
// package init and not a function the program calls.
func init() {
	if len(os.Args) == 0 || os.Args[0] != initName {
		return
	}
	// The runtime keeps package initialisation on the main thread; this
	// init never returns, so the main goroutine owns that thread for good
	// and can be the one that spawns every process in the host.
	runtime.LockOSThread()
	nameProcess()
	if err := runInit(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", initName, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// nameProcess makes ps inside the host show the init by name rather than
// as "exe", the name of the /proc/self/exe link it was started through.
// Package initialisation runs on the main thread, whose name is the
// process's.
func nameProcess() {
	name := []byte(initName[:15] + "\x00") // the kernel keeps 15 bytes
	syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0)
}

// defaultPath is the PATH systemd gives services on Debian; scripts and
// sshd see it as they would on a real host.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// bootMarker records which instance the disk was made for, as cloud-init's
// per-instance semaphores do: a disk seen for the first time gets its own
// SSH host keys and machine-id.
const bootMarker = "/var/lib/passport-sandbox/instance-id"

func runInit() error {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(initEnv)), &cfg); err != nil {
		return fmt.Errorf("reading %s: %w", initEnv, err)
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	// Nothing of the lab's environment may leak into the host's processes.
	os.Clearenv()
	os.Setenv("PATH", defaultPath)

	root, err := mountRoot(cfg)
	if err != nil {
		return err
	}
	// The agent's socket lives in the machine's view of the state
	// directory; listening before the pivot keeps it reachable from the lab
	// and out of the host's sight.
	sock := cfg.socketPath()
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("agent socket: %w", err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		return err
	}
	if err := pivot(root); err != nil {
		return err
	}
	if err := syscall.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if err := firstBoot(cfg); err != nil {
		return err
	}
	// sshd's privilege separation directory; systemd's RuntimeDirectory
	// makes it on a real host, on the /run that every boot clears.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	ignoreSignals()
	if err := dropCapabilities(); err != nil {
		return err
	}
	a := newAgent(cfg)
	go a.reaper.loop()
	go a.superviseSSHD()
	go func() {
		err := a.serve(ln)
		fmt.Fprintf(os.Stderr, "%s: the agent stopped: %v\n", initName, err)
		os.Exit(1)
	}()
	a.reaper.spawnLoop() // on the main thread, for ever
	return nil
}

// Capabilities no process in a host keeps: root in a host shares the
// machine's kernel, so these would let a script set the machine's clock,
// reconfigure its network (hosts have no network namespace), load kernel
// modules, or make device nodes for the machine's disks. Useradd, sshd
// and PAM need none of them. This guards against accidents, not against
// hostile code: CAP_SYS_ADMIN stays (sethostname, mounts inside the host).
var droppedCapabilities = []struct {
	name string
	cap  uintptr
}{
	{"CAP_NET_ADMIN", 12},
	{"CAP_SYS_MODULE", 16},
	{"CAP_SYS_RAWIO", 17},
	{"CAP_SYS_BOOT", 22},
	{"CAP_SYS_TIME", 25},
	{"CAP_MKNOD", 27},
	{"CAP_MAC_OVERRIDE", 32},
	{"CAP_MAC_ADMIN", 33},
	{"CAP_SYSLOG", 34},
	{"CAP_WAKE_ALARM", 35},
	{"CAP_BLOCK_SUSPEND", 36},
}

// dropCapabilities removes droppedCapabilities from the bounding set of
// the calling thread, the one every process in the host is forked from.
func dropCapabilities() error {
	for _, c := range droppedCapabilities {
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_CAPBSET_DROP, c.cap, 0); errno != 0 && errno != syscall.EINVAL {
			return fmt.Errorf("dropping %s from the host's capabilities: %w", c.name, errno)
		}
	}
	return nil
}

// ignoreSignals keeps a stray `kill 1` inside the host from powering it
// off: Go would die on these by default, even as PID 1. They are caught
// and dropped rather than set to SIG_IGN, because an ignored disposition
// would be inherited by sshd and every script, and `kill -HUP` to sshd
// would stop working.
func ignoreSignals() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for range sigs {
		}
	}()
}

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
	if err := freshRootHome(upper); err != nil {
		return "", err
	}
	// Overlay refuses an upper layer still held by a previous boot's mount,
	// which the kernel may release a moment after that boot's last process.
	opts := "lowerdir=/,upperdir=" + upper + ",workdir=" + work
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
// gid 5 is Debian's fixed tty group), its own shared memory, and the usual
// links.
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

// firstBoot gives a disk that was never booted as this instance its own
// identity, replacing what the overlay shows from the machine.
func firstBoot(cfg Config) error {
	if b, err := os.ReadFile(bootMarker); err == nil && string(b) == cfg.InstanceID {
		return nil
	}
	keys, _ := filepath.Glob("/etc/ssh/ssh_host_*")
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	if out, err := exec.Command(keygenPath, "-A").CombinedOutput(); err != nil {
		return fmt.Errorf("generating SSH host keys: %v: %s", err, out)
	}
	id := make([]byte, 16)
	rand.Read(id)
	files := []struct {
		path, content string
		append        bool
	}{
		{"/etc/machine-id", hex.EncodeToString(id) + "\n", false},
		{"/etc/hostname", cfg.Hostname + "\n", false},
		{"/etc/hosts", cfg.Address + "\t" + cfg.Hostname + "\n", true},
		{bootMarker, cfg.InstanceID, false},
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if f.append {
			flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		fh, err := os.OpenFile(f.path, flag, 0o644)
		if err != nil {
			return err
		}
		_, err = fh.WriteString(f.content)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	return nil
}

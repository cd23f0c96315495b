package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
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
	if cfg.Systemd {
		if err := delegateCgroup(cfg, root); err != nil {
			return err
		}
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
	var releaseAgent func()
	if cfg.Systemd {
		if releaseAgent, err = startAgent(cfg, ln); err != nil {
			return err
		}
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
	if cfg.Systemd {
		return bootSystemd(cfg, releaseAgent) // does not return when systemd starts
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
	if cfg.Schedulers {
		a.startSchedulers()
	}
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

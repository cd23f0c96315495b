package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// A systemd host's first process is the release's systemd, as on a Debian
// server; the lab's agent then runs beside it as a process of its own.
// The init starts the agent while the machine's root is still its root,
// since the binary needs the machine's C library and the release may have
// an older one; the agent waits until the init has moved the namespace
// into the host's root (pivot_root moves every process's root with it),
// and the init then hands PID 1 over to systemd. systemd is told it runs
// in a container (container=passport-sandbox) and gets a cgroup2 subtree
// of its own to manage, bound over the host's /sys/fs/cgroup.

// agentName is argv[0] of a systemd host's agent process.
const agentName = "passport-sandbox-agent"

// containerEnv is what systemd reads to know it runs in a container, and
// what Kill recognises a systemd host's first process by.
const containerEnv = "container=passport-sandbox"

func init() {
	if len(os.Args) == 0 || os.Args[0] != agentName {
		return
	}
	runtime.LockOSThread() // the spawning thread, as in the init
	if err := runAgent(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", agentName, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// cgroupBase is where this machine's cgroup2 hierarchy is mounted: the
// whole of /sys/fs/cgroup on a unified machine, /sys/fs/cgroup/unified on
// a hybrid one (cgroup1 controllers beside a cgroup2 tree).
func cgroupBase() (string, error) {
	for _, d := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			var st syscall.Statfs_t
			if syscall.Statfs(d, &st) == nil && st.Type == 0x63677270 { // CGROUP2_SUPER_MAGIC
				return d, nil
			}
		}
	}
	return "", errors.New("no cgroup2 hierarchy is mounted (neither /sys/fs/cgroup nor /sys/fs/cgroup/unified), and systemd in a host needs one to manage")
}

// SystemdAvailable returns nil when systemd hosts can boot on this
// machine, and otherwise says why not.
func SystemdAvailable() error {
	base, err := cgroupBase()
	if err != nil {
		return err
	}
	probe := filepath.Join(base, "passport-sandbox", "probe-"+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(probe, 0o755); err != nil {
		return fmt.Errorf("cannot make a cgroup under %s for a host's systemd: %w", base, err)
	}
	os.Remove(probe)
	return nil
}

// cgroupOf is the cgroup a systemd host's processes live in.
func cgroupOf(base, instanceID string) string {
	return filepath.Join(base, "passport-sandbox", instanceID)
}

// delegateCgroup moves the init into a cgroup of its own and binds it over
// the host's /sys/fs/cgroup, for systemd to manage as its whole tree, and
// gives systemd a console.
func delegateCgroup(cfg Config, root string) error {
	base, err := cgroupBase()
	if err != nil {
		return err
	}
	cg := cgroupOf(base, cfg.InstanceID)
	removeCgroup(cg) // a previous boot's, if its processes are gone
	if err := os.MkdirAll(cg, 0o755); err != nil {
		return fmt.Errorf("making the host's cgroup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("moving the host into its cgroup: %w", err)
	}
	// A cgroup namespace rooted there, so that /proc/self/cgroup says "/"
	// where the host's /sys/fs/cgroup begins; older systemd (247) looks for
	// its cgroup by that path. This is the main thread, which starts the
	// agent and becomes systemd.
	if err := syscall.Unshare(syscall.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("a cgroup namespace for the host: %w", err)
	}
	if err := syscall.Mount(cg, filepath.Join(root, "sys/fs/cgroup"), "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding the host's cgroup: %w", err)
	}
	// The host's console is its console log, where systemd writes what it
	// does at boot and why it stops, as on a serial console. The log is a
	// file of the machine's, so it is bound before the pivot.
	console := filepath.Join(root, "dev/console")
	if err := os.WriteFile(console, nil, 0o600); err != nil {
		return err
	}
	if err := syscall.Mount(filepath.Join(cfg.Dir, consoleFile), console, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding the console log to /dev/console: %w", err)
	}
	return nil
}

// removeCgroup removes a host's cgroup tree once its processes are gone
// (a cgroup is removed leaves first).
func removeCgroup(cg string) {
	var dirs []string
	filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		syscall.Rmdir(dirs[i])
	}
}

// RemoveCgroup removes the cgroup a systemd host with this instance id
// left, once it is stopped.
func RemoveCgroup(instanceID string) {
	if base, err := cgroupBase(); err == nil {
		removeCgroup(cgroupOf(base, instanceID))
	}
}

// startAgent starts a systemd host's agent with the agent's socket,
// before the pivot; it waits until the returned function lets it go on.
func startAgent(cfg Config, ln net.Listener) (func(), error) {
	f, err := ln.(*net.UnixListener).File()
	if err != nil {
		return nil, err
	}
	wait, ready, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// The agent says when it runs: its dynamic loader must have found the
	// machine's libraries before the root moves under it.
	loaded, running, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	agent := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{agentName},
		Env:        []string{initEnv + "=" + string(cfgJSON), "PATH=" + defaultPath},
		ExtraFiles: []*os.File{f, wait, running},
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
	}
	if err := agent.Start(); err != nil {
		return nil, fmt.Errorf("starting the agent beside systemd: %w", err)
	}
	agent.Process.Release()
	f.Close()
	wait.Close()
	running.Close()
	if n, _ := loaded.Read(make([]byte, 1)); n != 1 {
		return nil, errors.New("the agent beside systemd ended as it started")
	}
	loaded.Close()
	return func() { ready.Write([]byte{1}); ready.Close() }, nil
}

// bootSystemd lets the agent go on and becomes the host's systemd. It
// returns only if that fails.
func bootSystemd(cfg Config, release func()) error {
	// sshd listens on the host's address only: the machine and the other
	// hosts share the network. Debian's ssh.service passes SSHD_OPTS.
	opts := "SSHD_OPTS=\"-o ListenAddress=" + cfg.sshAddr() + "\"\n"
	if err := os.WriteFile("/etc/default/ssh", []byte("# Written by Passport's lab: where this host's sshd listens.\n"+opts), 0o644); err != nil {
		return err
	}
	if err := dropCapabilities(); err != nil {
		return err
	}
	release()
	init := "/sbin/init"
	env := []string{containerEnv, "PATH=" + defaultPath}
	err := syscall.Exec(init, []string{init}, env)
	return fmt.Errorf("starting systemd (%s): %w", init, err)
}

// runAgent is a systemd host's agent: the same as the init's, without
// sshd or schedulers to keep (systemd runs them).
func runAgent() error {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(initEnv)), &cfg); err != nil {
		return fmt.Errorf("reading %s: %w", initEnv, err)
	}
	os.Unsetenv(initEnv)
	// Tell the init this process runs, then do nothing until it has
	// pivoted into the host's root.
	running := os.NewFile(5, "running")
	running.Write([]byte{1})
	running.Close()
	wait := os.NewFile(4, "ready")
	if n, _ := wait.Read(make([]byte, 1)); n != 1 {
		return errors.New("the host's init ended before it was ready")
	}
	wait.Close()
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := dropCapabilities(); err != nil {
		return err
	}
	ln, err := net.FileListener(os.NewFile(3, "agent.sock"))
	if err != nil {
		return fmt.Errorf("the agent's socket: %w", err)
	}
	a := newAgent(cfg)
	a.systemd = true
	go a.reaper.loop()
	go func() {
		err := a.serve(ln)
		fmt.Fprintf(os.Stderr, "%s: the agent stopped: %v\n", agentName, err)
		os.Exit(1)
	}()
	a.reaper.spawnLoop()
	return nil
}

// systemdSSHD reports sshd as systemd runs it: its pid from its pid file,
// and, when ssh.service has failed, systemd's account of why.
func (a *agent) systemdSSHD() sshdState {
	var st sshdState
	if b, err := os.ReadFile("/run/sshd.pid"); err == nil {
		st.PID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if st.PID != 0 {
		return st
	}
	out, _ := a.runQuietly(exec.Command("systemctl", "is-failed", "ssh.service"))
	if strings.TrimSpace(string(out)) == "failed" {
		status, _ := a.runQuietly(exec.Command("systemctl", "status", "--no-pager", "--lines=5", "ssh.service"))
		st.LastExit = "ssh.service failed: " + strings.TrimSpace(string(status))
	}
	return st
}

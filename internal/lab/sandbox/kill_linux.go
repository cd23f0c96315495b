package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Kill ends a host whose lab died without stopping it (`passport lab down`
// after a crash), given the PID recorded from Host.PID. It refuses any
// process that is not a host init: the PID may have been reused since.
// A PID that no longer exists is not an error.
func Kill(pid int) error {
	if pid <= 1 {
		return fmt.Errorf("sandbox: refusing to kill pid %d", pid)
	}
	proc := "/proc/" + strconv.Itoa(pid)
	// A host whose lab was killed dies with it (Pdeathsig) and may linger
	// as a zombie, with an empty command line, until someone reaps it.
	if gone(proc) {
		return nil
	}
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sandbox: reading pid %d: %w", pid, err)
	}
	if len(cmdline) == 0 && waitGone(proc) {
		// Between dying and becoming a zombie a process has no memory,
		// so no command line: a host on its way out after its lab.
		return nil
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	if (string(argv0) != initName && !systemdHost(proc)) || !firstInNamespace(proc) {
		return fmt.Errorf("sandbox: pid %d is not a sandbox host init (it is %q); not killing it", pid, argv0)
	}
	// A systemd host's cgroup is removed once its processes are gone.
	if cg := hostCgroup(proc); cg != "" {
		defer removeCgroup(cg)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("sandbox: killing host init %d: %w", pid, err)
	}
	// The init is reaped by its parent (the machine's init once the lab is
	// gone); its namespace's processes all die before that.
	if !waitGone(proc) {
		return fmt.Errorf("sandbox: host init %d is still there 10s after SIGKILL", pid)
	}
	return nil
}

// waitGone waits up to 10 s for the process to end, and says whether it did.
func waitGone(proc string) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if gone(proc) {
			return true
		}
	}
	return false
}

// systemdHost reports whether the process is a systemd host's first
// process: started with the lab's container variable.
func systemdHost(proc string) bool {
	env, err := os.ReadFile(proc + "/environ")
	return err == nil && slices.ContainsFunc(bytes.Split(env, []byte{0}), func(kv []byte) bool { return string(kv) == containerEnv })
}

// hostCgroup is the cgroup2 directory of a systemd host's first process,
// or "" for a host that has none of its own.
func hostCgroup(proc string) string {
	b, err := os.ReadFile(proc + "/cgroup")
	if err != nil {
		return ""
	}
	base, err := cgroupBase()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok && strings.HasPrefix(p, "/passport-sandbox/") {
			return filepath.Join(base, p)
		}
	}
	return ""
}

// firstInNamespace reports whether the process is PID 1 of a PID namespace
// below the machine's: its NSpid line lists more than one PID, ending in 1.
func firstInNamespace(proc string) bool {
	status, err := os.ReadFile(proc + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			pids := strings.Fields(rest)
			return len(pids) > 1 && pids[len(pids)-1] == "1"
		}
	}
	return false
}

// gone reports whether the process has ended, counting a zombie whose
// parent has not reaped it yet.
func gone(proc string) bool {
	stat, err := os.ReadFile(proc + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}

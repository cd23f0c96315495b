package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

// State is what lab.json records about a running lab, so that people and
// `passport lab down` can find it.
type State struct {
	PID             int         `json:"pid"`
	PIDStart        uint64      `json:"pid_start"` // the process's start time, so a reused pid is never taken for the lab
	Endpoint        string      `json:"endpoint"`
	Region          string      `json:"region"`
	AccessKeyID     string      `json:"access_key_id"`
	SecretAccessKey string      `json:"secret_access_key"`
	Hosts           []HostState `json:"hosts"`
	ModelNodes      int         `json:"model_nodes"`
	// Identities are the operator's, the service's and the requester's
	// credentials; access_key_id and secret_access_key are the operator's.
	Identities map[string]IdentityState `json:"identities"`

	Windows []WindowsState `json:"windows,omitempty"`
}

// IdentityState records one identity's credentials.
type IdentityState struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	ARN             string `json:"arn"`
}

// WindowsState records one lab Windows host. It has no process of its
// own: it lives and dies with the lab process.
type WindowsState struct {
	InstanceID string            `json:"instance_id"`
	Hostname   string            `json:"hostname"`
	RDP        string            `json:"rdp"` // address:3389 of the lab's logon check, which is not RDP
	Tags       map[string]string `json:"tags"`
}

// HostState records one sandbox host.
type HostState struct {
	InstanceID string            `json:"instance_id"`
	Hostname   string            `json:"hostname"`
	SSH        string            `json:"ssh"` // address:port
	PID        int               `json:"pid"` // the host's init, in the machine's PID namespace
	Tags       map[string]string `json:"tags"`
	Platform   string            `json:"platform"` // the distribution and version, as SSM reports them
}

const stateFile = "lab.json"

// State returns what lab.json says about this lab.
func (l *Lab) State() State {
	s := State{
		PID: os.Getpid(), PIDStart: startTime(os.Getpid()), Endpoint: l.Endpoint, Region: l.Region,
		AccessKeyID: l.AccessKeyID, SecretAccessKey: l.SecretAccessKey,
		ModelNodes: len(l.Models),
		Identities: map[string]IdentityState{},
	}
	for name, c := range map[string]Credentials{"operator": l.Operator, "service": l.Service, "requester": l.Requester} {
		s.Identities[name] = IdentityState(c)
	}
	for _, h := range l.Hosts {
		info := h.Info()
		s.Hosts = append(s.Hosts, HostState{
			InstanceID: info.InstanceID, Hostname: info.ComputerName,
			SSH: h.SSHAddr(), PID: h.PID(), Tags: info.Tags,
			Platform: info.PlatformName + " " + info.PlatformVersion,
		})
	}
	for _, h := range l.Windows {
		info := h.Info()
		s.Windows = append(s.Windows, WindowsState{InstanceID: info.InstanceID, Hostname: info.ComputerName, RDP: h.RDPAddr(), Tags: info.Tags})
	}
	return s
}

// writeState writes lab.json and env.sh; both hold the lab's secret key,
// so only the owner may read them.
func (l *Lab) writeState() error {
	b, err := json.MarshalIndent(l.State(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.Dir, stateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("lab: writing its state: %w", err)
	}
	var env strings.Builder
	env.WriteString("# Point AWS SDKs, the AWS CLI and Passport at the lab: . ./env.sh\n" +
		"# An AWS CLI before 2.13 (Debian 12 has 2.9) ignores AWS_ENDPOINT_URL: give it\n" +
		"# --endpoint-url \"$AWS_ENDPOINT_URL\"; boto3 before 1.28 needs endpoint_url=.\n")
	for _, kv := range l.Env() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&env, "export %s='%s'\n", k, v)
	}
	return os.WriteFile(filepath.Join(l.Dir, "env.sh"), []byte(env.String()), 0o600)
}

// ReadState reads the lab.json of the lab in dir.
func ReadState(dir string) (State, error) {
	var s State
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("lab: %s is not a lab state file: %w", filepath.Join(dir, stateFile), err)
	}
	return s, nil
}

// prepareDir creates dir, refusing it when a live lab is using it and
// cleaning up after one that was killed.
func prepareDir(dir string) error {
	if s, err := ReadState(dir); err == nil && s.running() {
		return fmt.Errorf("lab: a lab (pid %d) is already running in %s: stop it, or run passport lab down --dir %s", s.PID, dir, dir)
	}
	if err := Down(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}

// Down stops what a lab in dir left running, whether it was stopped
// cleanly or killed: the lab process, then every host init it recorded or
// that still has a state directory, and then removes the state. Mounts
// need no separate step: every mount a host made lives in its own mount
// namespace, which ends with its init.
func Down(dir string) error {
	var errs []error
	s, err := ReadState(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		errs = append(errs, err)
	default:
		if s.running() {
			stop(s.PID)
		}
		for _, h := range s.Hosts {
			if err := sandbox.Kill(h.PID); err != nil {
				errs = append(errs, fmt.Errorf("host %s (pid %d): %w", h.InstanceID, h.PID, err))
				continue
			}
			// A systemd host dead with its lab left its cgroup.
			sandbox.RemoveCgroup(h.InstanceID)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab down %s: %w", dir, errors.Join(errs...))
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("lab down: removing %s: %w", dir, err)
	}
	return nil
}

// running reports whether the lab that wrote s is still running, in
// another process than this one.
func (s State) running() bool {
	return s.PID > 0 && s.PID != os.Getpid() && s.PIDStart != 0 && startTime(s.PID) == s.PIDStart
}

// startTime is field 22 of /proc/PID/stat (clock ticks since boot), or 0
// when the process does not exist.
func startTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after the last ')' are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(fields[19], 10, 64)
	return v
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// stop asks the lab process to stop (it cleans up itself on SIGTERM) and
// kills it when it does not within ten seconds.
func stop(pid int) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// SortedTags renders tags as k=v pairs in key order, for people.
func SortedTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, ",")
}

//go:build linux

package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// TestMain checks, after every test has run, that the machine is exactly as
// it was: its users, its homes, its mount table, its SSH host keys, and no
// host process left behind.
func TestMain(m *testing.M) {
	before := snapshotMachine()
	code := m.Run()
	if problems := checkMachine(before); len(problems) > 0 {
		fmt.Fprintln(os.Stderr, "sandbox hosts leaked into the machine:")
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "  "+p)
		}
		code = 1
	}
	os.Exit(code)
}

// machine is what hosts must never change on the machine.
type machine map[string]string

func snapshotMachine() machine {
	s := machine{}
	for _, f := range []string{"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/hostname", "/etc/hosts", "/etc/machine-id", "/etc/ssh/ssh_host_ed25519_key.pub", "/proc/self/mountinfo"} {
		b, err := os.ReadFile(f)
		if err != nil {
			b = []byte("unreadable: " + err.Error())
		}
		s[f] = string(b)
	}
	var home []string
	filepath.WalkDir("/home", func(path string, d fs.DirEntry, err error) error {
		if err == nil {
			info, _ := d.Info()
			if info != nil {
				home = append(home, fmt.Sprintf("%s %v %d", path, info.Mode(), info.Size()))
			}
		}
		return nil
	})
	sort.Strings(home)
	s["/home (tree)"] = strings.Join(home, "\n")
	s["hostname"], _ = os.Hostname()
	return s
}

func checkMachine(before machine) []string {
	var problems []string
	after := snapshotMachine()
	for k, v := range before {
		if after[k] != v {
			problems = append(problems, k+" changed: "+firstDifference(v, after[k]))
		}
	}
	for _, pid := range bootedPIDs() {
		if !gone(fmt.Sprintf("/proc/%d", pid)) {
			problems = append(problems, fmt.Sprintf("host init pid %d is still running", pid))
		}
	}
	return problems
}

// firstDifference shows the first line that differs between two texts.
func firstDifference(before, after string) string {
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	for i := range max(len(a), len(b)) {
		var lb, la string
		if i < len(b) {
			lb = b[i]
		}
		if i < len(a) {
			la = a[i]
		}
		if la != lb {
			return fmt.Sprintf("line %d was %q, is %q", i+1, lb, la)
		}
	}
	return "same lines"
}

var booted struct {
	sync.Mutex
	pids []int
}

func recordPID(pid int) {
	booted.Lock()
	booted.pids = append(booted.pids, pid)
	booted.Unlock()
}

func bootedPIDs() []int {
	booted.Lock()
	defer booted.Unlock()
	return append([]int(nil), booted.pids...)
}

func needHosts(tb testing.TB) {
	tb.Helper()
	if err := Available(); err != nil {
		tb.Skip(err)
	}
}

func randomInstanceID() string {
	b := make([]byte, 9)
	rand.Read(b)
	return "i-" + hex.EncodeToString(b)[:17]
}

// randomAddress picks a loopback address far from the usual ones, so that
// concurrent test runs and the machine's own services do not collide.
func randomAddress() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<16))
	x := n.Int64()
	return fmt.Sprintf("127.201.%d.%d", x>>8, 1+(x&0xff)%254)
}

func testConfig(t testing.TB, hostname string) Config {
	return Config{
		Dir:        t.TempDir(),
		InstanceID: randomInstanceID(),
		Hostname:   hostname,
		Address:    randomAddress(),
		Tags:       map[string]string{"Name": hostname},
	}
}

// bootHost boots a host that is closed when the test ends.
func bootHost(t testing.TB, hostname string) *Host {
	t.Helper()
	needHosts(t)
	return bootConfig(t, testConfig(t, hostname))
}

func bootConfig(t testing.TB, cfg Config) *Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := Boot(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	recordPID(h.PID())
	t.Cleanup(func() { h.Close() })
	return h
}

func (h *Host) mustStart(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	recordPID(h.PID())
}

// sh runs a shell script on the host and fails the test unless it exits 0.
func sh(t testing.TB, h *Host, source string) string {
	t.Helper()
	res := shResult(t, h, source)
	if res.ExitCode != 0 {
		t.Fatalf("script on %s exited %d\nscript:\n%s\nstdout:\n%s\nstderr:\n%s", h, res.ExitCode, source, res.Stdout, res.Stderr)
	}
	return strings.TrimSpace(string(res.Stdout))
}

func shResult(t testing.TB, h *Host, source string) node.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := h.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: source})
	if err != nil {
		t.Fatalf("running a script on %s: %v", h, err)
	}
	return res
}

// eventually polls cond until it holds, for at most a minute.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: still not true after a minute", what)
}

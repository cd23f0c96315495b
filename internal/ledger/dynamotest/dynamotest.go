// Package dynamotest starts a DynamoDB-compatible server for a test:
// dynalite (npm; its conditional writes are atomic, it has no TTL or
// transactions) or moto_server (Python; TTL and transactions, but racing
// conditional writes can both succeed). Tests that need one skip, saying
// what to install, when it is not there.
package dynamotest

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Server names a DynamoDB-compatible server.
type Server string

const (
	Dynalite Server = "dynalite"
	Moto     Server = "moto_server"
)

// Start starts s on a free loopback port for the rest of the test and
// returns its endpoint URL once it accepts connections.
func Start(t testing.TB, s Server) string {
	t.Helper()
	var path string
	var err error
	switch s {
	case Dynalite:
		// $PASSPORT_DYNALITE, then PATH (npm install -g dynalite@4.0.0).
		if path = os.Getenv("PASSPORT_DYNALITE"); path == "" {
			if path, err = exec.LookPath("dynalite"); err != nil {
				t.Skip("dynalite is not installed (npm install -g dynalite@4.0.0, or set PASSPORT_DYNALITE)")
			}
		}
	case Moto:
		if path, err = exec.LookPath("moto_server"); err != nil {
			t.Skip("moto_server is not installed (pip install 'moto[server]')")
		}
	default:
		t.Fatalf("dynamotest: unknown server %q", s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var cmd *exec.Cmd
	if s == Dynalite {
		cmd = exec.Command(path, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	} else {
		cmd = exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	}
	// moto may fork a reloader: the whole process group goes at the end.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", s, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s within 30s", s, addr)
		}
	}
}

package ledger

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
)

// A backend the shared suite runs against. open returns a fresh, empty
// ledger, or skips t saying why the backend is not available.
type backendCase struct {
	name string
	open func(t testing.TB, o Options) *Ledger
	// racy says why the backend's conditional writes are not atomic under
	// concurrent requests, when they are not; races are then not tested
	// against it.
	racy string
}

func backendCases() []backendCase {
	return []backendCase{
		{name: "sqlite", open: openTestSQLite},
		{name: "moto", open: func(t testing.TB, o Options) *Ledger { return openTestDynamo(t, &moto, o) },
			// Seen here: 8 appenders, 120 conditional puts, two "won" the
			// same seq. DynamoDB and dynalite (a lock per item) check and
			// write atomically.
			racy: "moto_server (5.2) evaluates a ConditionExpression and writes without a lock, so two racing conditional writes can both succeed; races are tested against dynalite"},
		{name: "dynalite", open: func(t testing.TB, o Options) *Ledger { return openTestDynamo(t, &dynalite, o) }},
	}
}

func openTestSQLite(t testing.TB, o Options) *Ledger {
	t.Helper()
	l, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "ledger.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

var tableSeq atomic.Int64

func openTestDynamo(t testing.TB, s *server, o Options) *Ledger {
	t.Helper()
	endpoint := s.endpointFor(t)
	o.DynamoDB = DynamoDBOptions{Client: dynamoClient(endpoint), CreateTable: true}
	table := fmt.Sprintf("passport-ledger-%d", tableSeq.Add(1))
	l, err := Open(context.Background(), "dynamodb://"+table, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = l.b.(*dynamoBackend).c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table})
	})
	return l
}

func dynamoClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLEDGERTEST", "ledger-test-secret", ""),
	})
}

// server is a DynamoDB-compatible server started once for the whole test
// binary, on the first test that needs it, and stopped by TestMain.
type server struct {
	name  string
	start func(port int) (*exec.Cmd, error)

	once   sync.Once
	url    string
	err    error
	cmd    *exec.Cmd
	exited chan error // the process's end, once started
}

var moto = server{name: "moto_server", start: func(port int) (*exec.Cmd, error) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("moto_server is not installed (pip install 'moto[server]'); the DynamoDB backend is checked against it")
	}
	return exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port)), nil
}}

// dynalite is looked up as $PASSPORT_DYNALITE, then on PATH
// (npm install -g dynalite@4.0.0). It has no transactions, which is why
// the backend uses none.
var dynalite = server{name: "dynalite", start: func(port int) (*exec.Cmd, error) {
	path := os.Getenv("PASSPORT_DYNALITE")
	if path == "" {
		var err error
		if path, err = exec.LookPath("dynalite"); err != nil {
			return nil, fmt.Errorf("dynalite is not installed (npm install -g dynalite@4.0.0, or set PASSPORT_DYNALITE to its bin/dynalite); the DynamoDB backend is checked against it")
		}
	}
	return exec.Command(path, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"), nil
}}

// endpointFor is s's endpoint, or skips t saying why s cannot run here.
func (s *server) endpointFor(t testing.TB) string {
	t.Helper()
	endpoint, err := s.endpoint()
	if err != nil {
		t.Skipf("the DynamoDB-compatible server %s cannot run here, so the ledger is not checked against it: %v (scripts/install.sh installs moto and dynalite; CI allows no such skip)", s.name, err)
	}
	return endpoint
}

func (s *server) endpoint() (string, error) {
	s.once.Do(func() { s.url, s.err = s.launch() })
	return s.url, s.err
}

// launch starts the server on a free port. The port is free when picked,
// but another test binary's server may take it before ours binds it: ours
// then exits, and answering is the other one, whose tables are not this
// binary's. A server that exited is started again on another port.
func (s *server) launch() (string, error) {
	var err error
	for range 3 {
		var url string
		if url, err = s.launchOnce(); err == nil {
			return url, nil
		}
	}
	return "", err
}

func (s *server) launchOnce() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd, err := s.start(port)
	if err != nil {
		return "", err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting %s: %v", s.name, err)
	}
	s.cmd, s.exited = cmd, make(chan error, 1)
	go func(exited chan<- error) { exited <- cmd.Wait() }(s.exited)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := dynamoClient(url)
	for deadline := time.Now().Add(30 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.ListTables(ctx, &dynamodb.ListTablesInput{})
		cancel()
		select {
		case werr := <-s.exited:
			s.cmd = nil
			return "", fmt.Errorf("%s exited on port %d (%v): another server has the port", s.name, port, werr)
		default:
		}
		if err == nil {
			return url, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not answer on %s within 30s: %v", s.name, url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) stop() {
	if s.cmd != nil {
		// moto may fork a reloader: end the whole process group.
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		<-s.exited
	}
}

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		writeUntilKilled(path)
		return
	}
	code := m.Run()
	moto.stop()
	dynalite.stop()
	os.Exit(code)
}

// newClock is the tests' clock for leases and due times.
func newClock() *clock.Fake { return clock.NewFake(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)) }

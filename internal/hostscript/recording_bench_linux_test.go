//go:build linux

package hostscript

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The recorder's cost, measured on one sandbox host against a login that
// is not recorded: an ordinary account of the same host, same sshd and
// shell, logging in with a key. Each iteration times both, one after the
// other (taking turns at going first), so a busy machine slows both
// alike; the median of the iterations' ratios is what to read, since a
// burst of someone else's work lands on one side of one pair.
// BENCHMARKS.md has the figures.

// benchHost boots a host with a recorded Passport user and a plain
// account.
func benchHost(b *testing.B) (h *host, recorded, plain ssh.Signer) {
	b.Helper()
	h = bootHost(b, "bench")
	authority := newCA(b)
	cred := authority.issue(b, "pp-bench")
	if r := h.provision(b, grantFor(authority, "pp-bench", cred, false, time.Now().Add(time.Hour))); r.Fields["recording"] != "on" {
		b.Fatalf("provision: recording=%s, want on", r.Fields["recording"])
	}
	return h, cred.signer, h.plainUser(b, "plain")
}

// echoSession is a terminal running cat, which hands back each line typed.
type echoSession struct {
	c   *ssh.Client
	s   *ssh.Session
	in  io.Writer
	out io.Reader
}

func openEcho(b *testing.B, h *host, user string, signer ssh.Signer) *echoSession {
	b.Helper()
	c, err := h.dial(user, signer)
	if err != nil {
		b.Fatalf("login as %s: %v", user, err)
	}
	s, err := c.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		b.Fatal(err)
	}
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	// Without echo, each line comes back once, from cat, when Enter is
	// typed: one keystroke's trip to the program and back.
	if err := s.Start("stty -echo; echo ready; exec cat"); err != nil {
		b.Fatal(err)
	}
	e := &echoSession{c: c, s: s, in: in, out: out}
	e.expect(b, "ready\r\n")
	return e
}

func (e *echoSession) expect(b *testing.B, want string) {
	got := make([]byte, 0, len(want))
	buf := make([]byte, 256)
	for !strings.HasSuffix(string(got), want) {
		n, err := e.out.Read(buf)
		if err != nil {
			b.Fatalf("reading the terminal: %v (read %q, want %q)", err, got, want)
		}
		got = append(got, buf[:n]...)
	}
}

func (e *echoSession) close() {
	e.s.Close()
	e.c.Close()
}

// BenchmarkRecorderRoundTrip types a line and waits for it to come back,
// recorded and not.
func BenchmarkRecorderRoundTrip(b *testing.B) {
	h, recorded, plain := benchHost(b)
	rec := openEcho(b, h, "pp-bench", recorded)
	defer rec.close()
	base := openEcho(b, h, "plain", plain)
	defer base.close()
	recRoot, baseRoot := sessionRoot(h.PID(), "pp-bench"), sessionRoot(h.PID(), "plain")
	if recRoot == 0 || baseRoot == 0 {
		b.Fatalf("the sessions' sshd processes are not found on %s", h)
	}
	recCPU, baseCPU := treeCPU(recRoot), treeCPU(baseRoot)
	var p pairs
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		line := fmt.Sprintf("k%d", i)
		trip := func(e *echoSession) time.Duration {
			start := time.Now()
			io.WriteString(e.in, line+"\r")
			e.expect(b, line+"\r\n")
			return time.Since(start)
		}
		p.add(i, func() time.Duration { return trip(base) }, func() time.Duration { return trip(rec) })
	}
	p.report(b, time.Microsecond, "µs")
	recCPU, baseCPU = treeCPU(recRoot)-recCPU, treeCPU(baseRoot)-baseCPU
	// CPU time comes in ticks of 10 ms: a short run may see none.
	if baseCPU > 0 {
		b.ReportMetric(float64(recCPU)/float64(baseCPU), "host-cpu-recorded/plain")
	}
}

// pairs times a baseline and the recorded run of each iteration.
type pairs struct {
	base, rec time.Duration
	ratios    []float64
}

// add runs both, the baseline first in even iterations.
func (p *pairs) add(i int, base, rec func() time.Duration) {
	var tb, tr time.Duration
	if i%2 == 0 {
		tb = base()
		tr = rec()
	} else {
		tr = rec()
		tb = base()
	}
	p.base += tb
	p.rec += tr
	p.ratios = append(p.ratios, float64(tr)/float64(tb))
}

func (p *pairs) report(b *testing.B, unit time.Duration, name string) {
	n := float64(len(p.ratios))
	slices.Sort(p.ratios)
	b.ReportMetric(float64(p.base)/float64(unit)/n, "plain-"+name+"/op")
	b.ReportMetric(float64(p.rec)/float64(unit)/n, "recorded-"+name+"/op")
	b.ReportMetric(p.ratios[len(p.ratios)/2], "recorded/plain")
}

// outputBytes is how much a command prints to its terminal per iteration.
const outputBytes = 100 << 20

// BenchmarkRecorderOutput runs a command on a terminal that prints
// 100 MiB, recorded and not, and reads all of it.
func BenchmarkRecorderOutput(b *testing.B) {
	h, recorded, plain := benchHost(b)
	command := fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", outputBytes)
	var hostCPU func(user string) *time.Duration
	run := func(user string, signer ssh.Signer) time.Duration {
		c, err := h.dial(user, signer)
		if err != nil {
			b.Fatalf("login as %s: %v", user, err)
		}
		defer c.Close()
		s, err := c.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
			b.Fatal(err)
		}
		var n countWriter
		s.Stdout = &n
		cpu := treeCPU(h.PID())
		start := time.Now()
		if err := s.Run(command); err != nil {
			b.Fatalf("%s: %v", user, err)
		}
		took := time.Since(start)
		if n < outputBytes {
			b.Fatalf("%s's terminal showed %d bytes, want %d", user, n, outputBytes)
		}
		// The session's processes have ended and been reaped by the time
		// the client sees the channel close, so their time is counted.
		*hostCPU(user) += treeCPU(h.PID()) - cpu
		return took
	}
	var cpuPlain, cpuRec time.Duration
	hostCPU = func(user string) *time.Duration {
		if user == "plain" {
			return &cpuPlain
		}
		return &cpuRec
	}
	var p pairs
	b.SetBytes(outputBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.add(i, func() time.Duration { return run("plain", plain) }, func() time.Duration { return run("pp-bench", recorded) })
		b.StopTimer()
		// Each recording holds the 100 MiB; the host's disk is a test's.
		h.sh(b, "rm -rf "+RecordingsDir+"/pp-bench/*")
		b.StartTimer()
	}
	p.report(b, time.Millisecond, "ms")
	if cpuPlain > 0 {
		b.ReportMetric(float64(cpuRec)/float64(cpuPlain), "host-cpu-recorded/plain")
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

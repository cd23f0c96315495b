//go:build linux

package hostscript

import (
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/benchpair"
)

// The recorder's cost, measured on one sandbox host against a login that
// is not recorded: an ordinary account of the same host, same sshd and
// shell, logging in with a key, in pairs (package benchpair).
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

// The recorder as shipped, and what it is made of: each variant changes
// the recorded user's sudoers or session program on the host, so that the
// figures say where the cost lies. Only "recorder" is what Passport
// installs; the others record nothing or use a relay Passport does not.
var recorderVariants = []struct{ name, script string }{
	// sudo's I/O log, forced by sshd: what provision installs.
	{"recorder", ""},
	// The same sudo relaying the terminal with its I/O log off: the cost
	// of the second terminal alone.
	{"relay-without-log", `sed -i 's/log_input, log_output, /use_pty, /' ` + recorderSudoers},
	// util-linux's script(1), a minimal terminal relay in C, in place of
	// sudo's: what any recorder that gives the program a terminal pays.
	{"script-relay", `sed -i 's/log_input, log_output, /!use_pty, /' ` + recorderSudoers + `
sed -i 's|^exec "$shell" -c "$command"$|exec script -qfec "$command" /dev/null|' ` + sessionProgram + `
grep -q '^exec script' ` + sessionProgram},
	// The chain of sudo and shells without a second terminal: no relay,
	// nothing recorded.
	{"no-relay", `sed -i 's/log_input, log_output, /!use_pty, /' ` + recorderSudoers},
}

const (
	recorderSudoers = "/etc/sudoers.d/passport_recorder"
	sessionProgram  = "/usr/local/lib/passport/session"
)

// eachVariant runs bench as a sub-benchmark per recorder variant, with
// the host's recorder as provision left it, changed by the variant.
func eachVariant(b *testing.B, h *host, bench func(b *testing.B)) {
	h.sh(b, "cp -p "+recorderSudoers+" /root/sudoers.bench && cp -p "+sessionProgram+" /root/session.bench")
	for _, v := range recorderVariants {
		b.Run(v.name, func(b *testing.B) {
			h.sh(b, "cp -p /root/sudoers.bench "+recorderSudoers+" && cp -p /root/session.bench "+sessionProgram+"\n"+v.script)
			bench(b)
		})
	}
}

// BenchmarkRecorderRoundTrip types a line and waits for it to come back,
// recorded and not, straight to the host's sshd: the recorder's whole
// cost with nothing in front of it. access's
// BenchmarkRecorderRoundTripTunnel measures it the way a person types,
// through a Session Manager tunnel.
func BenchmarkRecorderRoundTrip(b *testing.B) {
	h, recorded, plain := benchHost(b)
	eachVariant(b, h, func(b *testing.B) { recorderRoundTrip(b, h, recorded, plain) })
}

func recorderRoundTrip(b *testing.B, h *host, recorded, plain ssh.Signer) {
	rec := openEcho(b, h, "pp-bench", recorded)
	defer rec.Close()
	base := openEcho(b, h, "plain", plain)
	defer base.Close()
	recRoot, baseRoot := sessionRoot(h.PID(), "pp-bench"), sessionRoot(h.PID(), "plain")
	if recRoot == 0 || baseRoot == 0 {
		b.Fatalf("the sessions' sshd processes are not found on %s", h)
	}
	recCPU, baseCPU := treeCPU(recRoot), treeCPU(baseRoot)
	benchpair.RoundTrips(b, base, rec)
	recCPU, baseCPU = treeCPU(recRoot)-recCPU, treeCPU(baseRoot)-baseCPU
	// CPU time comes in ticks of 10 ms: a short run may see none.
	if baseCPU > 0 {
		b.ReportMetric(float64(recCPU)/float64(baseCPU), "host-cpu-recorded/plain")
	}
}

// openEcho logs in as user and starts an echo terminal.
func openEcho(b *testing.B, h *host, user string, signer ssh.Signer) *benchpair.Echo {
	b.Helper()
	c, err := h.dial(user, signer)
	if err != nil {
		b.Fatalf("login as %s: %v", user, err)
	}
	b.Cleanup(func() { c.Close() })
	return benchpair.OpenEcho(b, c)
}

// outputBytes is how much a command prints to its terminal per iteration.
const outputBytes = 100 << 20

// BenchmarkRecorderOutput runs a command on a terminal that prints
// 100 MiB, recorded and not, and reads all of it.
func BenchmarkRecorderOutput(b *testing.B) {
	h, recorded, plain := benchHost(b)
	eachVariant(b, h, func(b *testing.B) { recorderOutput(b, h, recorded, plain) })
}

func recorderOutput(b *testing.B, h *host, recorded, plain ssh.Signer) {
	var hostCPU func(user string) *time.Duration
	run := func(user string, signer ssh.Signer) time.Duration {
		c, err := h.dial(user, signer)
		if err != nil {
			b.Fatalf("login as %s: %v", user, err)
		}
		defer c.Close()
		cpu := treeCPU(h.PID())
		took := benchpair.Print(b, c, outputBytes)
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
	var p benchpair.Pairs
	b.SetBytes(outputBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Add(i, func() time.Duration { return run("plain", plain) }, func() time.Duration { return run("pp-bench", recorded) })
		b.StopTimer()
		// Each recording holds the 100 MiB; the host's disk is a test's.
		h.sh(b, "rm -rf "+RecordingsDir+"/pp-bench/*")
		b.StartTimer()
	}
	p.Report(b, time.Millisecond, "ms")
	if cpuPlain > 0 {
		b.ReportMetric(float64(cpuRec)/float64(cpuPlain), "host-cpu-recorded/plain")
	}
}

//go:build linux

package sandbox

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// BenchmarkBoot measures how long a host takes from Boot to an sshd that
// accepts connections, on a fresh disk (first boot: new host keys) and on
// a disk booted before (Stop then Start). The baseline is `sshd -t`, the
// least the distribution's sshd needs to load its config and keys.
func BenchmarkBoot(b *testing.B) {
	needHosts(b)
	baseline := timeEach(b, 20, func() {
		if out, err := exec.Command(sshdPath, "-t").CombinedOutput(); err != nil {
			b.Fatalf("sshd -t: %v: %s", err, out)
		}
	})
	b.Run("first", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			cfg := testConfig(b, "bench")
			start := time.Now()
			h, err := Boot(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
			recordPID(h.PID())
			h.Close()
		}
		report(b, total, baseline, "x-sshd-t")
	})
	b.Run("restart", func(b *testing.B) {
		h := bootHost(b, "bench")
		var total time.Duration
		for b.Loop() {
			h.Stop()
			start := time.Now()
			if err := h.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
			recordPID(h.PID())
		}
		report(b, total, baseline, "x-sshd-t")
	})
}

// BenchmarkRun measures a Run round trip (lab to agent, script file, sh,
// result) against running `sh -c true` directly in the same process.
func BenchmarkRun(b *testing.B) {
	h := bootHost(b, "bench")
	baseline := timeEach(b, 50, func() {
		if err := exec.Command("sh", "-c", "true").Run(); err != nil {
			b.Fatal(err)
		}
	})
	script := node.Script{Document: "AWS-RunShellScript", Source: "true"}
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		res, err := h.Run(context.Background(), script)
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("Run: %v, exit %d", err, res.ExitCode)
		}
		total += time.Since(start)
	}
	report(b, total, baseline, "x-bare-exec")
}

func timeEach(b *testing.B, n int, f func()) time.Duration {
	b.Helper()
	start := time.Now()
	for range n {
		f()
	}
	return time.Since(start) / time.Duration(n)
}

func report(b *testing.B, total, baseline time.Duration, unit string) {
	per := total / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/op-measured")
	b.ReportMetric(float64(per)/float64(baseline), unit)
}

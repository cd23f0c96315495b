package access

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
)

// BenchmarkCollect50MB collects one recorded session whose output is about
// 50 MB from a sandbox host, and compares it, in the same iterations, with
// its floor: one Run Command round trip whose output, as large as what the
// host hands over, the agent uploads to the bucket (a file already on the
// host, printed with cat): "one round trip plus the S3 upload".
// collect/floor is the whole cost over that floor: the host's tar and
// zstd, Passport's download and decompression, one object per session
// (re-packed with recording.json, gzip), its upload and the transfer's
// deletion.
func BenchmarkCollect50MB(b *testing.B) {
	l := startLab(b, 1, 0)
	svc := l.service(b, "")
	store := recordInto(b, l, svc)
	h := l.Hosts[0]
	id := h.Info().InstanceID
	ctx := context.Background()
	g, err := svc.Grant(ctx, request(newCA(b), id))
	if err != nil {
		b.Fatal(err)
	}
	cred := credentialOf(b, g, nil)
	// Base64 of random bytes: terminal-like text that compresses as
	// little as real output does at best (about 3:4).
	out, err := login(b, h, g.Username, cred.signer, "head -c 37500000 /dev/urandom | base64 -w 0; echo")
	if err != nil || len(out) < 50e6 {
		b.Fatalf("the session printed %d bytes (%.200s), want 50 MB: %v", len(out), out, err)
	}
	// No ledger: nothing counts as stored, so every iteration collects
	// the same session whole.
	first := svc.CollectRecordings(ctx, "bench", []string{id}, nil)
	if first[0].Err != nil || len(first[0].Stored) != 1 {
		b.Fatalf("collection: %+v", first[0])
	}
	rec := first[0].Stored[0]
	raw := onHost(b, h, "du -sb /var/lib/passport/recordings/"+g.Username+" | cut -f1")
	// What the host hands over: compressed as the collect program does.
	transfer := onHost(b, h, "cd /var/lib/passport/recordings && tar -cf - "+g.Username+" | if command -v zstd >/dev/null; then zstd -1 -q -c; else gzip -1 -c; fi | wc -c")
	onHost(b, h, "head -c "+transfer+" /dev/urandom >/root/bench-bundle")
	runner := fleet.New(l.ssm, fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond})
	floorJob := fleet.Job{Targets: []string{id}, Script: "cat /root/bench-bundle", OutputS3Bucket: store.Bucket, OutputS3KeyPrefix: collect.TransferPrefix + "bench"}
	var floor, collecting time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		res, err := runner.Run(ctx, floorJob)
		if err != nil || res[0].Outcome != fleet.Success {
			b.Fatalf("round trip: %v", err)
		}
		floor += time.Since(start)
		if err := store.DeleteTransfer(ctx, "bench/"+res[0].CommandID, id); err != nil {
			b.Fatal(err)
		}

		start = time.Now()
		got := svc.CollectRecordings(ctx, "bench", []string{id}, nil)
		collecting += time.Since(start)
		if got[0].Err != nil || len(got[0].Stored) != 1 {
			b.Fatalf("collection: %+v", got[0])
		}
	}
	b.StopTimer()
	var size float64
	if n, err := store.Size(ctx, rec.Key); err == nil {
		size = float64(n)
	}
	b.ReportMetric(float64(collecting.Nanoseconds())/float64(b.N), "ns/collect")
	b.ReportMetric(float64(floor.Nanoseconds())/float64(b.N), "ns/floor")
	b.ReportMetric(float64(collecting)/float64(floor), "collect/floor")
	b.ReportMetric(size/1e6, "MB-object")
	if n, err := strconv.ParseFloat(transfer, 64); err == nil {
		b.ReportMetric(n/1e6, "MB-transfer")
	}
	if n, err := strconv.ParseFloat(raw, 64); err == nil {
		b.ReportMetric(n/1e6, "MB-on-host")
	}
}

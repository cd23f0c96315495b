package access

import (
	"context"
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
)

// BenchmarkCollect50MB collects one recorded session whose output is about
// 50 MB from a sandbox host, and compares it, in the same iterations, with
// its floor: one Run Command round trip of a trivial script to that host
// plus one S3 upload of what the host hands over (the compressed bundle,
// as the agent uploads it). collect/floor is the whole cost over that
// floor: the host's tar and gzip, the agent's upload, Passport's download,
// one object per session (re-packed with recording.json, gzip again), its
// upload and the transfer object's deletion. MB/s is the recording's size
// over the collection's time.
func BenchmarkCollect50MB(b *testing.B) {
	l := startLab(b, 1, 0)
	store, err := collect.NewStore(l.AWSConfig(), lab.RecordingsBucket)
	if err != nil {
		b.Fatal(err)
	}
	svc := l.service(b, "")
	svc.recordings = &Recordings{Store: store}
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
	if _, err := login(b, h, g.Username, cred.signer, "head -c 37500000 /dev/urandom | base64 -w 0 >/dev/stdout; echo"); err != nil {
		b.Fatal(err)
	}
	// No ledger: nothing counts as stored, so every iteration collects
	// the same session whole.
	first := svc.CollectRecordings(ctx, "bench", []string{id}, nil)
	if first[0].Err != nil || len(first[0].Stored) != 1 {
		b.Fatalf("collection: %+v", first[0])
	}
	rec := first[0].Stored[0]
	raw := onHost(b, h, "du -sb /var/lib/passport/recordings/"+g.Username+" | cut -f1")
	bundle := make([]byte, rec.Size)
	rand.Read(bundle)
	runner := fleet.New(l.ssm, fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond})
	var floor, collecting time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if res, err := runner.Run(ctx, fleet.Job{Targets: []string{id}, Script: "true"}); err != nil || res[0].Outcome != fleet.Success {
			b.Fatalf("round trip: %v", err)
		}
		if err := store.Put(ctx, collect.TransferPrefix+"bench/upload", bundle, "application/octet-stream"); err != nil {
			b.Fatal(err)
		}
		floor += time.Since(start)

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
	if n, err := strconv.ParseFloat(raw, 64); err == nil {
		b.ReportMetric(n/1e6, "MB-on-host")
	}
}

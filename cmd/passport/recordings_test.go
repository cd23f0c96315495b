package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// TestAuditVerifyChecksRecordings: passport audit verify --recordings-bucket
// reads every indexed recording from the bucket and names one changed
// after collection.
func TestAuditVerifyChecksRecordings(t *testing.T) {
	dir, err := os.MkdirTemp("", "recv")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lb, err := lab.Start(ctx, lab.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	for _, kv := range lb.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")

	// A recording as collection leaves it: the object, its index and the
	// digest in the trail.
	st, err := collect.NewStore(lb.AWSConfig(), lab.RecordingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	end := now.Add(time.Minute)
	obj, sum, err := collect.Pack(collect.Meta{RequestID: "ar-1", InstanceID: "i-0123456789abcdef0", Session: "20261206-091500-Ab12Cd",
		Username: "pp-abc", Start: now, End: &end, CollectedAt: now}, []collect.File{{Name: "ttyout", Data: []byte("rm -rf /tmp/x\r\n")}})
	if err != nil {
		t.Fatal(err)
	}
	rec := ledger.Recording{RequestID: "ar-1", InstanceID: "i-0123456789abcdef0", Session: "20261206-091500-Ab12Cd", Username: "pp-abc",
		Start: now, End: end, Bucket: st.Bucket, Key: ledger.RecordingKey("ar-1", "i-0123456789abcdef0", "20261206-091500-Ab12Cd"),
		Size: int64(len(obj)), SHA256: sum, CollectedAt: now, Expires: now.Add(time.Hour)}
	if err := st.Put(ctx, rec.Key, obj, collect.ContentType); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	// indexed records rec in the ledger as a collection does: its index
	// entry and the audit event with its digest.
	indexed := func() {
		t.Helper()
		l, err := ledger.Open(ctx, "sqlite://"+path, ledger.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.PutRecording(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, ledger.Event{Actor: "reconciler/r1", Action: ledger.ActionRecordingCollected, GrantID: "ar-1",
			Target: rec.InstanceID, Detail: access.RecordingDigest(rec)}); err != nil {
			t.Fatal(err)
		}
	}
	indexed()

	args := []string{"audit", "verify", "--ledger", "sqlite://" + path, "--recordings-bucket", lab.RecordingsBucket}
	stdout, stderr, err := passportRun(t, args...)
	if err != nil || !strings.Contains(stdout, "recordings intact: 1 in s3://passport-recordings") {
		t.Fatalf("verify of an intact recording: %v\n%s%s", err, stdout, stderr)
	}
	// Deleting it early needs a reason, and the trail names who and why.
	del := []string{"sessions", "delete", rec.ID(), "--ledger", "sqlite://" + path, "--recordings-bucket", lab.RecordingsBucket}
	if _, stderr, err := passportRun(t, del...); err == nil || !strings.Contains(stderr, "--reason is required") {
		t.Errorf("delete without a reason: %v\n%s", err, stderr)
	}
	if stdout, stderr, err := passportRun(t, append(del, "--reason", "legal hold released")...); err != nil || !strings.Contains(stdout, "deleted "+rec.ID()) {
		t.Fatalf("delete: %v\n%s%s", err, stdout, stderr)
	}
	if _, ok := lb.S3.Object(lab.RecordingsBucket, rec.Key); ok {
		t.Error("the deleted recording's object is still in the bucket")
	}
	stdout, _, _ = passportRun(t, "audit", "list", "--ledger", "sqlite://"+path)
	if !strings.Contains(stdout, "recording-deleted") || !strings.Contains(stdout, "legal hold released") {
		t.Errorf("the trail does not show the deletion:\n%s", stdout)
	}
	// Put it back, collected again, for what follows.
	if err := st.Put(ctx, rec.Key, obj, collect.ContentType); err != nil {
		t.Fatal(err)
	}
	indexed()

	lb.S3.Replace(lab.RecordingsBucket, rec.Key, append(obj[:len(obj):len(obj)], 0))
	stdout, stderr, err = passportRun(t, args...)
	if err == nil || !strings.Contains(stdout, "ar-1/i-0123456789abcdef0/20261206-091500-Ab12Cd") || !strings.Contains(stdout, "changed after collection") ||
		!strings.Contains(stderr, "1 of 1 recordings") {
		t.Errorf("verify of a changed recording: %v\n%s%s", err, stdout, stderr)
	}
}

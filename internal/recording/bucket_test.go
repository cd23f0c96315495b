package recording

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// objects is a bucket in memory, standing in for S3 where only the
// catalog's reading of what it returns is under test.
type objects map[string][]byte

func (o objects) get(_ context.Context, bucket, key string) (io.ReadCloser, error) {
	b, ok := o[bucket+"/"+key]
	if !ok {
		return nil, errors.New("NoSuchKey")
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// A recording read through the ledger's index is refused once its object
// is not the one collected.
func TestBucket(t *testing.T) {
	ctx := context.Background()
	book, err := ledger.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "l.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	obj := object(t, "testdata/sudo-terminal", nil)
	sum := sha256.Sum256(obj)
	ref := Ref{Request: "ar-0123456789abcdef", Instance: "i-0a1b2c3d4e5f67890", Session: "20261206-064656-PAwD9y"}
	idx := ledger.Recording{RequestID: ref.Request, InstanceID: ref.Instance, Session: ref.Session, Username: "nobody",
		Start: time.Unix(1796539616, 0), Bucket: "passport-recordings", Key: ledger.RecordingKey(ref.Request, ref.Instance, ref.Session),
		Size: int64(len(obj)), SHA256: hex.EncodeToString(sum[:]), CollectedAt: time.Now(), Expires: time.Now().Add(time.Hour)}
	if err := book.PutRecording(ctx, idx); err != nil {
		t.Fatal(err)
	}
	store := objects{"passport-recordings/" + idx.Key: obj}
	b := Bucket{Index: book, Get: store.get}

	list, err := b.List(ctx, Query{Request: ref.Request})
	if err != nil || len(list) != 1 || list[0].ID() != ref.ID() || list[0].User != "nobody" || list[0].SHA256 != idx.SHA256 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	l, err := b.Open(ctx, ref)
	if err != nil || l.Info.User != "nobody" {
		t.Fatalf("Open = %v", err)
	}

	// Another session's object put in its place, consistent in itself:
	// only the index's digest catches it.
	store["passport-recordings/"+idx.Key] = object(t, "testdata/sudo-gzip", nil)
	if _, err := b.Open(ctx, ref); err == nil || !strings.Contains(err.Error(), "changed since it was collected") {
		t.Errorf("a replaced object: %v", err)
	}
	// An object indexed under another name than the one it holds.
	other := object(t, "testdata/sudo-terminal", func(i *collect.Meta, _ map[string][]byte) { i.Session = "20261206-000000-other" })
	sum = sha256.Sum256(other)
	idx.Size, idx.SHA256 = int64(len(other)), hex.EncodeToString(sum[:])
	if err := book.PutRecording(ctx, idx); err != nil {
		t.Fatal(err)
	}
	store["passport-recordings/"+idx.Key] = other
	if _, err := b.Open(ctx, ref); err == nil || !strings.Contains(err.Error(), "its object says it is ar-0123456789abcdef/i-0a1b2c3d4e5f67890/20261206-000000-other") {
		t.Errorf("an object of another session: %v", err)
	}
	delete(store, "passport-recordings/"+idx.Key)
	if _, err := b.Open(ctx, ref); err == nil || !strings.Contains(err.Error(), "NoSuchKey") {
		t.Errorf("a missing object: %v", err)
	}
	if _, err := b.Open(ctx, Ref{Request: ref.Request, Instance: ref.Instance, Session: "20261206-000000-nothere"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unindexed recording: %v", err)
	}
}

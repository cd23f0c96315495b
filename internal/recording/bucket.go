package recording

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// Index is the ledger's recording index (*ledger.Ledger is one).
type Index interface {
	Recordings(ctx context.Context, f ledger.RecordingFilter) ([]ledger.Recording, error)
	GetRecording(ctx context.Context, request, instance, session string) (ledger.Recording, error)
}

// GetObject reads an object of a bucket (S3's GetObject).
type GetObject func(ctx context.Context, bucket, key string) (io.ReadCloser, error)

// Bucket is the catalog of collected recordings: the ledger's index says
// what was collected, with each object's size and SHA-256, and each
// object is read from its bucket and refused unless it is still exactly
// what was collected.
type Bucket struct {
	Index Index
	Get   GetObject
}

var _ Catalog = Bucket{}

// List lists the index.
func (b Bucket) List(ctx context.Context, q Query) ([]Ref, error) {
	all, err := b.Index.Recordings(ctx, ledger.RecordingFilter{RequestID: q.Request, InstanceID: q.Instance})
	if err != nil {
		return nil, fmt.Errorf("reading the ledger's recording index: %w", err)
	}
	out := make([]Ref, 0, len(all))
	for _, r := range all {
		ref := refOf(r)
		if ref.Check() == nil {
			out = append(out, ref)
		}
	}
	sortRefs(out)
	return out, nil
}

func refOf(r ledger.Recording) Ref {
	return Ref{Request: r.RequestID, Instance: r.InstanceID, Session: r.Session, User: r.Username, Subject: r.Subject,
		Start: r.Start, End: r.End, Size: r.Size, SHA256: r.SHA256}
}

// Open reads the recording's object and checks it against the index.
func (b Bucket) Open(ctx context.Context, ref Ref) (*Log, error) {
	if err := ref.Check(); err != nil {
		return nil, err
	}
	idx, err := b.Index.GetRecording(ctx, ref.Request, ref.Instance, ref.Session)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", ref.ID(), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the ledger's index of %s: %w", ref.ID(), err)
	}
	if idx.Size < 0 || idx.Size > MaxObjectBytes {
		return nil, fmt.Errorf("%s: the index gives its object %d bytes, more than a recording may be", ref.ID(), idx.Size)
	}
	body, err := b.Get(ctx, idx.Bucket, idx.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: reading s3://%s/%s: %w", ref.ID(), idx.Bucket, idx.Key, err)
	}
	defer body.Close()
	h := sha256.New()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.TeeReader(io.LimitReader(body, idx.Size+1), h))
	if err != nil {
		return nil, fmt.Errorf("%s: reading s3://%s/%s: %w", ref.ID(), idx.Bucket, idx.Key, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != idx.Size || sum != idx.SHA256 {
		return nil, fmt.Errorf("%s changed since it was collected: s3://%s/%s is not the object the ledger indexed (%d bytes, SHA-256 %s; the index says %d bytes, %s); passport audit verify shows the digest recorded at collection",
			ref.ID(), idx.Bucket, idx.Key, n, sum, idx.Size, idx.SHA256)
	}
	info, l, err := ReadObject(&buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref.ID(), err)
	}
	if info.RequestID != ref.Request || info.InstanceID != ref.Instance || info.Session != ref.Session {
		return nil, fmt.Errorf("%s: its object says it is %s/%s/%s", ref.ID(), info.RequestID, info.InstanceID, info.Session)
	}
	return l, nil
}

package collect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// A Problem is one recording that does not match what was recorded of it
// when it was collected.
type Problem struct {
	ID     string // <request>/<instance>/<session>
	Key    string
	Reason string
}

func (p Problem) String() string { return p.ID + " (s3://" + p.Key + "): " + p.Reason }

// Verify checks every recording the ledger indexes against the bucket and
// the audit trail: the object must be there, its SHA-256 must be the one
// indexed, and the last recording-collected event for its key must carry
// that same digest (so changing the index to match a changed object is
// caught too, as long as the trail itself verifies). It returns how many
// recordings it checked and what does not match.
func Verify(ctx context.Context, l *ledger.Ledger, st *Store) (int, []Problem, error) {
	recs, err := l.Recordings(ctx, ledger.RecordingFilter{})
	if err != nil {
		return 0, nil, err
	}
	events, err := l.Events(ctx, ledger.Filter{})
	if err != nil {
		return 0, nil, err
	}
	digests := map[string]string{}        // s3://bucket/key → the detail of its last collection
	deleted := map[string]ledger.Action{} // s3://bucket/key → a deletion after its last collection
	for _, e := range events {
		switch e.Action {
		case ledger.ActionRecordingCollected:
			where, _, _ := strings.Cut(e.Detail, " ")
			digests[where] = e.Detail
			delete(deleted, where)
		case ledger.ActionRecordingDeleted, ledger.ActionRecordingExpired:
			// "<reason>: s3://bucket/key sha256=…"
			if i := strings.LastIndex(e.Detail, ": s3://"); i >= 0 {
				where, _, _ := strings.Cut(e.Detail[i+2:], " ")
				deleted[where] = e.Action
			}
		}
	}
	var problems []Problem
	for _, r := range recs {
		where := "s3://" + r.Bucket + "/" + r.Key
		p := Problem{ID: r.ID(), Key: r.Bucket + "/" + r.Key}
		if action, ok := deleted[where]; ok {
			p.Reason = "the audit trail records its deletion (" + string(action) + "), but it is still indexed: the deletion stopped half-way; run it again to finish"
			problems = append(problems, p)
			continue
		}
		if !strings.HasSuffix(digests[where], " sha256="+r.SHA256) {
			p.Reason = "the index's SHA-256 is not the one the audit trail recorded at collection"
			problems = append(problems, p)
			continue
		}
		if r.Bucket != st.Bucket {
			p.Reason = "it is in bucket " + r.Bucket + ", not the configured " + st.Bucket + "; verify with that bucket"
			problems = append(problems, p)
			continue
		}
		got, size, err := st.digest(ctx, r.Key)
		if errors.Is(err, ErrMissing) {
			p.Reason = "the object is missing from the bucket"
			problems = append(problems, p)
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		if got != r.SHA256 {
			p.Reason = fmt.Sprintf("the object was changed after collection: SHA-256 %s, %d bytes; collected %s, %d bytes", got, size, r.SHA256, r.Size)
			problems = append(problems, p)
		}
	}
	return len(recs), problems, nil
}

// digest reads an object's SHA-256 and size as it downloads: recordings
// run to gigabytes, and verifying holds none of them whole.
func (s *Store) digest(ctx context.Context, key string) (string, int64, error) {
	body, err := s.GetObject(ctx, s.Bucket, key)
	if err != nil {
		return "", 0, err
	}
	defer body.Close()
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return "", 0, s.fail("reading", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

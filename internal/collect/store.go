package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TransferPrefix is where the agents write what hosts hand over, below
// which they add <command>/<instance>/<plugin>/<step>/stdout. Passport
// deletes each transfer object once its sessions are stored; the bucket's
// lifecycle removes any left behind after a day.
const TransferPrefix = "recordings/.transfer/"

// Store is the recordings bucket, reached with the caller's credentials
// (the Passport service's role).
type Store struct {
	c      *s3.Client
	Bucket string
}

// NewStore returns the store for bucket. With an endpoint of its own (the
// lab, moto) the client addresses buckets path-style, since such endpoints
// have no per-bucket host names; checksums are sent only where S3 requires
// them, which every S3 implementation understands.
func NewStore(cfg aws.Config, bucket string) (*Store, error) {
	if bucket == "" {
		return nil, errors.New("recording: no bucket named for session recordings; set it (the lab's is passport-recordings)")
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.BaseEndpoint != nil || os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &Store{c: c, Bucket: bucket}, nil
}

func (s *Store) fail(what, key string, err error) error {
	return fmt.Errorf("recording: %s s3://%s/%s: %w", what, s.Bucket, key, err)
}

// Put writes an object.
func (s *Store) Put(ctx context.Context, key string, data []byte, contentType string) error {
	_, err := s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key, Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), ContentType: aws.String(contentType)})
	if err != nil {
		return s.fail("writing", key, err)
	}
	return nil
}

// ErrMissing is what Get returns for a key the bucket does not hold.
var ErrMissing = errors.New("no such object")

// Get reads a whole object.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key})
	var nk *types.NoSuchKey
	if errors.As(err, &nk) {
		return nil, s.fail("reading", key, ErrMissing)
	}
	if err != nil {
		return nil, s.fail("reading", key, err)
	}
	defer out.Body.Close()
	// Recordings run to tens of megabytes: one buffer of the announced
	// size, not a series of doublings.
	buf := bytes.NewBuffer(make([]byte, 0, max(aws.ToInt64(out.ContentLength), 0)+bytes.MinRead))
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, s.fail("reading", key, err)
	}
	return buf.Bytes(), nil
}

// GetObject opens an object of bucket for reading, for readers of the
// recordings (package recording's Bucket) that share this client.
func (s *Store) GetObject(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	var nk *types.NoSuchKey
	if errors.As(err, &nk) {
		return nil, fmt.Errorf("recording: reading s3://%s/%s: %w", bucket, key, ErrMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("recording: reading s3://%s/%s: %w", bucket, key, err)
	}
	return out.Body, nil
}

// Size returns an object's size (HeadObject), or an error matching
// ErrMissing.
func (s *Store) Size(ctx context.Context, key string) (int64, error) {
	out, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.Bucket, Key: &key})
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return 0, s.fail("looking up", key, ErrMissing)
	}
	if err != nil {
		return 0, s.fail("looking up", key, err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// Delete removes an object; a missing one is fine, as in S3.
func (s *Store) Delete(ctx context.Context, key string) error {
	if _, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.Bucket, Key: &key}); err != nil {
		return s.fail("deleting", key, err)
	}
	return nil
}

// List returns the keys under prefix, in order.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.c, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.fail("listing", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// TransferOutput finds the stdout object the agent wrote for one host of
// a command under TransferPrefix; ErrMissing when the host wrote none
// (its program printed nothing).
func (s *Store) TransferOutput(ctx context.Context, commandID, instanceID string) (string, error) {
	prefix := TransferPrefix + commandID + "/" + instanceID + "/"
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "/stdout") {
			return k, nil
		}
	}
	return "", s.fail("finding the output of", prefix, ErrMissing)
}

// DeleteTransfer deletes what the agent wrote for one host of a command
// (stdout and stderr) once its sessions are stored.
func (s *Store) DeleteTransfer(ctx context.Context, commandID, instanceID string) error {
	keys, err := s.List(ctx, TransferPrefix+commandID+"/"+instanceID+"/")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// Lifecycle is the bucket's lifecycle configuration for recordings:
// recordings expire retention after they were written (S3 counts whole
// days, rounding up), transfer objects left behind after one day. It
// replaces the bucket's whole configuration: a bucket of its own for
// recordings is the intended setup.
func Lifecycle(retention time.Duration) *types.BucketLifecycleConfiguration {
	days := int32((retention + 24*time.Hour - 1) / (24 * time.Hour))
	if days < 1 {
		days = 1
	}
	return &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{
		{ID: aws.String("passport-recordings"), Status: types.ExpirationStatusEnabled,
			Filter: &types.LifecycleRuleFilter{Prefix: aws.String("recordings/")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(days)}},
		{ID: aws.String("passport-transfers"), Status: types.ExpirationStatusEnabled,
			Filter: &types.LifecycleRuleFilter{Prefix: aws.String(TransferPrefix)}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}},
	}}
}

// ApplyRetention sets Lifecycle(retention) on the bucket.
func (s *Store) ApplyRetention(ctx context.Context, retention time.Duration) error {
	_, err := s.c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: &s.Bucket, LifecycleConfiguration: Lifecycle(retention)})
	if err != nil {
		return fmt.Errorf("recording: setting the lifecycle of s3://%s: %w", s.Bucket, err)
	}
	return nil
}

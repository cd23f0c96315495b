package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

const (
	region     = "eu-west-1"
	accessKey  = "AKIDLABS3TEST0000001"
	secretKey  = "lab-s3-test-secret-0123456789abcdefghijk"
	testBucket = "passport-recordings"
)

// newLab serves a fresh S3 on loopback behind the lab's SigV4 front end
// and returns the real SDK client pointed at it, path-style as for any
// endpoint that is not AWS's.
func newLab(t *testing.T) (*s3.Client, *Service, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	server := awsjson.NewServer(awsjson.Config{Region: region, Credentials: map[string]string{accessKey: secretKey}})
	svc := New(Config{Verify: server.VerifyS3, Authorize: server.Authorize, Now: clk.Now})
	server.Handle("/", svc)
	svc.CreateBucket(testBucket)
	srv := httptest.NewServer(server)
	t.Cleanup(srv.Close)
	return client(srv.URL, secretKey), svc, clk
}

func client(endpoint, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     region,
		BaseEndpoint:               aws.String(endpoint),
		Credentials:                credentials.NewStaticCredentialsProvider(accessKey, secret, ""),
		UsePathStyle:               true,
		RetryMaxAttempts:           1,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func TestObjects(t *testing.T) {
	c, svc, _ := newLab(t)
	ctx := context.Background()
	big := make([]byte, 3<<20)
	rand.Read(big)
	// Keys with characters SigV4 encodes: S3 signs the path encoded once.
	keys := []string{"recordings/req-1/i-0aaa/20261206-091500-Ab12Cd", "recordings/req 2/ü+x=y/s", "recordings/req-1/i-0bbb/big"}
	bodies := [][]byte{[]byte("one recording"), []byte("two"), big}
	for i, k := range keys {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(k), Body: bytes.NewReader(bodies[i]),
			ContentType: aws.String("application/gzip")}); err != nil {
			t.Fatalf("PutObject %s: %v", k, err)
		}
	}
	for i, k := range keys {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(k)})
		if err != nil {
			t.Fatalf("GetObject %s: %v", k, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, bodies[i]) || aws.ToString(out.ContentType) != "application/gzip" {
			t.Errorf("GetObject %s: %d bytes of type %s, want %d", k, len(got), aws.ToString(out.ContentType), len(bodies[i]))
		}
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(keys[2])})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(big)) {
		t.Fatalf("HeadObject: %+v, %v", head, err)
	}
	if data, _ := svc.Object(testBucket, keys[0]); string(data) != "one recording" {
		t.Errorf("the lab holds %q", data)
	}

	// ListObjectsV2 by prefix, in pages.
	var listed []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Prefix: aws.String("recordings/req-1/"), MaxKeys: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			listed = append(listed, aws.ToString(o.Key))
		}
	}
	if got := strings.Join(listed, ","); got != keys[0]+","+keys[2] {
		t.Errorf("listed %s", got)
	}

	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(testBucket), Key: aws.String(keys[0])}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(keys[0])})
	var missing *types.NoSuchKey
	if !errors.As(err, &missing) {
		t.Errorf("GetObject of a deleted key: %v, want NoSuchKey", err)
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(keys[0])})
	var notFound *types.NotFound
	if !errors.As(err, &notFound) {
		t.Errorf("HeadObject of a deleted key: %v, want NotFound", err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("no-such-testBucket"), Key: aws.String("k"), Body: strings.NewReader("x")})
	var nb *types.NoSuchBucket
	var api smithy.APIError
	if !errors.As(err, &nb) && !(errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket") {
		t.Errorf("PutObject into a missing testBucket: %v, want NoSuchBucket", err)
	}
}

func TestSignaturesAreChecked(t *testing.T) {
	c, svc, _ := newLab(t)
	srvURL := aws.ToString(c.Options().BaseEndpoint)
	ctx := context.Background()
	_, err := client(srvURL, "not-the-secret").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"), Body: strings.NewReader("forged")})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "SignatureDoesNotMatch" {
		t.Errorf("a wrong secret: %v, want SignatureDoesNotMatch", err)
	}
	if _, ok := svc.Object(testBucket, "k"); ok {
		t.Error("an object was stored by a forged request")
	}
}

func TestLifecycleExpiresRecordings(t *testing.T) {
	c, svc, clk := newLab(t)
	ctx := context.Background()
	_, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket: aws.String(testBucket),
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{
			ID: aws.String("recordings"), Status: types.ExpirationStatusEnabled,
			Filter:     &types.LifecycleRuleFilter{Prefix: aws.String("recordings/")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(30)},
		}, {
			ID: aws.String("transfers"), Status: types.ExpirationStatusEnabled,
			Filter:     &types.LifecycleRuleFilter{Prefix: aws.String("recordings/.transfer/")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"recordings/r/i/s", "recordings/.transfer/c/i/stdout", "elsewhere/kept"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(k), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	// The shorter of two matching rules wins, as in S3.
	clk.Advance(24 * time.Hour)
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("recordings/.transfer/c/i/stdout")}); err == nil {
		t.Error("a transfer object outlived its one-day rule")
	}
	clk.Advance(28 * 24 * time.Hour)
	if n := svc.Expire(); n != 0 {
		t.Errorf("after 29 days %d objects expired", n)
	}
	clk.Advance(24 * time.Hour)
	if n := svc.Expire(); n != 1 {
		t.Errorf("after 30 days %d objects expired, want 1", n)
	}
	if _, ok := svc.Object(testBucket, "recordings/r/i/s"); ok {
		t.Error("the recording outlived its lifecycle rule")
	}
	if _, ok := svc.Object(testBucket, "elsewhere/kept"); !ok {
		t.Error("an object outside the rule's prefix expired")
	}
}

package kms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

const (
	region    = "eu-west-1"
	account   = "111122223333"
	accessKey = "AKIDLABKMSTEST000001"
	secretKey = "lab-kms-test-secret-0123456789abcdefghij"
)

// newLab serves a fresh KMS on loopback and returns the real SDK client
// pointed at it. Only the KMS follows the test clock: SigV4 checks stay on
// real time, since the SDK signs with it.
func newLab(t *testing.T) (*kms.Client, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	server := awsjson.NewServer(awsjson.Config{Region: region, Credentials: map[string]string{accessKey: secretKey}})
	server.Register(New(Config{Region: region, AccountID: account, Now: clk.Now}).API())
	srv := httptest.NewServer(server)
	t.Cleanup(srv.Close)
	client := kms.New(kms.Options{
		Region:           region,
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		RetryMaxAttempts: 1,
	})
	return client, clk
}

func createKey(t *testing.T, c *kms.Client, spec types.KeySpec) *types.KeyMetadata {
	t.Helper()
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{
		KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify,
		Description: aws.String("passport test CA"),
		Tags:        []types.Tag{{TagKey: aws.String("passport:ca"), TagValue: aws.String("test")}},
	})
	if err != nil {
		t.Fatalf("CreateKey(%s): %v", spec, err)
	}
	return out.KeyMetadata
}

// verifyLocally checks a KMS signature with Go's crypto alone, so the lab's
// Sign is not vouched for only by the lab's own Verify.
func verifyLocally(pub crypto.PublicKey, alg types.SigningAlgorithmSpec, message []byte, sig []byte) bool {
	name := string(alg)
	sum := func(h crypto.Hash) []byte { w := h.New(); w.Write(message); return w.Sum(nil) }
	hash := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}[name[len(name)-3:]]
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, sum(hash), sig)
	case *rsa.PublicKey:
		if strings.HasPrefix(name, "RSASSA_PSS") {
			return rsa.VerifyPSS(k, hash, sum(hash), sig, &rsa.PSSOptions{SaltLength: hash.Size()}) == nil
		}
		return rsa.VerifyPKCS1v15(k, hash, sum(hash), sig) == nil
	case ed25519.PublicKey:
		if alg == types.SigningAlgorithmSpecEd25519PhSha512 {
			d := sha512.Sum512(message)
			return ed25519.VerifyWithOptions(k, d[:], sig, &ed25519.Options{Hash: crypto.SHA512}) == nil
		}
		return ed25519.Verify(k, message, sig)
	}
	return false
}

func TestSignAndVerify(t *testing.T) {
	c, _ := newLab(t)
	ctx := context.Background()
	message := []byte("certificate bytes to be signed")
	for _, spec := range []types.KeySpec{types.KeySpecEccNistP256, types.KeySpecEccNistP384, types.KeySpecRsa2048, types.KeySpecEccNistEdwards25519} {
		t.Run(string(spec), func(t *testing.T) {
			md := createKey(t, c, spec)
			if md.KeyState != types.KeyStateEnabled || md.KeyUsage != types.KeyUsageTypeSignVerify || md.KeySpec != spec {
				t.Fatalf("metadata %+v", md)
			}
			if want := "arn:aws:kms:" + region + ":" + account + ":key/" + *md.KeyId; *md.Arn != want {
				t.Errorf("Arn = %s, want %s", *md.Arn, want)
			}
			pubOut, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.KeyId})
			if err != nil {
				t.Fatal(err)
			}
			pub, err := x509.ParsePKIXPublicKey(pubOut.PublicKey)
			if err != nil {
				t.Fatalf("PublicKey is not DER SubjectPublicKeyInfo: %v", err)
			}
			if pubOut.KeySpec != spec || len(pubOut.SigningAlgorithms) == 0 || !slices.Equal(pubOut.SigningAlgorithms, md.SigningAlgorithms) {
				t.Errorf("GetPublicKey = %s %v, DescribeKey said %v", pubOut.KeySpec, pubOut.SigningAlgorithms, md.SigningAlgorithms)
			}
			for _, alg := range pubOut.SigningAlgorithms {
				for _, mt := range []types.MessageType{types.MessageTypeRaw, types.MessageTypeDigest} {
					if alg == types.SigningAlgorithmSpecEd25519Sha512 && mt == types.MessageTypeDigest ||
						alg == types.SigningAlgorithmSpecEd25519PhSha512 && mt == types.MessageTypeRaw {
						continue
					}
					msg := message
					if mt == types.MessageTypeDigest {
						msg = digestFor(alg, message)
					}
					out, err := c.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: msg, MessageType: mt, SigningAlgorithm: alg})
					if err != nil {
						t.Fatalf("Sign %s %s: %v", alg, mt, err)
					}
					if *out.KeyId != *md.Arn || out.SigningAlgorithm != alg {
						t.Errorf("Sign answered key %s algorithm %s", *out.KeyId, out.SigningAlgorithm)
					}
					signed := message
					if alg == types.SigningAlgorithmSpecEd25519PhSha512 {
						// KMS hashes an Ed25519ph DIGEST once more: the
						// signature is over the digest as a message.
						signed = msg
					}
					if !verifyLocally(pub, alg, signed, out.Signature) {
						t.Errorf("%s %s: signature does not verify with the public key", alg, mt)
					}
					v, err := c.Verify(ctx, &kms.VerifyInput{KeyId: md.Arn, Message: msg, MessageType: mt, SigningAlgorithm: alg, Signature: out.Signature})
					if err != nil || !v.SignatureValid {
						t.Errorf("Verify %s %s: %v", alg, mt, err)
					}
					bad := slices.Clone(out.Signature)
					bad[len(bad)/2] ^= 1
					_, err = c.Verify(ctx, &kms.VerifyInput{KeyId: md.Arn, Message: msg, MessageType: mt, SigningAlgorithm: alg, Signature: bad})
					var invalid *types.KMSInvalidSignatureException
					if !errors.As(err, &invalid) {
						t.Errorf("Verify of a tampered %s signature: %v, want KMSInvalidSignatureException", alg, err)
					}
				}
			}
		})
	}
}

func digestFor(alg types.SigningAlgorithmSpec, message []byte) []byte {
	switch {
	case strings.HasSuffix(string(alg), "256"):
		d := sha256.Sum256(message)
		return d[:]
	case strings.HasSuffix(string(alg), "384"):
		d := sha512.Sum384(message)
		return d[:]
	}
	d := sha512.Sum512(message)
	return d[:]
}

func TestKeyIdForms(t *testing.T) {
	c, _ := newLab(t)
	ctx := context.Background()
	md := createKey(t, c, types.KeySpecEccNistP256)
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/passport-ca"), TargetKeyId: md.KeyId}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		keyID string
		found bool
	}{
		{*md.KeyId, true},
		{*md.Arn, true},
		{"alias/passport-ca", true},
		{"arn:aws:kms:" + region + ":" + account + ":alias/passport-ca", true},
		{"alias/other", false},
		{"arn:aws:kms:" + region + ":999999999999:key/" + *md.KeyId, false},
		{"arn:aws:kms:us-east-1:" + account + ":key/" + *md.KeyId, false},
		{"00000000-0000-4000-8000-000000000000", false},
		{"key/../" + *md.KeyId, false},
	}
	for _, tt := range tests {
		out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(tt.keyID)})
		var notFound *types.NotFoundException
		switch {
		case tt.found && err != nil:
			t.Errorf("DescribeKey(%s): %v", tt.keyID, err)
		case tt.found && *out.KeyMetadata.KeyId != *md.KeyId:
			t.Errorf("DescribeKey(%s) found key %s", tt.keyID, *out.KeyMetadata.KeyId)
		case !tt.found && !errors.As(err, &notFound):
			t.Errorf("DescribeKey(%s): %v, want NotFoundException", tt.keyID, err)
		}
	}
	_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/passport-ca"), TargetKeyId: md.KeyId})
	var exists *types.AlreadyExistsException
	if !errors.As(err, &exists) {
		t.Errorf("second CreateAlias: %v, want AlreadyExistsException", err)
	}
}

func TestRefusals(t *testing.T) {
	c, _ := newLab(t)
	ctx := context.Background()
	p256 := createKey(t, c, types.KeySpecEccNistP256)
	ed := createKey(t, c, types.KeySpecEccNistEdwards25519)
	doomed := createKey(t, c, types.KeySpecEccNistP256)
	if _, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: doomed.KeyId, PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("m"))
	sign := func(in kms.SignInput) func() error {
		return func() error { _, err := c.Sign(ctx, &in); return err }
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"unknown key", sign(kms.SignInput{KeyId: aws.String("alias/none"), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}), "NotFoundException"},
		{"wrong algorithm for key", sign(kms.SignInput{KeyId: p256.KeyId, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecRsassaPkcs1V15Sha256}), "InvalidKeyUsageException"},
		{"P-256 with SHA-384", sign(kms.SignInput{KeyId: p256.KeyId, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha384}), "InvalidKeyUsageException"},
		{"unknown algorithm", sign(kms.SignInput{KeyId: p256.KeyId, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_1"}), "ValidationException"},
		{"pending deletion", sign(kms.SignInput{KeyId: doomed.KeyId, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}), "KMSInvalidStateException"},
		{"message too long", sign(kms.SignInput{KeyId: p256.KeyId, Message: make([]byte, 4097), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}), "ValidationException"},
		{"digest too short", sign(kms.SignInput{KeyId: p256.KeyId, Message: digest[:31], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}), "ValidationException"},
		{"digest too long", sign(kms.SignInput{KeyId: p256.KeyId, Message: append(digest[:], 0), MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}), "ValidationException"},
		{"pure ed25519 with digest", sign(kms.SignInput{KeyId: ed.KeyId, Message: make([]byte, 64), MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEd25519Sha512}), "ValidationException"},
		{"unknown message type", sign(kms.SignInput{KeyId: p256.KeyId, Message: []byte("m"), MessageType: "EXTERNAL_MU", SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}), "ValidationException"},
		{"dry run", sign(kms.SignInput{KeyId: p256.KeyId, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, DryRun: aws.Bool(true)}), "DryRunOperationException"},
		{"pre-hash ed25519 with raw", sign(kms.SignInput{KeyId: ed.KeyId, Message: []byte("m"), MessageType: types.MessageTypeRaw, SigningAlgorithm: types.SigningAlgorithmSpecEd25519PhSha512}), "ValidationException"},
		{"pre-hash ed25519 with a short digest", sign(kms.SignInput{KeyId: ed.KeyId, Message: digest[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEd25519PhSha512}), "ValidationException"},
		{"public key of doomed key", func() error { _, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: doomed.KeyId}); return err }, "KMSInvalidStateException"},
		{"symmetric key", func() error { _, err := c.CreateKey(ctx, &kms.CreateKeyInput{}); return err }, "UnsupportedOperationException"},
		{"sign-verify symmetric", func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeyUsage: types.KeyUsageTypeSignVerify, KeySpec: types.KeySpecSymmetricDefault})
			return err
		}, "ValidationException"},
		{"ECC key without a usage", func() error {
			// KeyUsage defaults to ENCRYPT_DECRYPT, which no ECC key takes.
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256})
			return err
		}, "ValidationException"},
		{"Ed25519 for key agreement", func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistEdwards25519, KeyUsage: types.KeyUsageTypeKeyAgreement})
			return err
		}, "ValidationException"},
		{"RSA for encryption, valid but not served", func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
			return err
		}, "UnsupportedOperationException"},
		{"unknown key spec", func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeyUsage: types.KeyUsageTypeSignVerify, KeySpec: "ECC_NIST_P999"})
			return err
		}, "ValidationException"},
		{"deletion window 6", func() error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: p256.KeyId, PendingWindowInDays: aws.Int32(6)})
			return err
		}, "ValidationException"},
		{"deletion window 31", func() error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: p256.KeyId, PendingWindowInDays: aws.Int32(31)})
			return err
		}, "ValidationException"},
		{"deletion twice", func() error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: doomed.KeyId, PendingWindowInDays: aws.Int32(7)})
			return err
		}, "KMSInvalidStateException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.code {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
			// KMS answers a dry run that would succeed with 412, every
			// other refusal here with 400.
			want := http.StatusBadRequest
			if tt.code == "DryRunOperationException" {
				want = http.StatusPreconditionFailed
			}
			var resp *awshttp.ResponseError
			if !errors.As(err, &resp) || resp.HTTPStatusCode() != want {
				t.Errorf("HTTP status of %v: want %d", err, want)
			}
		})
	}
}

func TestDeletionWindow(t *testing.T) {
	c, clk := newLab(t)
	ctx := context.Background()
	md := createKey(t, c, types.KeySpecEccNistP256)
	out, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.Arn, PendingWindowInDays: aws.Int32(7)})
	if err != nil {
		t.Fatal(err)
	}
	want := clk.Now().Add(7 * 24 * time.Hour)
	if !out.DeletionDate.Equal(want) || out.KeyState != types.KeyStatePendingDeletion || aws.ToInt32(out.PendingWindowInDays) != 7 {
		t.Fatalf("ScheduleKeyDeletion = %v %s %d, want deletion at %v", out.DeletionDate, out.KeyState, aws.ToInt32(out.PendingWindowInDays), want)
	}
	d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId})
	if err != nil {
		t.Fatal(err)
	}
	if d.KeyMetadata.KeyState != types.KeyStatePendingDeletion || d.KeyMetadata.Enabled || !d.KeyMetadata.DeletionDate.Equal(want) {
		t.Fatalf("DescribeKey during the window: %s enabled=%v deletion=%v", d.KeyMetadata.KeyState, d.KeyMetadata.Enabled, d.KeyMetadata.DeletionDate)
	}
	clk.Advance(7*24*time.Hour - time.Second)
	if _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId}); err != nil {
		t.Fatalf("key gone a second early: %v", err)
	}
	clk.Advance(time.Second)
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId})
	var notFound *types.NotFoundException
	if !errors.As(err, &notFound) {
		t.Fatalf("DescribeKey after the deletion date: %v, want NotFoundException", err)
	}
}

func TestUnsignedRequestsRefused(t *testing.T) {
	c, _ := newLab(t)
	wrong := kms.New(c.Options(), func(o *kms.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(accessKey, "not-the-secret", "")
	})
	_, err := wrong.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidSignatureException" {
		t.Fatalf("CreateKey with a wrong secret: %v, want InvalidSignatureException", err)
	}
}

// TestConcurrentUse signs, creates and deletes keys from many goroutines at
// once, as parallel terraform applies do; run it with -race.
func TestConcurrentUse(t *testing.T) {
	c, _ := newLab(t)
	ctx := context.Background()
	shared := createKey(t, c, types.KeySpecEccNistP256)
	digest := sha256.Sum256([]byte("m"))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Go(func() {
			out, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistEdwards25519, KeyUsage: types.KeyUsageTypeSignVerify})
			if err != nil {
				errs <- err
				return
			}
			own := out.KeyMetadata
			for range 10 {
				if _, err := c.Sign(ctx, &kms.SignInput{KeyId: shared.Arn, Message: digest[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}); err != nil {
					errs <- err
				}
				if _, err := c.Sign(ctx, &kms.SignInput{KeyId: own.KeyId, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEd25519Sha512}); err != nil {
					errs <- err
				}
			}
			if _, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: own.KeyId, PendingWindowInDays: aws.Int32(7)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

package sshca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMSClient is the part of *kms.Client a KMS-backed CA uses.
type KMSClient interface {
	CreateKey(ctx context.Context, in *kms.CreateKeyInput, optFns ...func(*kms.Options)) (*kms.CreateKeyOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
	Sign(ctx context.Context, in *kms.SignInput, optFns ...func(*kms.Options)) (*kms.SignOutput, error)
	ScheduleKeyDeletion(ctx context.Context, in *kms.ScheduleKeyDeletionInput, optFns ...func(*kms.Options)) (*kms.ScheduleKeyDeletionOutput, error)
}

var _ KMSClient = (*kms.Client)(nil)

// maxKMSMessage is the largest message kms:Sign accepts with MessageType RAW,
// which Ed25519 needs (it signs the certificate itself, not a digest).
const maxKMSMessage = 4096

// KMSKeySpec is the KMS key spec that holds a CA of the given algorithm.
func KMSKeySpec(alg Algorithm) (types.KeySpec, error) {
	switch alg {
	case Ed25519:
		return types.KeySpecEccNistEdwards25519, nil
	case ECDSAP256:
		return types.KeySpecEccNistP256, nil
	case ECDSAP384:
		return types.KeySpecEccNistP384, nil
	case RSA4096:
		return types.KeySpecRsa4096, nil
	}
	_, err := ParseAlgorithm(string(alg))
	return "", err
}

// KMSKeyOptions describe a new KMS key.
type KMSKeyOptions struct {
	Description string
	Tags        map[string]string
}

// CreateKMS creates a new asymmetric SIGN_VERIFY key in KMS and returns the
// CA it backs. The private key is generated inside KMS and never leaves it.
// If the new key cannot be used, its deletion is scheduled before returning
// the error, so a failed create leaves nothing behind that costs money.
func CreateKMS(ctx context.Context, client KMSClient, alg Algorithm, opts KMSKeyOptions) (*CA, error) {
	spec, err := KMSKeySpec(alg)
	if err != nil {
		return nil, err
	}
	in := &kms.CreateKeyInput{
		KeySpec:  spec,
		KeyUsage: types.KeyUsageTypeSignVerify,
	}
	if opts.Description != "" {
		in.Description = aws.String(opts.Description)
	}
	for k, v := range opts.Tags {
		in.Tags = append(in.Tags, types.Tag{TagKey: aws.String(k), TagValue: aws.String(v)})
	}
	out, err := client.CreateKey(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("creating a %s KMS key (key spec %s) for the CA: %w", alg, spec, err)
	}
	if out.KeyMetadata == nil || out.KeyMetadata.Arn == nil {
		return nil, errors.New("creating the CA's KMS key: KMS answered without a key ARN")
	}
	arn := *out.KeyMetadata.Arn
	ca, err := OpenKMS(ctx, client, arn)
	if err != nil {
		if _, derr := DeleteKMSKey(ctx, client, arn, 7); derr != nil {
			return nil, fmt.Errorf("%w (and scheduling deletion of the unusable key %s failed too: %v)", err, arn, derr)
		}
		return nil, err
	}
	return ca, nil
}

// OpenKMS returns the CA backed by an existing KMS key (id, ARN or alias).
// The key must be enabled and asymmetric with usage SIGN_VERIFY. Errors wrap
// the SDK's typed errors, so a caller can tell a deleted key with
// errors.As(err, new(*types.NotFoundException)).
func OpenKMS(ctx context.Context, client KMSClient, keyID string) (*CA, error) {
	desc, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return nil, fmt.Errorf("describing KMS key %s: %w", keyID, err)
	}
	md := desc.KeyMetadata
	if md == nil || md.Arn == nil {
		return nil, fmt.Errorf("describing KMS key %s: KMS answered without key metadata", keyID)
	}
	if md.KeyState != types.KeyStateEnabled {
		hint := "enable it, or create a new certificate authority"
		if md.KeyState == types.KeyStatePendingDeletion {
			hint = "cancel its deletion (aws kms cancel-key-deletion, then enable-key), or create a new certificate authority"
		}
		return nil, fmt.Errorf("KMS key %s is %s, so the CA cannot sign: %s", *md.Arn, md.KeyState, hint)
	}
	if md.KeyUsage != types.KeyUsageTypeSignVerify {
		return nil, fmt.Errorf("KMS key %s has key usage %s: a CA needs an asymmetric SIGN_VERIFY key", *md.Arn, md.KeyUsage)
	}
	pub, err := client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.Arn})
	if err != nil {
		return nil, fmt.Errorf("reading the public key of KMS key %s: %w", *md.Arn, err)
	}
	key, err := x509.ParsePKIXPublicKey(pub.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("parsing the public key of KMS key %s: %w", *md.Arn, err)
	}
	ca, err := New(&KMSSigner{client: client, keyID: *md.Arn, public: key})
	if err != nil {
		return nil, fmt.Errorf("KMS key %s (key spec %s): %w", *md.Arn, pub.KeySpec, err)
	}
	return ca, nil
}

// KMSKeyID is the ARN of the KMS key behind the CA, or "" for a local CA.
func (c *CA) KMSKeyID() string {
	if s, ok := c.key.(*KMSSigner); ok {
		return s.keyID
	}
	return ""
}

// DeleteKMSKey schedules the deletion of a CA's KMS key after
// pendingWindowDays (7 to 30; KMS never deletes at once). A key that is
// already gone or already pending deletion is not an error, so destroy can
// be repeated. It returns the deletion date when KMS reports one.
func DeleteKMSKey(ctx context.Context, client KMSClient, keyID string, pendingWindowDays int32) (time.Time, error) {
	if pendingWindowDays < 7 || pendingWindowDays > 30 {
		return time.Time{}, fmt.Errorf("pending window of %d days for KMS key %s is out of range: KMS accepts 7 to 30", pendingWindowDays, keyID)
	}
	out, err := client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{
		KeyId:               aws.String(keyID),
		PendingWindowInDays: aws.Int32(pendingWindowDays),
	})
	var notFound *types.NotFoundException
	if errors.As(err, &notFound) {
		return time.Time{}, nil
	}
	var invalidState *types.KMSInvalidStateException
	if errors.As(err, &invalidState) {
		d, derr := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
		if derr == nil && d.KeyMetadata != nil && d.KeyMetadata.KeyState == types.KeyStatePendingDeletion {
			return aws.ToTime(d.KeyMetadata.DeletionDate), nil
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("scheduling deletion of KMS key %s: %w", keyID, err)
	}
	return aws.ToTime(out.DeletionDate), nil
}

// KMSSigner is a crypto.Signer whose private key lives in AWS KMS: every
// signature is one kms:Sign call. Each signature is verified against the
// public key before it is returned, so a wrong key, a wrong algorithm or a
// KMS that signs something else than asked fails here, not at login.
type KMSSigner struct {
	client KMSClient
	keyID  string
	public crypto.PublicKey
	ctx    context.Context
}

var _ ContextSigner = (*KMSSigner)(nil)

// Public returns the KMS key's public key.
func (s *KMSSigner) Public() crypto.PublicKey { return s.public }

// WithContext returns a signer whose kms:Sign calls use ctx.
func (s *KMSSigner) WithContext(ctx context.Context) crypto.Signer {
	c := *s
	c.ctx = ctx
	return &c
}

// Sign signs digest with the KMS key. Like the standard library's signers
// it takes a digest for ECDSA and RSA (sent with MessageType DIGEST, so KMS
// does not hash it again) and the whole message for Ed25519 (opts.HashFunc()
// == 0, sent RAW). ECDSA signatures are ASN.1 DER, as crypto.Signer
// promises; x/crypto/ssh re-encodes them into SSH's (r, s) form.
func (s *KMSSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	alg, msgType, err := s.signingAlgorithm(digest, opts)
	if err != nil {
		return nil, err
	}
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	out, err := s.client.Sign(ctx, &kms.SignInput{
		KeyId:            aws.String(s.keyID),
		Message:          digest,
		MessageType:      msgType,
		SigningAlgorithm: alg,
	})
	if err != nil {
		return nil, fmt.Errorf("kms:Sign with key %s: %w", s.keyID, err)
	}
	if err := s.verify(digest, opts, out.Signature); err != nil {
		return nil, fmt.Errorf("kms:Sign with key %s (%s, %s) returned a signature that does not verify against the key's public key: %w", s.keyID, alg, msgType, err)
	}
	return out.Signature, nil
}

func (s *KMSSigner) signingAlgorithm(digest []byte, opts crypto.SignerOpts) (types.SigningAlgorithmSpec, types.MessageType, error) {
	h := opts.HashFunc()
	if h != 0 && len(digest) != h.Size() {
		return "", "", fmt.Errorf("KMS signer: digest is %d bytes, %s needs %d", len(digest), h, h.Size())
	}
	switch pub := s.public.(type) {
	case *ecdsa.PublicKey:
		switch {
		case pub.Curve == elliptic.P256() && h == crypto.SHA256:
			return types.SigningAlgorithmSpecEcdsaSha256, types.MessageTypeDigest, nil
		case pub.Curve == elliptic.P384() && h == crypto.SHA384:
			return types.SigningAlgorithmSpecEcdsaSha384, types.MessageTypeDigest, nil
		}
		return "", "", fmt.Errorf("KMS signer: an ECDSA %s key does not sign %s digests", pub.Curve.Params().Name, h)
	case *rsa.PublicKey:
		if _, pss := opts.(*rsa.PSSOptions); pss {
			return "", "", errors.New("KMS signer: RSA-PSS is not used for SSH certificates")
		}
		switch h {
		case crypto.SHA256:
			return types.SigningAlgorithmSpecRsassaPkcs1V15Sha256, types.MessageTypeDigest, nil
		case crypto.SHA512:
			return types.SigningAlgorithmSpecRsassaPkcs1V15Sha512, types.MessageTypeDigest, nil
		}
		return "", "", fmt.Errorf("KMS signer: RSA signatures use SHA-256 or SHA-512, not %s", h)
	case ed25519.PublicKey:
		if h != 0 {
			return "", "", fmt.Errorf("KMS signer: Ed25519 signs the whole message, not a %s digest", h)
		}
		if len(digest) > maxKMSMessage {
			return "", "", fmt.Errorf("KMS signer: message of %d bytes is over the %d bytes kms:Sign accepts", len(digest), maxKMSMessage)
		}
		return types.SigningAlgorithmSpecEd25519Sha512, types.MessageTypeRaw, nil
	}
	return "", "", fmt.Errorf("KMS signer: key type %T is not supported", s.public)
}

func (s *KMSSigner) verify(digest []byte, opts crypto.SignerOpts, sig []byte) error {
	switch pub := s.public.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, opts.HashFunc(), digest, sig)
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, digest, sig) {
			return errors.New("Ed25519 verification failed")
		}
		return nil
	}
	return fmt.Errorf("key type %T is not supported", s.public)
}

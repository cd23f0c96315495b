package provider

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// A signer reference is how an access request names the certificate
// authority that signs its certificate: the `signer` attribute of
// passport_certificate_authority, handed to passport_access_request's
// `certificate_authority`. Passing a reference rather than the CA's id keeps
// the two resources independent of each other's state, the way
// terraform-provider-tls passes PEM text between its resources.
//
//	kms:<key ARN>            the key stays in KMS; holding the reference
//	                         grants nothing without kms:Sign permission
//	state:<base64 of PEM>    the private key itself
const (
	kmsSignerPrefix   = "kms:"
	stateSignerPrefix = "state:"
)

func kmsSignerRef(keyARN string) string { return kmsSignerPrefix + keyARN }

func stateSignerRef(privateKeyPEM []byte) string {
	return stateSignerPrefix + base64.StdEncoding.EncodeToString(privateKeyPEM)
}

// checkSignerRef tells whether ref has the shape of a signer reference,
// without calling KMS, so that a wrong value fails at plan time. Its errors
// never quote ref: a state reference is a private key.
func checkSignerRef(ref string) error {
	switch {
	case strings.HasPrefix(ref, kmsSignerPrefix):
		if strings.TrimPrefix(ref, kmsSignerPrefix) == "" {
			return errors.New("the kms: reference names no key")
		}
		return nil
	case strings.HasPrefix(ref, stateSignerPrefix):
		if _, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(ref, stateSignerPrefix)); err != nil {
			return errors.New("the state: reference is not valid base64")
		}
		return nil
	}
	return errors.New("it is not the signer attribute of a passport_certificate_authority (it must start with kms: or state:)")
}

// openSigner returns the CA a signer reference names. A KMS reference costs
// a DescribeKey and a GetPublicKey call.
func openSigner(ctx context.Context, client sshca.KMSClient, ref string) (*sshca.CA, error) {
	if err := checkSignerRef(ref); err != nil {
		return nil, err
	}
	if arn, ok := strings.CutPrefix(ref, kmsSignerPrefix); ok {
		if client == nil {
			return nil, errors.New("the certificate authority lives in KMS, but the provider has no KMS client")
		}
		return sshca.OpenKMS(ctx, client, arn)
	}
	pemBytes, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ref, stateSignerPrefix))
	ca, err := sshca.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("the state: reference does not hold a usable CA private key: %w", err)
	}
	return ca, nil
}

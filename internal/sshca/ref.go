package sshca

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// A signer reference names the certificate authority that signs a
// request's certificate: the `signer` attribute of the Terraform provider's
// passport_certificate_authority, handed to passport_access_request's
// `certificate_authority`, and what the Passport service is configured
// with. Passing a reference rather than the CA's id keeps the two resources
// independent of each other's state, the way terraform-provider-tls passes
// PEM text between its resources.
//
//	kms:<key ARN>            the key stays in KMS; holding the reference
//	                         grants nothing without kms:Sign permission
//	state:<base64 of PEM>    the private key itself
const (
	kmsSignerPrefix   = "kms:"
	stateSignerPrefix = "state:"
)

// KMSRef is the reference of a CA whose key lives in KMS.
func KMSRef(keyARN string) string { return kmsSignerPrefix + keyARN }

// StateRef is the reference of a CA whose private key is held by whoever
// holds the reference: the reference is a secret.
func StateRef(privateKeyPEM []byte) string {
	return stateSignerPrefix + base64.StdEncoding.EncodeToString(privateKeyPEM)
}

// IsRef tells whether s starts as a signer reference does. A client of
// the Passport service, whose CAs go by name, uses it to refuse sending a
// reference (which may be a private key) where a CA's name belongs.
func IsRef(s string) bool {
	return strings.HasPrefix(s, kmsSignerPrefix) || strings.HasPrefix(s, stateSignerPrefix)
}

// CheckRef tells whether ref has the shape of a signer reference,
// without calling KMS, so that a wrong value fails at plan time. Its errors
// never quote ref: a state reference is a private key.
func CheckRef(ref string) error {
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

// OpenRef returns the CA a signer reference names. A KMS reference costs
// a DescribeKey and a GetPublicKey call.
func OpenRef(ctx context.Context, client KMSClient, ref string) (*CA, error) {
	if err := CheckRef(ref); err != nil {
		return nil, err
	}
	if arn, ok := strings.CutPrefix(ref, kmsSignerPrefix); ok {
		if client == nil {
			return nil, errors.New("the certificate authority lives in KMS, but no KMS client is configured")
		}
		return OpenKMS(ctx, client, arn)
	}
	pemBytes, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ref, stateSignerPrefix))
	ca, err := ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("the state: reference does not hold a usable CA private key: %w", err)
	}
	return ca, nil
}

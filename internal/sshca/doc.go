// Package sshca is Passport's SSH certificate authority: it holds a CA key,
// locally or in AWS KMS, and signs OpenSSH user certificates that let
// exactly one short-lived user log in for exactly one access window.
//
// # Keys
//
// A CA is a crypto.Signer plus its SSH public key, of one of the algorithms
// ed25519, ecdsa-p256, ecdsa-p384 or rsa-4096. A local CA (Generate,
// ParsePrivateKey, MarshalPrivateKey) keeps its private key in OpenSSH PEM
// form, for the key_store "state". A KMS CA (CreateKMS, OpenKMS,
// DeleteKMSKey) signs every certificate with one kms:Sign call; the private
// key never exists outside KMS:
//
//	algorithm    KMS KeySpec             kms:Sign request
//	ed25519      ECC_NIST_EDWARDS25519   ED25519_SHA_512, MessageType RAW
//	ecdsa-p256   ECC_NIST_P256           ECDSA_SHA_256, MessageType DIGEST
//	ecdsa-p384   ECC_NIST_P384           ECDSA_SHA_384, MessageType DIGEST
//	rsa-4096     RSA_4096                RSASSA_PKCS1_V1_5_SHA_512, MessageType DIGEST
//
// x/crypto/ssh hashes the certificate and hands the digest to the signer,
// so ECDSA and RSA requests carry MessageType DIGEST (without it KMS would
// hash the digest again). Ed25519 has no prehash in SSH: the certificate
// itself is sent RAW, which kms:Sign accepts up to 4096 bytes; certificates
// stay far below that because user keys, key ids and source addresses are
// all bounded. ECDSA signatures come back in ASN.1 DER, which x/crypto/ssh
// re-encodes into SSH's (r, s) form. Every KMS signature is verified against
// the public key before it is used.
//
// Independent KMS implementations differ: moto 5.2.1 ignores MessageType
// (it signs the hash of a DIGEST, which the verification above refuses),
// answers ScheduleKeyDeletion by ARN with an internal error, and has no
// Ed25519 keys. AWS KMS and Passport's lab KMS implement all three.
//
// # Certificates
//
// Sign issues user certificates whose only principal is the short-lived
// user, valid for the access window back-dated by ClockSkew, with a random
// serial, a key id naming the request and requester (KeyID), permit-pty
// unless told otherwise, no forwarding unless granted, and an optional
// source-address. RSA CAs sign with rsa-sha2-512, never ssh-rsa (SHA-1).
package sshca

package kms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // the hashes the signing algorithms name
	_ "crypto/sha512"
	"errors"
)

// keySpec is an asymmetric KMS key spec the lab can create.
type keySpec struct {
	generate   func() (crypto.Signer, error)
	algorithms []string // SigningAlgorithms, in KMS's order
}

var (
	rsaAlgorithms = []string{
		"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
		"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
	}
	keySpecs = map[string]keySpec{
		"RSA_2048":              {generateRSA(2048), rsaAlgorithms},
		"RSA_3072":              {generateRSA(3072), rsaAlgorithms},
		"RSA_4096":              {generateRSA(4096), rsaAlgorithms},
		"ECC_NIST_P256":         {generateECDSA(elliptic.P256()), []string{"ECDSA_SHA_256"}},
		"ECC_NIST_P384":         {generateECDSA(elliptic.P384()), []string{"ECDSA_SHA_384"}},
		"ECC_NIST_EDWARDS25519": {generateEd25519, []string{"ED25519_SHA_512", "ED25519_PH_SHA_512"}},
	}
	// usagesBySpec is KMS's whole KeySpec enum, with the KeyUsage values each
	// spec allows (the CreateKey reference). A pair outside it is a
	// ValidationException on AWS; a valid pair the lab does not serve is the
	// lab's UnsupportedOperationException, so it is told apart from a typo.
	usagesBySpec = map[string][]string{
		"SYMMETRIC_DEFAULT":     {"ENCRYPT_DECRYPT"},
		"HMAC_224":              {"GENERATE_VERIFY_MAC"},
		"HMAC_256":              {"GENERATE_VERIFY_MAC"},
		"HMAC_384":              {"GENERATE_VERIFY_MAC"},
		"HMAC_512":              {"GENERATE_VERIFY_MAC"},
		"RSA_2048":              {"ENCRYPT_DECRYPT", "SIGN_VERIFY"},
		"RSA_3072":              {"ENCRYPT_DECRYPT", "SIGN_VERIFY"},
		"RSA_4096":              {"ENCRYPT_DECRYPT", "SIGN_VERIFY"},
		"ECC_NIST_P256":         {"SIGN_VERIFY", "KEY_AGREEMENT"},
		"ECC_NIST_P384":         {"SIGN_VERIFY", "KEY_AGREEMENT"},
		"ECC_NIST_P521":         {"SIGN_VERIFY", "KEY_AGREEMENT"},
		"ECC_SECG_P256K1":       {"SIGN_VERIFY"},
		"ECC_NIST_EDWARDS25519": {"SIGN_VERIFY"},
		"SM2":                   {"ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT"},
		"ML_DSA_44":             {"SIGN_VERIFY"},
		"ML_DSA_65":             {"SIGN_VERIFY"},
		"ML_DSA_87":             {"SIGN_VERIFY"},
	}
)

func generateRSA(bits int) func() (crypto.Signer, error) {
	return func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, bits) }
}

func generateECDSA(c elliptic.Curve) func() (crypto.Signer, error) {
	return func() (crypto.Signer, error) { return ecdsa.GenerateKey(c, rand.Reader) }
}

func generateEd25519() (crypto.Signer, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	return k, err
}

type family int

const (
	familyECDSA family = iota
	familyPKCS1
	familyPSS
	familyEd25519   // pure Ed25519: signs the message itself, RAW only
	familyEd25519ph // Ed25519ph over a SHA-512 digest
)

// signingAlgorithm is one SigningAlgorithmSpec: how a message becomes a
// digest and how the digest is signed.
type signingAlgorithm struct {
	family family
	hash   crypto.Hash // 0 for pure Ed25519
}

var signingAlgorithms = map[string]signingAlgorithm{
	"RSASSA_PSS_SHA_256":        {familyPSS, crypto.SHA256},
	"RSASSA_PSS_SHA_384":        {familyPSS, crypto.SHA384},
	"RSASSA_PSS_SHA_512":        {familyPSS, crypto.SHA512},
	"RSASSA_PKCS1_V1_5_SHA_256": {familyPKCS1, crypto.SHA256},
	"RSASSA_PKCS1_V1_5_SHA_384": {familyPKCS1, crypto.SHA384},
	"RSASSA_PKCS1_V1_5_SHA_512": {familyPKCS1, crypto.SHA512},
	"ECDSA_SHA_256":             {familyECDSA, crypto.SHA256},
	"ECDSA_SHA_384":             {familyECDSA, crypto.SHA384},
	"ECDSA_SHA_512":             {familyECDSA, crypto.SHA512},
	"ED25519_SHA_512":           {familyEd25519, 0},
	"ED25519_PH_SHA_512":        {familyEd25519ph, crypto.SHA512},
}

// digest turns Message into what the key signs: the hash of a RAW message,
// or a DIGEST as given once its length fits the algorithm. Pure Ed25519
// signs the message itself and takes RAW only. Ed25519ph takes DIGEST only
// and, as KMS documents, still hashes it (FIPS 186-5 7.8.1 step 1): the
// 64 bytes given are hashed twice, once by the caller and once here.
func (a signingAlgorithm) digest(message []byte, messageType, name string) ([]byte, error) {
	switch a.family {
	case familyEd25519:
		if messageType != "RAW" {
			return nil, errors.New("ED25519_SHA_512 requires MessageType RAW; use ED25519_PH_SHA_512 to sign a digest")
		}
		return message, nil
	case familyEd25519ph:
		if messageType != "DIGEST" {
			return nil, errors.New("ED25519_PH_SHA_512 requires MessageType DIGEST (a SHA-512 digest of the message); use ED25519_SHA_512 to sign the message itself")
		}
		if len(message) != a.hash.Size() {
			return nil, errors.New("Digest is invalid length for algorithm " + name + ".")
		}
		h := a.hash.New()
		h.Write(message)
		return h.Sum(nil), nil
	}
	if messageType == "DIGEST" {
		if len(message) != a.hash.Size() {
			return nil, errors.New("Digest is invalid length for algorithm " + name + ".")
		}
		return message, nil
	}
	h := a.hash.New()
	h.Write(message)
	return h.Sum(nil), nil
}

var pssOptions = func(h crypto.Hash) *rsa.PSSOptions {
	// KMS's PSS uses a salt as long as the hash.
	return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
}

func (a signingAlgorithm) sign(key crypto.Signer, digest []byte) ([]byte, error) {
	switch a.family {
	case familyPSS:
		return key.Sign(rand.Reader, digest, pssOptions(a.hash))
	case familyEd25519:
		return key.Sign(rand.Reader, digest, crypto.Hash(0))
	case familyEd25519ph:
		return key.Sign(rand.Reader, digest, &ed25519.Options{Hash: crypto.SHA512})
	}
	// ECDSA answers ASN.1 DER, RSA PKCS #1 v1.5: both are what KMS returns.
	return key.Sign(rand.Reader, digest, a.hash)
}

func (a signingAlgorithm) verify(pub crypto.PublicKey, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		if a.family == familyPSS {
			return rsa.VerifyPSS(k, a.hash, digest, sig, pssOptions(a.hash)) == nil
		}
		return rsa.VerifyPKCS1v15(k, a.hash, digest, sig) == nil
	case ed25519.PublicKey:
		opts := &ed25519.Options{}
		if a.family == familyEd25519ph {
			opts.Hash = crypto.SHA512
		}
		return ed25519.VerifyWithOptions(k, digest, sig, opts) == nil
	}
	return false
}

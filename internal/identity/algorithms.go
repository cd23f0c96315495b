package identity

import (
	"fmt"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// The algorithms a signature may use. Every IdP Passport knows of signs
// with RSA-SHA256 by default; SHA-1 has had practical collisions since
// 2017, so it is refused unless Options.InsecureAllowSHA1 says otherwise.
var (
	signatureMethods = map[string]string{
		dsig.RSASHA256SignatureMethod:   "RSA-SHA256",
		dsig.RSASHA384SignatureMethod:   "RSA-SHA384",
		dsig.RSASHA512SignatureMethod:   "RSA-SHA512",
		dsig.ECDSASHA256SignatureMethod: "ECDSA-SHA256",
		dsig.ECDSASHA384SignatureMethod: "ECDSA-SHA384",
		dsig.ECDSASHA512SignatureMethod: "ECDSA-SHA512",
	}
	sha1SignatureMethods = map[string]string{
		dsig.RSASHA1SignatureMethod:   "RSA-SHA1",
		dsig.ECDSASHA1SignatureMethod: "ECDSA-SHA1",
	}
	digestMethods = map[string]string{
		"http://www.w3.org/2001/04/xmlenc#sha256":       "SHA-256",
		"http://www.w3.org/2001/04/xmldsig-more#sha384": "SHA-384",
		"http://www.w3.org/2001/04/xmlenc#sha512":       "SHA-512",
	}
	sha1DigestMethods = map[string]string{
		"http://www.w3.org/2000/09/xmldsig#sha1": "SHA-1",
	}
	// The transforms an enveloped SAML signature has: the envelope, then
	// exclusive canonicalization (what the SAML profile prescribes).
	transforms = map[string]bool{
		string(dsig.EnvelopedSignatureAltorithmId):      true,
		string(dsig.CanonicalXML10ExclusiveAlgorithmId): true,
	}
	canonicalizations = map[string]bool{
		string(dsig.CanonicalXML10ExclusiveAlgorithmId): true,
	}
)

// checkAlgorithms refuses a signature whose SignedInfo names an algorithm
// outside the allow-lists, before anything is computed with it. The
// signature's shape (one Reference) was checked by the caller.
func checkAlgorithms(sig, ref *etree.Element, allowSHA1 bool) error {
	si := child(sig, nsDSig, "SignedInfo")
	if c := algorithm(child(si, nsDSig, "CanonicalizationMethod")); !canonicalizations[c] {
		return fmt.Errorf("is canonicalized with %s; Passport accepts exclusive canonicalization (%s) only, which the SAML profile prescribes", algorithmName(c), dsig.CanonicalXML10ExclusiveAlgorithmId)
	}
	if err := allowed("signed with", algorithm(child(si, nsDSig, "SignatureMethod")), signatureMethods, sha1SignatureMethods, allowSHA1); err != nil {
		return err
	}
	if err := allowed("digested with", algorithm(child(ref, nsDSig, "DigestMethod")), digestMethods, sha1DigestMethods, allowSHA1); err != nil {
		return err
	}
	var ts []*etree.Element
	if t := child(ref, nsDSig, "Transforms"); t != nil {
		ts = children(t, nsDSig, "Transform")
	}
	for _, t := range ts {
		if a := algorithm(t); !transforms[a] {
			return fmt.Errorf("applies the transform %s; an IdP's signature uses only the enveloped-signature transform and exclusive canonicalization", algorithmName(a))
		}
	}
	return nil
}

func allowed(what, alg string, strong, sha1 map[string]string, allowSHA1 bool) error {
	if _, ok := strong[alg]; ok {
		return nil
	}
	if name, ok := sha1[alg]; ok {
		if allowSHA1 {
			return nil
		}
		return fmt.Errorf("is %s %s: SHA-1 is broken, and Passport accepts SHA-256 or stronger; configure the IdP to sign with RSA-SHA256 (until it can, Passport's insecure SHA-1 setting lets it through: insecure_allow_sha1 in the provider's saml block, --insecure-allow-sha1 for passport login)", what, name)
	}
	return fmt.Errorf("is %s %s, which Passport does not accept; configure the IdP to sign with RSA-SHA256", what, algorithmName(alg))
}

func algorithm(el *etree.Element) string {
	if el == nil {
		return ""
	}
	return el.SelectAttrValue("Algorithm", "")
}

// algorithmName quotes an algorithm URI from the response for an error.
func algorithmName(alg string) string {
	if alg == "" {
		return "no algorithm"
	}
	return "the unknown algorithm " + quote(alg)
}

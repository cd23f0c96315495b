package provider

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// caConfig declares one CA for every key store and algorithm.
func caConfig() string {
	var b strings.Builder
	for _, store := range []string{keyStoreState, keyStoreKMS} {
		for _, alg := range sshca.Algorithms() {
			fmt.Fprintf(&b, `
resource "passport_certificate_authority" %q {
  name          = "%s-%s"
  key_algorithm = %q
  key_store     = %q
}
`, caResourceName(store, alg), store, alg, alg, store)
		}
	}
	return b.String()
}

func caResourceName(store string, alg sshca.Algorithm) string {
	return store + "_" + strings.ReplaceAll(string(alg), "-", "_")
}

// sshKeyTypes is the SSH public key type each algorithm must produce.
var sshKeyTypes = map[sshca.Algorithm]string{
	sshca.Ed25519:   ssh.KeyAlgoED25519,
	sshca.ECDSAP256: ssh.KeyAlgoECDSA256,
	sshca.ECDSAP384: ssh.KeyAlgoECDSA384,
	sshca.RSA4096:   ssh.KeyAlgoRSA,
}

// TestAccCertificateAuthority walks both key stores and every algorithm
// through create, import, a KMS key deleted behind Terraform's back, and
// destroy.
func TestAccCertificateAuthority(t *testing.T) {
	l := startAccLab(t, 0)
	client := l.kmsClient()
	kmsAddr := func(alg sshca.Algorithm) string {
		return "passport_certificate_authority." + caResourceName(keyStoreKMS, alg)
	}
	stateAddr := func(alg sshca.Algorithm) string {
		return "passport_certificate_authority." + caResourceName(keyStoreState, alg)
	}

	// Every KMS key the test saw, so CheckDestroy can look at each.
	var keys []string
	recordKeys := func(s *terraform.State) error {
		for _, alg := range sshca.Algorithms() {
			a, err := attributes(s, kmsAddr(alg))
			if err != nil {
				return err
			}
			keys = append(keys, a["id"])
		}
		return nil
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: []resource.TestStep{
			{
				Config: l.config(`
resource "passport_certificate_authority" "bad" {
  name          = "bad"
  key_algorithm = "dsa"
  key_store     = "state"
}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)key_algorithm value must be one of.*"rsa-4096"`),
			},
			{
				Config: l.config(`
resource "passport_certificate_authority" "bad" {
  name          = "bad name; rm -rf /"
  key_algorithm = "ed25519"
  key_store     = "vault"
}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)(name.*key_store|key_store.*name)`),
			},
			{
				Config: l.config(caConfig()),
				Check: resource.ComposeTestCheckFunc(
					func(s *terraform.State) error {
						for _, alg := range sshca.Algorithms() {
							if err := checkStateCA(s, stateAddr(alg), alg); err != nil {
								return err
							}
							if err := checkKMSCA(s, client, kmsAddr(alg), alg); err != nil {
								return err
							}
						}
						return nil
					},
					recordKeys,
				),
			},
			{
				ResourceName:      kmsAddr(sshca.Ed25519),
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				// By key id rather than ARN, as `aws kms list-keys` shows it.
				ResourceName: kmsAddr(sshca.RSA4096),
				ImportState:  true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) {
					a, err := attributes(s, kmsAddr(sshca.RSA4096))
					if err != nil {
						return "", err
					}
					return a["id"][strings.LastIndex(a["id"], "/")+1:], nil
				},
				ImportStateVerify: true,
			},
			{
				ResourceName: stateAddr(sshca.Ed25519),
				ImportState:  true,
				ExpectError:  regexp.MustCompile(`Cannot import a state-stored certificate authority`),
			},
			{
				// Someone schedules the deletion of a CA's key outside
				// Terraform: the plan must create a new CA, not fail.
				PreConfig: func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if _, err := sshca.DeleteKMSKey(ctx, client, keys[1], 7); err != nil {
						t.Fatal(err)
					}
				},
				Config: l.config(caConfig()),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(kmsAddr(sshca.ECDSAP256), plancheck.ResourceActionCreate),
						plancheck.ExpectResourceAction(kmsAddr(sshca.Ed25519), plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction(stateAddr(sshca.ECDSAP256), plancheck.ResourceActionNoop),
					},
				},
				Check: resource.ComposeTestCheckFunc(
					func(s *terraform.State) error {
						a, err := attributes(s, kmsAddr(sshca.ECDSAP256))
						if err != nil {
							return err
						}
						if a["id"] == keys[1] {
							return fmt.Errorf("%s still uses KMS key %s, which is pending deletion", kmsAddr(sshca.ECDSAP256), keys[1])
						}
						return nil
					},
					recordKeys,
				),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, key := range keys {
				out, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
				if err != nil {
					return fmt.Errorf("KMS key %s: %w", key, err)
				}
				if out.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
					return fmt.Errorf("KMS key %s is %s after destroy, want PendingDeletion", key, out.KeyMetadata.KeyState)
				}
				if days := aws.ToTime(out.KeyMetadata.DeletionDate).Sub(time.Now()).Hours() / 24; days < 6.9 || days > 7.1 {
					return fmt.Errorf("KMS key %s is deleted in %.1f days, want 7", key, days)
				}
			}
			return nil
		},
	})
}

// checkPublicParts checks that the CA at address has a public_key that is
// an authorized_keys line of the algorithm's type, and a fingerprint_sha256
// that is its fingerprint. It returns the CA's attributes and parsed key.
func checkPublicParts(s *terraform.State, address string, alg sshca.Algorithm) (map[string]string, ssh.PublicKey, error) {
	a, err := attributes(s, address)
	if err != nil {
		return nil, nil, err
	}
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(a["public_key"]))
	if err != nil || len(rest) != 0 {
		return nil, nil, fmt.Errorf("%s: public_key %q is not one authorized_keys line: %v", address, a["public_key"], err)
	}
	if pub.Type() != sshKeyTypes[alg] {
		return nil, nil, fmt.Errorf("%s: public_key is %s, want %s", address, pub.Type(), sshKeyTypes[alg])
	}
	if got, want := a["fingerprint_sha256"], ssh.FingerprintSHA256(pub); got != want {
		return nil, nil, fmt.Errorf("%s: fingerprint_sha256 = %q, the public key's is %q", address, got, want)
	}
	return a, pub, nil
}

func checkStateCA(s *terraform.State, address string, alg sshca.Algorithm) error {
	a, pub, err := checkPublicParts(s, address, alg)
	if err != nil {
		return err
	}
	if !regexp.MustCompile(`^ca-[0-9a-f]{32}$`).MatchString(a["id"]) {
		return fmt.Errorf("%s: id %q is not ca- and 32 hex digits", address, a["id"])
	}
	ca, err := sshca.ParsePrivateKey([]byte(a["private_key_pem"]))
	if err != nil {
		return fmt.Errorf("%s: private_key_pem: %w", address, err)
	}
	if string(ca.PublicKey().Marshal()) != string(pub.Marshal()) {
		return fmt.Errorf("%s: private_key_pem does not belong to public_key", address)
	}
	if want := "state:" + base64.StdEncoding.EncodeToString([]byte(a["private_key_pem"])); a["signer"] != want {
		return fmt.Errorf("%s: signer is not state: and the base64 of private_key_pem", address)
	}
	return checkSignerSigns(nil, a["signer"], pub)
}

func checkKMSCA(s *terraform.State, client *kms.Client, address string, alg sshca.Algorithm) error {
	a, pub, err := checkPublicParts(s, address, alg)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(a["id"], "arn:aws:kms:") {
		return fmt.Errorf("%s: id %q is not a KMS key ARN", address, a["id"])
	}
	if v, ok := a["private_key_pem"]; ok && v != "" {
		return fmt.Errorf("%s: a KMS-backed CA has a private_key_pem", address)
	}
	if a["signer"] != "kms:"+a["id"] {
		return fmt.Errorf("%s: signer = %q, want kms: and the key ARN", address, a["signer"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	desc, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(a["id"])})
	if err != nil {
		return fmt.Errorf("%s: %w", address, err)
	}
	if md := desc.KeyMetadata; md.KeyUsage != kmstypes.KeyUsageTypeSignVerify || md.KeyState != kmstypes.KeyStateEnabled ||
		aws.ToString(md.Description) != kmsDescriptionPrefix+a["name"] {
		return fmt.Errorf("%s: KMS key is %s, %s, described %q", address, md.KeyUsage, md.KeyState, aws.ToString(md.Description))
	}
	return checkSignerSigns(client, a["signer"], pub)
}

// checkSignerSigns opens a signer reference as an access request would and
// checks that a certificate it signs verifies against the CA's public key.
func checkSignerSigns(client sshca.KMSClient, ref string, caKey ssh.PublicKey) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := sshca.OpenRef(ctx, client, ref)
	if err != nil {
		return err
	}
	user, err := sshca.Generate(sshca.Ed25519)
	if err != nil {
		return err
	}
	now := time.Now()
	cert, err := ca.Sign(ctx, sshca.CertRequest{
		PublicKey: user.PublicKey(), Username: "pp-check", KeyID: sshca.KeyID("ar-check", "tester"),
		ValidAfter: now, ValidBefore: now.Add(time.Hour),
	})
	if err != nil {
		return fmt.Errorf("signing with %s: %w", caKey.Type(), err)
	}
	checker := ssh.CertChecker{IsUserAuthority: func(k ssh.PublicKey) bool { return string(k.Marshal()) == string(caKey.Marshal()) }}
	if err := checker.CheckCert("pp-check", cert); err != nil {
		return fmt.Errorf("a certificate signed through the signer does not verify against public_key: %w", err)
	}
	return nil
}

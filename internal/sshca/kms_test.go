package sshca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	labkms "github.com/passport-access/terraform-provider-passport/internal/lab/kms"
)

const (
	testRegion    = "us-east-1"
	testAccessKey = "AKIDSSHCATEST0000001"
	testSecretKey = "sshca-test-secret-0123456789abcdefghij"
)

func kmsClient(endpoint string) *kms.Client {
	return kms.New(kms.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
	})
}

// labKMS serves the lab's KMS on loopback and returns the real SDK client
// pointed at it.
func labKMS(t testing.TB) *kms.Client {
	t.Helper()
	server := awsjson.NewServer(awsjson.Config{Region: testRegion, Credentials: map[string]string{testAccessKey: testSecretKey}})
	server.Register(labkms.New(labkms.Config{Region: testRegion}).API())
	srv := httptest.NewServer(server)
	t.Cleanup(srv.Close)
	return kmsClient(srv.URL)
}

func TestKMSCA(t *testing.T) {
	client := labKMS(t)
	ctx := context.Background()
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			ca, err := CreateKMS(ctx, client, alg, KMSKeyOptions{Description: "passport CA test", Tags: map[string]string{"passport:ca": "test"}})
			if err != nil {
				t.Fatal(err)
			}
			if ca.Algorithm() != alg || !strings.HasPrefix(ca.KMSKeyID(), "arn:aws:kms:") {
				t.Fatalf("CreateKMS = %s key %q", ca.Algorithm(), ca.KMSKeyID())
			}
			if _, err := ca.MarshalPrivateKey(""); err == nil {
				t.Error("a KMS CA exported a private key")
			}
			reopened, err := OpenKMS(ctx, client, ca.KMSKeyID())
			if err != nil || reopened.Fingerprint() != ca.Fingerprint() {
				t.Fatalf("OpenKMS: %v (fingerprint %s, created %s)", err, reopened.Fingerprint(), ca.Fingerprint())
			}

			req := validRequest(t)
			cert, err := reopened.Sign(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if want := alg.signatureAlgorithm(); cert.Signature.Format != want {
				t.Errorf("signature format %s, want %s", cert.Signature.Format, want)
			}
			checkCert(t, ca, cert, req.Username, windowStart.Add(time.Minute))
			if keygen, err := exec.LookPath("ssh-keygen"); err == nil {
				if out := keygenList(t, keygen, cert); !strings.Contains(out, ca.Fingerprint()+" (using "+alg.signatureAlgorithm()+")") {
					t.Errorf("ssh-keygen -L does not show the KMS CA:\n%s", out)
				}
			}

			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := ca.Sign(cancelled, validRequest(t)); !errors.Is(err, context.Canceled) {
				t.Errorf("Sign with a cancelled context: %v", err)
			}

			date, err := DeleteKMSKey(ctx, client, ca.KMSKeyID(), 7)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Until(date); d < 6*24*time.Hour || d > 8*24*time.Hour {
				t.Errorf("deletion date %s is not a week away", date)
			}
			_, err = ca.Sign(ctx, validRequest(t))
			var invalidState *types.KMSInvalidStateException
			if !errors.As(err, &invalidState) {
				t.Errorf("Sign with a key pending deletion: %v, want KMSInvalidStateException", err)
			}
			if _, err := OpenKMS(ctx, client, ca.KMSKeyID()); err == nil || !strings.Contains(err.Error(), "cancel its deletion") {
				t.Errorf("OpenKMS of a key pending deletion: %v", err)
			}
			if again, err := DeleteKMSKey(ctx, client, ca.KMSKeyID(), 7); err != nil || !again.Equal(date) {
				t.Errorf("second DeleteKMSKey = %s, %v; want %s, nil", again, err, date)
			}
		})
	}
}

func TestOpenKMSByAlias(t *testing.T) {
	client := labKMS(t)
	ctx := context.Background()
	ca, err := CreateKMS(ctx, client, ECDSAP256, KMSKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/passport-prod"), TargetKeyId: aws.String(ca.KMSKeyID())}); err != nil {
		t.Fatal(err)
	}
	byAlias, err := OpenKMS(ctx, client, "alias/passport-prod")
	if err != nil {
		t.Fatal(err)
	}
	// The CA remembers the ARN, not the alias: re-pointing the alias later
	// must not silently switch the key that signs for this CA.
	if byAlias.KMSKeyID() != ca.KMSKeyID() || byAlias.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("OpenKMS(alias) = %s %s, want %s %s", byAlias.KMSKeyID(), byAlias.Fingerprint(), ca.KMSKeyID(), ca.Fingerprint())
	}
}

func TestKMSMissingKey(t *testing.T) {
	client := labKMS(t)
	ctx := context.Background()
	const missing = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-4000-8000-000000000000"
	_, err := OpenKMS(ctx, client, missing)
	var notFound *types.NotFoundException
	if !errors.As(err, &notFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("OpenKMS of a missing key: %v", err)
	}
	if _, err := DeleteKMSKey(ctx, client, missing, 7); err != nil {
		t.Errorf("DeleteKMSKey of a missing key: %v (destroy must be repeatable)", err)
	}
	for _, days := range []int32{0, 6, 31} {
		if _, err := DeleteKMSKey(ctx, client, missing, days); err == nil {
			t.Errorf("DeleteKMSKey accepted a %d-day window", days)
		}
	}
}

// TestKMSCAAgainstMoto runs the KMS-backed CA against moto, an independent
// KMS implementation, to prove our requests are the ones AWS's API defines
// and not merely the ones our own lab understands.
//
// moto 5.2.1 ignores MessageType and always hashes Message, so a DIGEST
// request comes back signed over SHA-256(digest). The signer must then
// refuse the signature rather than hand out a certificate sshd would
// reject; with a KMS that honours DIGEST, the certificate must verify.
func TestKMSCAAgainstMoto(t *testing.T) {
	client := kmsClient(startMoto(t))
	ctx := context.Background()
	for _, alg := range []Algorithm{ECDSAP256, ECDSAP384, RSA4096} {
		t.Run(string(alg), func(t *testing.T) {
			ca, err := CreateKMS(ctx, client, alg, KMSKeyOptions{Description: "passport moto test"})
			if err != nil {
				t.Fatal(err)
			}
			if ca.Algorithm() != alg {
				t.Fatalf("moto key is %s", ca.Algorithm())
			}
			req := validRequest(t)
			cert, err := ca.Sign(ctx, req)
			switch {
			case err == nil:
				checkCert(t, ca, cert, req.Username, windowStart.Add(time.Minute))
			case strings.Contains(err.Error(), "does not verify against the key's public key"):
				t.Logf("moto signed something else than the digest, and the signer refused it: %v", err)
			default:
				t.Fatalf("Sign through moto: %v", err)
			}
			// moto 5.2.1 answers ScheduleKeyDeletion by ARN with a 500 (it
			// looks the ARN up as a bare id); AWS takes either, so use the id.
			keyID := ca.KMSKeyID()[strings.LastIndex(ca.KMSKeyID(), "/")+1:]
			if _, err := DeleteKMSKey(ctx, client, keyID, 7); err != nil {
				t.Fatal(err)
			}
			if _, err := DeleteKMSKey(ctx, client, keyID, 7); err != nil {
				t.Fatalf("second DeleteKMSKey: %v", err)
			}
			if _, err := OpenKMS(ctx, client, keyID); err == nil || !strings.Contains(err.Error(), "PendingDeletion") {
				t.Errorf("OpenKMS of a key pending deletion: %v", err)
			}
		})
	}
	t.Run("digest on the wire", func(t *testing.T) {
		// The same DIGEST request the signer sends, checked by hand: the
		// signature must be over the digest (AWS) or over its hash (moto's
		// RAW-only Sign), never anything else. Either way the message bytes,
		// algorithm name and DER signature made the round trip intact.
		ca, err := CreateKMS(ctx, client, ECDSAP256, KMSKeyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte("certificate"))
		out, err := client.Sign(ctx, &kms.SignInput{
			KeyId: aws.String(ca.KMSKeyID()), Message: digest[:],
			MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
		})
		if err != nil {
			t.Fatal(err)
		}
		pub := ca.key.Public().(*ecdsa.PublicKey)
		rehashed := sha256.Sum256(digest[:])
		if !ecdsa.VerifyASN1(pub, digest[:], out.Signature) && !ecdsa.VerifyASN1(pub, rehashed[:], out.Signature) {
			t.Fatal("moto's signature verifies neither over the digest nor over its hash")
		}
	})
	t.Run("ed25519", func(t *testing.T) {
		// moto has no ECC_NIST_EDWARDS25519 keys: the error must say which
		// key spec was refused.
		_, err := CreateKMS(ctx, client, Ed25519, KMSKeyOptions{})
		if err != nil && !strings.Contains(err.Error(), "ECC_NIST_EDWARDS25519") {
			t.Fatalf("CreateKMS(ed25519): %v", err)
		}
	})
}

// startMoto runs moto_server on a free loopback port for the test.
func startMoto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not installed (pip install 'moto[server]')")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s within 30s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKMSSignerRefusesMisuse: requests that would make KMS sign the wrong
// thing are refused before any call.
func TestKMSSignerRefusesMisuse(t *testing.T) {
	client := labKMS(t)
	ctx := context.Background()
	signers := map[Algorithm]*KMSSigner{}
	for _, alg := range []Algorithm{Ed25519, ECDSAP256, RSA4096} {
		ca, err := CreateKMS(ctx, client, alg, KMSKeyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		signers[alg] = ca.key.(*KMSSigner)
	}
	d256 := sha256.Sum256([]byte("m"))
	tests := []struct {
		name   string
		alg    Algorithm
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"p256 with SHA-384", ECDSAP256, make([]byte, 48), crypto.SHA384},
		{"p256 without hash", ECDSAP256, d256[:], crypto.Hash(0)},
		{"digest of the wrong length", ECDSAP256, d256[:31], crypto.SHA256},
		{"rsa with SHA-1", RSA4096, make([]byte, 20), crypto.SHA1},
		{"rsa-pss", RSA4096, d256[:], &rsa.PSSOptions{Hash: crypto.SHA256}},
		{"ed25519 prehashed", Ed25519, make([]byte, 64), crypto.SHA512},
		{"ed25519 message over 4096 bytes", Ed25519, make([]byte, 4097), crypto.Hash(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := signers[tt.alg].Sign(nil, tt.digest, tt.opts); err == nil || !strings.HasPrefix(err.Error(), "KMS signer:") {
				t.Fatalf("Sign: %v, want a refusal before calling KMS", err)
			}
		})
	}
}

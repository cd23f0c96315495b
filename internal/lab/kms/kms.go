// Package kms is the lab's AWS Key Management Service: asymmetric signing
// keys served over KMS's JSON 1.1 API (X-Amz-Target: TrentService.*), so
// that the real SDK client signs with it exactly as with AWS. Private keys
// never leave the service; only public keys and signatures do.
package kms

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

// Config configures the lab KMS.
type Config struct {
	Region    string // used in key ARNs; us-east-1 when empty
	AccountID string // used in key ARNs; 000000000000 when empty
	// Now is the clock that creation and deletion dates use; a key whose
	// deletion date has passed is gone. time.Now when nil.
	Now func() time.Time
}

// Service holds the lab's KMS keys. It is safe for concurrent use.
type Service struct {
	region, account string
	now             func() time.Time

	mu      sync.Mutex
	keys    map[string]*key  // by key id (a UUID)
	aliases map[string]alias // by name, "alias/name"
	pages   *awsjson.Pager
}

type alias struct {
	target  string // key id
	created time.Time
}

type key struct {
	id, arn     string
	spec, usage string
	description string
	tags        []tag
	created     time.Time
	deletion    time.Time // zero unless pending deletion
	disabled    bool      // DisableKey, or CancelKeyDeletion, which leaves a key disabled
	private     crypto.Signer
}

type tag struct {
	TagKey   string
	TagValue string
}

// New returns an empty KMS.
func New(cfg Config) *Service {
	s := &Service{region: cfg.Region, account: cfg.AccountID, now: cfg.Now,
		keys: map[string]*key{}, aliases: map[string]alias{},
		pages: awsjson.NewPager("InvalidMarkerException", "The marker is not valid for this listing.")}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "000000000000"
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// API is the service to register with an awsjson.Server.
func (s *Service) API() awsjson.Service {
	return awsjson.Service{
		TargetPrefix: "TrentService",
		SigningName:  "kms",
		Namespace:    "com.amazonaws.kms",
		Resources:    s.Resources,
		Operations: map[string]awsjson.Operation{
			"CreateKey":           s.createKey,
			"CreateAlias":         s.createAlias,
			"DescribeKey":         s.describeKey,
			"GetPublicKey":        s.getPublicKey,
			"Sign":                s.sign,
			"Verify":              s.verify,
			"ScheduleKeyDeletion": s.scheduleKeyDeletion,
			"CancelKeyDeletion":   s.cancelKeyDeletion,
			"EnableKey":           s.enableKey,
			"DisableKey":          s.disableKey,
			"ListKeys":            s.listKeys,
			"ListAliases":         s.listAliases,
		},
	}
}

type epoch = awsjson.Epoch

type keyMetadata struct {
	AWSAccountId          string
	KeyId                 string
	Arn                   string
	CreationDate          epoch
	DeletionDate          *epoch `json:",omitempty"`
	Enabled               bool
	Description           string
	KeyUsage              string
	KeyState              string
	Origin                string
	KeyManager            string
	CustomerMasterKeySpec string
	KeySpec               string
	SigningAlgorithms     []string
	MultiRegion           bool
}

func (s *Service) metadata(k *key) keyMetadata {
	m := keyMetadata{
		AWSAccountId: s.account, KeyId: k.id, Arn: k.arn, CreationDate: epoch(k.created),
		Enabled: k.deletion.IsZero() && !k.disabled, Description: k.description, KeyUsage: k.usage,
		KeyState: "Enabled", Origin: "AWS_KMS", KeyManager: "CUSTOMER",
		CustomerMasterKeySpec: k.spec, KeySpec: k.spec, SigningAlgorithms: keySpecs[k.spec].algorithms,
	}
	switch {
	case !k.deletion.IsZero():
		d := epoch(k.deletion)
		m.DeletionDate, m.KeyState = &d, "PendingDeletion"
	case k.disabled:
		m.KeyState = "Disabled"
	}
	return m
}

func validation(format string, args ...any) *awsjson.Error {
	return awsjson.Errorf("ValidationException", "1 validation error detected: "+format, args...)
}

func (s *Service) createKey(_ context.Context, input json.RawMessage) (any, error) {
	var in struct {
		KeySpec, CustomerMasterKeySpec, KeyUsage, Description, Origin string
		Tags                                                          []tag
	}
	if err := awsjson.Decode(input, &in); err != nil {
		return nil, err
	}
	spec := in.KeySpec
	if spec == "" {
		spec = in.CustomerMasterKeySpec
	}
	if spec == "" {
		spec = "SYMMETRIC_DEFAULT"
	}
	usages, known := usagesBySpec[spec]
	if !known {
		return nil, validation("Value '%s' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [%s]", spec, strings.Join(slices.Sorted(maps.Keys(usagesBySpec)), ", "))
	}
	usage := in.KeyUsage
	if usage == "" {
		usage = "ENCRYPT_DECRYPT"
	}
	if !slices.Contains([]string{"SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"}, usage) {
		return nil, validation("Value '%s' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, GENERATE_VERIFY_MAC, KEY_AGREEMENT]", usage)
	}
	if !slices.Contains(usages, usage) {
		hint := ""
		if in.KeyUsage == "" {
			hint = " (KeyUsage defaults to ENCRYPT_DECRYPT; name SIGN_VERIFY for a signing key)"
		}
		return nil, awsjson.Errorf("ValidationException", "KeyUsage %s is not compatible with KeySpec %s, which takes %s%s.", usage, spec, strings.Join(usages, " or "), hint)
	}
	ks, served := keySpecs[spec]
	if usage != "SIGN_VERIFY" || !served {
		return nil, awsjson.Errorf("UnsupportedOperationException", "The lab KMS holds asymmetric signing keys only (KeyUsage SIGN_VERIFY with KeySpec %s); %s with %s is not served.", strings.Join(servedSpecs(), ", "), spec, usage)
	}
	if in.Origin != "" && in.Origin != "AWS_KMS" {
		return nil, awsjson.Errorf("UnsupportedOperationException", "The lab KMS creates keys with Origin AWS_KMS only.")
	}
	if len(in.Description) > 8192 {
		return nil, validation("Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192")
	}
	for _, t := range in.Tags {
		if t.TagKey == "" || len(t.TagKey) > 128 || len(t.TagValue) > 256 {
			return nil, awsjson.Errorf("TagException", "Tag keys must have 1 to 128 characters and tag values at most 256.")
		}
	}
	private, err := ks.generate()
	if err != nil {
		return nil, fmt.Errorf("generating a %s key: %w", spec, err)
	}
	id := newKeyID()
	k := &key{
		id: id, arn: fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", s.region, s.account, id),
		spec: spec, usage: usage, description: in.Description, tags: in.Tags,
		created: s.now(), private: private,
	}
	s.mu.Lock()
	s.keys[id] = k
	md := s.metadata(k)
	s.mu.Unlock()
	return map[string]any{"KeyMetadata": md}, nil
}

func servedSpecs() []string {
	specs := make([]string, 0, len(keySpecs))
	for name := range keySpecs {
		specs = append(specs, name)
	}
	slices.Sort(specs)
	return specs
}

// newKeyID draws a random (version 4) UUID, the form of KMS key ids.
func newKeyID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var aliasName = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)

func (s *Service) createAlias(_ context.Context, input json.RawMessage) (any, error) {
	var in struct{ AliasName, TargetKeyId string }
	if err := awsjson.Decode(input, &in); err != nil {
		return nil, err
	}
	if !aliasName.MatchString(in.AliasName) || strings.HasPrefix(in.AliasName, "alias/aws/") {
		return nil, validation("Value '%s' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$ and must not begin with alias/aws/", in.AliasName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.lookup(in.TargetKeyId)
	if err != nil {
		return nil, err
	}
	if _, taken := s.aliases[in.AliasName]; taken {
		return nil, awsjson.Errorf("AlreadyExistsException", "An alias with the name arn:aws:kms:%s:%s:%s already exists", s.region, s.account, in.AliasName)
	}
	s.aliases[in.AliasName] = alias{target: k.id, created: s.now()}
	return nil, nil
}

// lookup resolves a KeyId (key id, key ARN, alias name or alias ARN).
// Callers hold s.mu. A key past its deletion date is deleted here, so
// deletion needs no background timer.
func (s *Service) lookup(keyID string) (*key, error) {
	if keyID == "" {
		return nil, validation("Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	if len(keyID) > 2048 {
		return nil, validation("Value at 'keyId' failed to satisfy constraint: Member must have length less than or equal to 2048")
	}
	id := keyID
	if rest, ok := strings.CutPrefix(id, "arn:aws:kms:"); ok {
		region, rest, _ := strings.Cut(rest, ":")
		account, resource, _ := strings.Cut(rest, ":")
		if region != s.region || account != s.account {
			return nil, awsjson.Errorf("NotFoundException", "Key '%s' does not exist", keyID)
		}
		id = resource
	}
	if strings.HasPrefix(id, "alias/") {
		a, ok := s.aliases[id]
		if !ok {
			return nil, awsjson.Errorf("NotFoundException", "Alias '%s' is not found.", keyID)
		}
		id = a.target
	} else {
		id = strings.TrimPrefix(id, "key/")
	}
	k, ok := s.keys[id]
	if ok && !k.deletion.IsZero() && !s.now().Before(k.deletion) {
		delete(s.keys, id)
		for name, a := range s.aliases {
			if a.target == id {
				delete(s.aliases, name)
			}
		}
		ok = false
	}
	if !ok {
		return nil, awsjson.Errorf("NotFoundException", "Key '%s' does not exist", keyID)
	}
	return k, nil
}

func (s *Service) describeKey(_ context.Context, input json.RawMessage) (any, error) {
	var in struct{ KeyId string }
	if err := awsjson.Decode(input, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.lookup(in.KeyId)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyMetadata": s.metadata(k)}, nil
}

func (s *Service) scheduleKeyDeletion(_ context.Context, input json.RawMessage) (any, error) {
	var in struct {
		KeyId               string
		PendingWindowInDays *int
	}
	if err := awsjson.Decode(input, &in); err != nil {
		return nil, err
	}
	days := 30
	if in.PendingWindowInDays != nil {
		days = *in.PendingWindowInDays
	}
	if days < 7 || days > 30 {
		return nil, validation("Value '%d' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30", days)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.lookup(in.KeyId)
	if err != nil {
		return nil, err
	}
	if !k.deletion.IsZero() {
		return nil, awsjson.Errorf("KMSInvalidStateException", "%s is pending deletion.", k.arn)
	}
	k.deletion = s.now().Add(time.Duration(days) * 24 * time.Hour)
	return map[string]any{
		"KeyId": k.arn, "DeletionDate": epoch(k.deletion),
		"KeyState": "PendingDeletion", "PendingWindowInDays": days,
	}, nil
}

// usableKey resolves a key whose public half or signatures are asked for:
// a key pending deletion refuses both, as in AWS.
func (s *Service) usableKey(keyID string) (*key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.lookup(keyID)
	if err != nil {
		return nil, err
	}
	if !k.deletion.IsZero() {
		return nil, awsjson.Errorf("KMSInvalidStateException", "%s is pending deletion.", k.arn)
	}
	if k.disabled {
		return nil, awsjson.Errorf("DisabledException", "%s is disabled.", k.arn)
	}
	if k.usage != "SIGN_VERIFY" {
		return nil, awsjson.Errorf("InvalidKeyUsageException", "%s key usage is %s which is not valid for signing.", k.arn, k.usage)
	}
	return k, nil
}

func (s *Service) getPublicKey(_ context.Context, input json.RawMessage) (any, error) {
	var in struct{ KeyId string }
	if err := awsjson.Decode(input, &in); err != nil {
		return nil, err
	}
	k, err := s.usableKey(in.KeyId)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(k.private.Public())
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"KeyId": k.arn, "PublicKey": der, "KeySpec": k.spec, "CustomerMasterKeySpec": k.spec,
		"KeyUsage": k.usage, "SigningAlgorithms": keySpecs[k.spec].algorithms,
	}, nil
}

type signInput struct {
	KeyId            string
	Message          []byte
	MessageType      string
	SigningAlgorithm string
	Signature        []byte
	DryRun           bool
}

// prepare checks a Sign or Verify request and returns the key, the
// algorithm and the digest to sign or verify.
func (s *Service) prepare(input json.RawMessage) (*key, signingAlgorithm, []byte, *signInput, error) {
	var in signInput
	if err := awsjson.Decode(input, &in); err != nil {
		return nil, signingAlgorithm{}, nil, nil, err
	}
	fail := func(err error) (*key, signingAlgorithm, []byte, *signInput, error) {
		return nil, signingAlgorithm{}, nil, nil, err
	}
	switch {
	case len(in.Message) == 0:
		return fail(validation("Value at 'message' failed to satisfy constraint: Member must have length greater than or equal to 1"))
	case len(in.Message) > 4096:
		return fail(validation("Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096"))
	}
	if in.MessageType == "" {
		in.MessageType = "RAW"
	}
	if in.MessageType != "RAW" && in.MessageType != "DIGEST" {
		return fail(validation("Value '%s' at 'messageType' failed to satisfy constraint: Member must satisfy enum value set: [RAW, DIGEST]", in.MessageType))
	}
	alg, known := signingAlgorithms[in.SigningAlgorithm]
	if !known {
		return fail(validation("Value '%s' at 'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [%s]", in.SigningAlgorithm, strings.Join(sortedAlgorithms(), ", ")))
	}
	k, err := s.usableKey(in.KeyId)
	if err != nil {
		return fail(err)
	}
	if !slices.Contains(keySpecs[k.spec].algorithms, in.SigningAlgorithm) {
		return fail(awsjson.Errorf("InvalidKeyUsageException", "Algorithm %s is incompatible with key spec %s.", in.SigningAlgorithm, k.spec))
	}
	digest, err := alg.digest(in.Message, in.MessageType, in.SigningAlgorithm)
	if err != nil {
		return fail(awsjson.Errorf("ValidationException", "%s", err))
	}
	return k, alg, digest, &in, nil
}

func sortedAlgorithms() []string {
	names := make([]string, 0, len(signingAlgorithms))
	for n := range signingAlgorithms {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (s *Service) sign(_ context.Context, input json.RawMessage) (any, error) {
	k, alg, digest, in, err := s.prepare(input)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, errDryRun
	}
	sig, err := alg.sign(k.private, digest)
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", k.arn, err)
	}
	return map[string]any{"KeyId": k.arn, "Signature": sig, "SigningAlgorithm": in.SigningAlgorithm}, nil
}

// errDryRun answers a request with DryRun that would have succeeded: HTTP
// 412, as KMS documents for testing permissions.
var errDryRun = &awsjson.Error{Code: "DryRunOperationException", Message: "The request would have succeeded, but the DryRun option is set.", HTTPStatus: http.StatusPreconditionFailed}

func (s *Service) verify(_ context.Context, input json.RawMessage) (any, error) {
	k, alg, digest, in, err := s.prepare(input)
	if err != nil {
		return nil, err
	}
	if len(in.Signature) == 0 {
		return nil, validation("Value null at 'signature' failed to satisfy constraint: Member must not be null")
	}
	if in.DryRun {
		return nil, errDryRun
	}
	if !alg.verify(k.private.Public(), digest, in.Signature) {
		return nil, awsjson.Errorf("KMSInvalidSignatureException", "The signature is not valid for the message and key %s.", k.arn)
	}
	return map[string]any{"KeyId": k.arn, "SignatureValid": true, "SigningAlgorithm": in.SigningAlgorithm}, nil
}

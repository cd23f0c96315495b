package ssm

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

// Parameter Store limits.
const (
	maxParameterVersions  = 100
	maxStandardValueChars = 4096
	maxAdvancedValueChars = 8192
	maxHierarchyLevels    = 15
	// maxParameterARNChars bounds a name together with the ARN before it
	// (arn:aws:ssm:REGION:ACCOUNT:parameter/), as Parameter Store counts it.
	maxParameterARNChars  = 1011
	defaultParameterKeyID = "alias/aws/ssm"
)

var parameterNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_.\-/]+$`)

// parameterVersion is one version of a parameter. SecureString values are
// kept sealed, as Parameter Store keeps them encrypted, so GetParameter
// without WithDecryption returns ciphertext that is useless to the caller.
type parameterVersion struct {
	name         string
	typ          string
	value        string // plaintext for String and StringList, sealed for SecureString
	version      int
	description  string
	keyID        string
	tier         string
	dataType     string
	allowedRegex string
	modified     time.Time
	user         string            // LastModifiedUser: the ARN of whoever put this version
	tags         map[string]string // set when the parameter is created, as PutParameter's Tags are
}

type putParameterInput struct {
	Name           *string
	Value          *string
	Type           *string
	Description    *string
	KeyId          *string
	Overwrite      bool
	AllowedPattern *string
	Tier           *string
	DataType       *string
	Tags           []struct{ Key, Value string }
}

type putParameterOutput struct {
	Version int64
	Tier    string
}

func (s *Service) putParameter(ctx context.Context, in *putParameterInput) (*putParameterOutput, error) {
	var v violations
	v.required(in.Name != nil, "name")
	v.required(in.Value != nil, "value")
	if in.Name != nil {
		v.length(*in.Name, "name", 1, 2048)
	}
	if in.Value != nil && *in.Value == "" {
		v.add("", "value", "Member must have length greater than or equal to 1")
	}
	if in.Type != nil && *in.Type != "String" && *in.Type != "StringList" && *in.Type != "SecureString" {
		v.add(*in.Type, "type", "Member must satisfy enum value set: [SecureString, StringList, String]")
	}
	if in.Tier != nil && *in.Tier != "Standard" && *in.Tier != "Advanced" && *in.Tier != "Intelligent-Tiering" {
		v.add(*in.Tier, "tier", "Member must satisfy enum value set: [Standard, Advanced, Intelligent-Tiering]")
	}
	if in.Description != nil {
		v.length(*in.Description, "description", 0, 1024)
	}
	if in.KeyId != nil {
		v.length(*in.KeyId, "keyId", 1, 256)
		v.pattern(*in.KeyId, "keyId", parameterKeyIDPattern)
	}
	if in.AllowedPattern != nil {
		v.length(*in.AllowedPattern, "allowedPattern", 0, 1024)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	// Parameter Store drops spaces around a name; spaces inside are refused
	// by checkParameterName.
	name, value := strings.TrimSpace(*in.Name), *in.Value
	if err := checkParameterName(name); err != nil {
		return nil, err
	}
	if limit := maxParameterARNChars - len(s.parameterARN("")); len(strings.TrimPrefix(name, "/")) > limit {
		return nil, awsjson.Errorf("ValidationException", "Parameter name %q is too long: in this region and account it can have at most %d characters.", clip(name), limit)
	}
	if strings.Contains(value, "{{") && strings.Contains(value, "}}") {
		return nil, awsjson.Errorf("ValidationException", "Parameter values can't contain values wrapped in double brackets {{ }}: parameters can't reference other parameters.")
	}
	if in.Overwrite && len(in.Tags) > 0 {
		return nil, awsjson.Errorf("ValidationException", "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.")
	}
	if in.DataType != nil && *in.DataType != "" && *in.DataType != "text" {
		return nil, awsjson.Errorf("ValidationException", "The following data type is not supported: %s (the lab supports text).", clip(*in.DataType))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	versions := s.parameters[name]
	var prev *parameterVersion
	if len(versions) > 0 {
		prev = &versions[len(versions)-1]
		if !in.Overwrite {
			return nil, awsjson.Errorf("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
		}
	}
	p := parameterVersion{name: name, version: 1, dataType: "text", tier: "Standard", modified: s.now(), user: s.caller(ctx)}
	if prev != nil {
		p.version, p.typ, p.description, p.keyID, p.tier, p.allowedRegex, p.tags = prev.version+1, prev.typ, prev.description, prev.keyID, prev.tier, prev.allowedRegex, prev.tags
	} else if len(in.Tags) > 0 {
		p.tags = make(map[string]string, len(in.Tags))
		for _, t := range in.Tags {
			p.tags[t.Key] = t.Value
		}
	}
	if in.Type != nil {
		p.typ = *in.Type
	}
	if p.typ == "" {
		return nil, awsjson.Errorf("ValidationException", "A parameter type is required when you create a parameter.")
	}
	if in.Description != nil {
		p.description = *in.Description
	}
	if in.Tier != nil {
		p.tier = *in.Tier
	}
	if in.AllowedPattern != nil {
		p.allowedRegex = *in.AllowedPattern
	}
	if p.typ == "SecureString" {
		p.keyID = defaultParameterKeyID
		if in.KeyId != nil {
			p.keyID = *in.KeyId
		}
	} else if in.KeyId != nil {
		return nil, awsjson.Errorf("ValidationException", "KeyId is only valid for SecureString parameters; %s is a %s.", name, p.typ)
	}

	chars := utf8.RuneCountInString(value)
	switch {
	case chars > maxAdvancedValueChars:
		return nil, awsjson.Errorf("ValidationException", "Parameter values are limited to %d characters; this one has %d.", maxAdvancedValueChars, chars)
	case chars > maxStandardValueChars && p.tier == "Standard":
		return nil, awsjson.Errorf("ValidationException", "Standard tier parameters support a maximum parameter value of %d characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.", maxStandardValueChars)
	case chars > maxStandardValueChars && p.tier == "Intelligent-Tiering":
		p.tier = "Advanced"
	case p.tier == "Intelligent-Tiering":
		p.tier = "Standard"
	}
	if p.allowedRegex != "" {
		re, err := regexp.Compile(p.allowedRegex)
		if err != nil {
			return nil, awsjson.Errorf("InvalidAllowedPatternException", "The allowed pattern %q is not a valid regular expression.", clip(p.allowedRegex))
		}
		if !re.MatchString(value) {
			return nil, awsjson.Errorf("ParameterPatternMismatchException", "Parameter value, cannot be validated against allowedPattern: %s", clip(p.allowedRegex))
		}
	}
	p.value = value
	if p.typ == "SecureString" {
		p.value = s.seal(value)
	}

	versions = append(versions, p)
	if len(versions) > maxParameterVersions {
		// Parameter Store deletes the oldest version to make room.
		versions = versions[len(versions)-maxParameterVersions:]
	}
	s.parameters[name] = versions
	return &putParameterOutput{Version: int64(p.version), Tier: p.tier}, nil
}

func checkParameterName(name string) error {
	bad := func(format string, args ...any) error {
		return awsjson.Errorf("ValidationException", "Parameter name %q is not valid: %s", clip(name), fmt.Sprintf(format, args...))
	}
	if !parameterNamePattern.MatchString(name) {
		return bad("only letters, digits and . - _ / are allowed.")
	}
	lower := strings.ToLower(strings.TrimPrefix(name, "/"))
	if strings.HasPrefix(lower, "aws") || strings.HasPrefix(lower, "ssm") {
		return bad(`it can't be prefixed with "aws" or "ssm" (case-insensitive).`)
	}
	if strings.Contains(name, "/") {
		if !strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
			return bad("a parameter name with a hierarchy must be fully qualified, like /team/name.")
		}
		if levels := strings.Count(name, "/"); levels > maxHierarchyLevels {
			return awsjson.Errorf("HierarchyLevelLimitExceededException", "Parameter name %q has %d hierarchy levels; the limit is %d.", clip(name), levels, maxHierarchyLevels)
		}
	}
	return nil
}

type getParameterInput struct {
	Name           *string
	WithDecryption bool
}

type parameterWire struct {
	Name             string
	Type             string
	Value            string
	Version          int64
	Selector         string `json:",omitempty"`
	LastModifiedDate *epoch
	ARN              string
	DataType         string
}

type getParameterOutput struct {
	Parameter parameterWire
}

func (s *Service) getParameter(_ context.Context, in *getParameterInput) (*getParameterOutput, error) {
	var v violations
	v.required(in.Name != nil, "name")
	if in.Name != nil {
		v.length(*in.Name, "name", 1, 2048)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, selector, err := s.resolveParameter(*in.Name)
	if err != nil {
		return nil, err
	}
	wire, err := s.parameterWire(p, selector, in.WithDecryption)
	if err != nil {
		return nil, err
	}
	return &getParameterOutput{Parameter: wire}, nil
}

// resolveParameter finds the version a GetParameter name asks for: a name
// or ARN, with an optional :version selector. Callers hold s.mu.
func (s *Service) resolveParameter(raw string) (parameterVersion, string, error) {
	name, selector := strings.TrimSpace(raw), ""
	if strings.Contains(name, " ") {
		return parameterVersion{}, "", awsjson.Errorf("ValidationException", "Parameter name %q is not valid: it can't contain spaces.", clip(name))
	}
	if rest, ok := strings.CutPrefix(name, fmt.Sprintf("arn:aws:ssm:%s:%s:parameter", s.region, s.account)); ok {
		name = rest
		if !strings.HasPrefix(name, "/") || strings.Count(name, "/") == 1 {
			name = strings.TrimPrefix(name, "/")
		}
	}
	if i := strings.LastIndex(name, ":"); i >= 0 {
		name, selector = name[:i], name[i:]
	}
	versions := s.parameters[name]
	if len(versions) == 0 {
		return parameterVersion{}, "", awsjson.Errorf("ParameterNotFound", "Parameter %s not found.", clip(name))
	}
	p := versions[len(versions)-1]
	if selector == "" {
		return p, "", nil
	}
	n, err := strconv.Atoi(selector[1:])
	for _, pv := range versions {
		if err == nil && pv.version == n {
			return pv, selector, nil
		}
	}
	return parameterVersion{}, "", awsjson.Errorf("ParameterVersionNotFound", "Systems Manager could not find version %s of %s. Verify the version and try again.", clip(selector[1:]), name)
}

// parameterWire renders a version as GetParameter and its kin answer it,
// decrypting a SecureString only when asked to.
func (s *Service) parameterWire(p parameterVersion, selector string, decrypt bool) (parameterWire, error) {
	value := p.value
	if p.typ == "SecureString" && decrypt {
		plain, err := s.unseal(p.value)
		if err != nil {
			return parameterWire{}, err
		}
		value = plain
	}
	return parameterWire{
		Name:             p.name,
		Type:             p.typ,
		Value:            value,
		Version:          int64(p.version),
		Selector:         selector,
		LastModifiedDate: epochPtr(p.modified),
		ARN:              s.parameterARN(p.name),
		DataType:         p.dataType,
	}, nil
}

func (s *Service) parameterARN(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return fmt.Sprintf("arn:aws:ssm:%s:%s:parameter%s", s.region, s.account, name)
}

// seal encrypts a SecureString value with the service's key (AES-GCM),
// standing in for the KMS envelope Parameter Store uses.
func (s *Service) seal(plain string) string {
	block, _ := aes.NewCipher(s.secureKey)
	gcm, _ := cipher.NewGCM(block)
	nonce := randomBytes(gcm.NonceSize())
	return base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, []byte(plain), nil))
}

func (s *Service) unseal(sealed string) (string, error) {
	block, _ := aes.NewCipher(s.secureKey)
	gcm, _ := cipher.NewGCM(block)
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < gcm.NonceSize() {
		return "", fmt.Errorf("ssm: sealed parameter value is corrupt")
	}
	plain, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], nil)
	if err != nil {
		return "", fmt.Errorf("ssm: sealed parameter value is corrupt: %w", err)
	}
	return string(plain), nil
}

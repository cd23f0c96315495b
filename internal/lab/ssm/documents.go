package ssm

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

// Documents: CreateDocument, UpdateDocument, UpdateDocumentDefaultVersion,
// GetDocument, DescribeDocument, ListDocuments and DeleteDocument, for
// Command documents in JSON. AWS's own script documents are there too,
// owned by Amazon, so they can be listed, described and read, and are run
// by the same code as the account's own.
//
// Versions are numbered from 1; UpdateDocument adds the next one without
// making it the default; a version's content and hash never change. Where
// AWS documents no behaviour the lab's choice is:
//   - UpdateDocument refuses content equal to any existing version's
//     (DuplicateDocumentContent), as moto does;
//   - version numbers are never reused, even after the latest version was
//     deleted, so a number names one content for good;
//   - SendCommand with a DocumentHash that is not the hash of the version
//     it runs answers InvalidDocument, the error AWS lists for a document
//     it will not run, and runs nothing.

// Limits the lab applies to documents; AWS's quotas are of this order.
const (
	maxDocuments        = 500
	maxDocumentVersions = 1000
	// maxDocumentSize is SSM's limit on a document: 64 KB, parameters at
	// run time included.
	maxDocumentSize = 64 * 1024
	amazonOwner     = "Amazon"
)

// docEntry is a document and its versions.
type docEntry struct {
	name     string
	owner    string // the account id, or "Amazon" for AWS's own
	docType  string
	versions map[int]*docVersion
	latest   int // the highest version that exists
	def      int
	made     int // the highest version ever made: numbers are never reused
	tags     []tagWire
}

// docVersion is one version of a document; it never changes.
type docVersion struct {
	number      int
	versionName string
	displayName string
	targetType  string
	content     string
	format      string
	hash, sha1  string
	created     time.Time
	spec        *spec
}

func newVersion(number int, content string, created time.Time) (*docVersion, error) {
	sp, err := parseSpec(content)
	if err != nil {
		return nil, err
	}
	s256 := sha256.Sum256([]byte(content))
	s1 := sha1.Sum([]byte(content))
	return &docVersion{number: number, content: content, format: "JSON", created: created, spec: sp,
		hash: hex.EncodeToString(s256[:]), sha1: hex.EncodeToString(s1[:])}, nil
}

// The content of AWS's two script documents as the lab holds them: the
// parameters and plugin AWS's documents declare, in schema 1.2.
const (
	shellScriptContent = `{"schemaVersion":"1.2","description":"Run a shell script or specify the commands to run.","parameters":{` +
		`"commands":{"type":"StringList","description":"(Required) Specify a shell script or a command to run.","minItems":1,"displayType":"textarea"},` +
		`"workingDirectory":{"type":"String","default":"","description":"(Optional) The path to the working directory on your instance.","maxChars":4096},` +
		`"executionTimeout":{"type":"String","default":"3600","description":"(Optional) The time in seconds for a command to complete before it is considered to have failed. Default is 3600 (1 hour). Maximum is 172800 (48 hours).","allowedPattern":"([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|(172[0-7][0-9]{2})|(172800)"}},` +
		`"runtimeConfig":{"aws:runShellScript":{"properties":[{"id":"0.aws:runShellScript","runCommand":"{{ commands }}","workingDirectory":"{{ workingDirectory }}","timeoutSeconds":"{{ executionTimeout }}"}]}}}`
	powerShellScriptContent = `{"schemaVersion":"1.2","description":"Run a PowerShell script or specify the paths to scripts to run.","parameters":{` +
		`"commands":{"type":"StringList","description":"(Required) Specify the commands to run or the paths to existing scripts on the instance.","minItems":1,"displayType":"textarea"},` +
		`"workingDirectory":{"type":"String","default":"","description":"(Optional) The path to the working directory on your instance.","maxChars":4096},` +
		`"executionTimeout":{"type":"String","default":"3600","description":"(Optional) The time in seconds for a command to be completed before it is considered to have failed. Default is 3600 (1 hour). Maximum is 172800 (48 hours).","allowedPattern":"([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|(172[0-7][0-9]{2})|(172800)"}},` +
		`"runtimeConfig":{"aws:runPowerShellScript":{"properties":[{"id":"0.aws:runPowerShellScript","runCommand":"{{ commands }}","workingDirectory":"{{ workingDirectory }}","timeoutSeconds":"{{ executionTimeout }}"}]}}}`
)

// seedDocuments adds AWS's script documents. Callers hold s.mu or own s.
func (s *Service) seedDocuments() {
	created := time.Date(2017, 8, 2, 0, 0, 0, 0, time.UTC)
	for name, content := range map[string]string{"AWS-RunShellScript": shellScriptContent, "AWS-RunPowerShellScript": powerShellScriptContent} {
		v, err := newVersion(1, content, created)
		if err != nil {
			panic("ssm: the lab's own " + name + " does not parse: " + err.Error())
		}
		s.docs[name] = &docEntry{name: name, owner: amazonOwner, docType: "Command", versions: map[int]*docVersion{1: v}, latest: 1, def: 1, made: 1}
	}
}

// Wire shapes.

type tagWire struct {
	Key   string
	Value string
}

type documentParameter struct {
	Name         string
	Type         string
	Description  string  `json:",omitempty"`
	DefaultValue *string `json:",omitempty"`
}

type documentDescription struct {
	Name            string
	DisplayName     string `json:",omitempty"`
	VersionName     string `json:",omitempty"`
	Owner           string
	CreatedDate     epoch
	Status          string
	DocumentVersion string
	Description     string              `json:",omitempty"`
	Parameters      []documentParameter `json:",omitempty"`
	PlatformTypes   []string
	DocumentType    string
	SchemaVersion   string
	LatestVersion   string
	DefaultVersion  string
	DocumentFormat  string
	TargetType      string `json:",omitempty"`
	Tags            []tagWire
	Hash            string
	HashType        string
	Sha1            string
}

type documentIdentifier struct {
	Name            string
	CreatedDate     epoch
	DisplayName     string `json:",omitempty"`
	Owner           string
	VersionName     string `json:",omitempty"`
	PlatformTypes   []string
	DocumentVersion string
	DocumentType    string
	SchemaVersion   string
	DocumentFormat  string
	TargetType      string `json:",omitempty"`
	Tags            []tagWire
}

func (s *Service) describe(e *docEntry, v *docVersion) documentDescription {
	return documentDescription{
		Name: e.name, DisplayName: v.displayName, VersionName: v.versionName, Owner: e.owner,
		CreatedDate: epoch(v.created), Status: "Active", DocumentVersion: strconv.Itoa(v.number),
		Description: v.spec.description, Parameters: v.spec.parametersWire(), PlatformTypes: v.spec.platformTypes(),
		DocumentType: e.docType, SchemaVersion: v.spec.schema,
		LatestVersion: strconv.Itoa(e.latest), DefaultVersion: strconv.Itoa(e.def),
		DocumentFormat: v.format, TargetType: v.targetType, Tags: tagsOrEmpty(e.tags),
		Hash: v.hash, HashType: "Sha256", Sha1: v.sha1,
	}
}

func tagsOrEmpty(t []tagWire) []tagWire {
	if t == nil {
		return []tagWire{}
	}
	return t
}

// Patterns from the SSM service model.
var (
	documentOwnName    = regexp.MustCompile(`^[a-zA-Z0-9_\-.]{3,128}$`)
	versionNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_\-.]{1,128}$`)
	displayNamePattern = regexp.MustCompile(`^[\w\.\-\:\/ ]*$`)
	targetTypePattern  = regexp.MustCompile(`^\/[\w\.\-\:\/]*$`)
	versionNumber      = regexp.MustCompile(`(^[1-9][0-9]*$)`)
)

// reservedPrefixes are the name prefixes AWS keeps for its own documents.
var reservedPrefixes = []string{"aws", "amazon", "amzn"}

var documentTypes = []string{"Command", "Policy", "Automation", "Session", "Package", "ApplicationConfiguration",
	"ApplicationConfigurationSchema", "DeploymentStrategy", "ChangeCalendar", "Automation.ChangeTemplate",
	"ProblemAnalysis", "ProblemAnalysisTemplate", "CloudFormation", "ConformancePackTemplate", "QuickSetup",
	"ManualApprovalPolicy", "AutoApprovalPolicy"}

var documentFormats = []string{"YAML", "JSON", "TEXT"}

// documentRef is the name, version and version name a call addresses.
type documentRef struct {
	Name            *string
	DocumentVersion *string
	VersionName     *string
}

func (r documentRef) validate(v *violations, nameMember string, arnAllowed bool) {
	v.required(r.Name != nil, "name")
	if r.Name != nil {
		pat := documentOwnName
		if arnAllowed {
			pat = documentNamePattern
		}
		v.pattern(*r.Name, nameMember, pat)
	}
	if r.DocumentVersion != nil {
		v.pattern(*r.DocumentVersion, "documentVersion", documentVersionPat)
	}
	if r.VersionName != nil {
		v.pattern(*r.VersionName, "versionName", versionNamePattern)
	}
}

// entry finds a document by name or ARN. Callers hold s.mu.
func (s *Service) entry(name string) (*docEntry, error) {
	short := name
	if strings.HasPrefix(name, "arn:") {
		prefix, after, ok := strings.Cut(name, ":document/")
		region, account := "", ""
		if parts := strings.Split(prefix, ":"); len(parts) == 5 {
			region, account = parts[3], parts[4]
		}
		if !ok || region != s.region {
			return nil, noDocument(name)
		}
		short = after
		if e := s.docs[short]; e != nil && (e.owner == amazonOwner && account != "" || e.owner != amazonOwner && account != s.account) {
			return nil, noDocument(name)
		}
	}
	e, ok := s.docs[short]
	if !ok {
		return nil, noDocument(name)
	}
	return e, nil
}

// ownDocument finds a document of the account's own; one of AWS's is
// refused with code, saying it "belongs to Amazon and <refusal>". Callers
// hold s.mu.
func (s *Service) ownDocument(name, code, refusal string) (*docEntry, error) {
	e, err := s.entry(name)
	if err != nil {
		return nil, err
	}
	if e.owner == amazonOwner {
		return nil, awsjson.Errorf(code, "Document %s belongs to Amazon and %s.", e.name, refusal)
	}
	return e, nil
}

func noDocument(name string) error {
	return awsjson.Errorf("InvalidDocument", "Document %s does not exist in this account and region.", clip(name))
}

// version finds the version a call addresses: by number, $LATEST,
// $DEFAULT or version name; the default when none is given. Callers hold
// s.mu.
func (e *docEntry) version(number, name *string) (*docVersion, error) {
	n := e.def
	if number != nil {
		switch *number {
		case "$DEFAULT":
		case "$LATEST":
			n = e.latest
		default:
			n, _ = strconv.Atoi(*number)
		}
	}
	v := e.versions[n]
	if name != nil {
		if number == nil {
			v = nil
			for _, c := range e.versions {
				if c.versionName == *name {
					v = c
				}
			}
		} else if v != nil && v.versionName != *name {
			v = nil
		}
	}
	if v == nil {
		what := "that version"
		if number != nil {
			what = "version " + clip(*number)
		}
		if name != nil {
			what += " named " + clip(*name)
		}
		return nil, awsjson.Errorf("InvalidDocumentVersion", "Document %s has no %s.", e.name, what)
	}
	return v, nil
}

type createDocumentInput struct {
	Content        *string
	Name           *string
	DisplayName    *string
	VersionName    *string
	DocumentType   *string
	DocumentFormat *string
	TargetType     *string
	Tags           []tagWire
	Requires       []any
	Attachments    []any
}

type documentDescriptionOutput struct {
	DocumentDescription documentDescription
}

func (in *createDocumentInput) validate() error {
	var v violations
	v.required(in.Content != nil, "content")
	if in.Content != nil {
		v.length(*in.Content, "content", 1, 0)
	}
	documentRef{Name: in.Name, VersionName: in.VersionName}.validate(&v, "name", false)
	checkDocumentFields(&v, in.DisplayName, in.TargetType, in.DocumentFormat)
	if in.DocumentType != nil && !slices.Contains(documentTypes, *in.DocumentType) {
		v.add(*in.DocumentType, "documentType", "Member must satisfy enum value set: [%s]", strings.Join(documentTypes, ", "))
	}
	if len(in.Tags) > 1000 {
		v.add(len(in.Tags), "tags", "Member must have length less than or equal to 1000")
	}
	for i, t := range in.Tags {
		v.length(t.Key, fmt.Sprintf("tags.%d.member.key", i+1), 1, 128)
		v.length(t.Value, fmt.Sprintf("tags.%d.member.value", i+1), 0, 256)
	}
	return v.err()
}

func checkDocumentFields(v *violations, displayName, targetType, format *string) {
	if displayName != nil {
		v.length(*displayName, "displayName", 0, 1024)
		v.pattern(*displayName, "displayName", displayNamePattern)
	}
	if targetType != nil {
		v.length(*targetType, "targetType", 0, 200)
		v.pattern(*targetType, "targetType", targetTypePattern)
	}
	if format != nil && !slices.Contains(documentFormats, *format) {
		v.add(*format, "documentFormat", "Member must satisfy enum value set: [%s]", strings.Join(documentFormats, ", "))
	}
}

// checkContent applies what the lab asks of any document's content: JSON
// (the lab does not convert YAML), Command documents only, and SSM's size.
func checkContent(content string, format, docType *string) error {
	if format != nil && *format != "JSON" {
		return invalidContent("the lab reads JSON documents only, not %s.", *format)
	}
	if docType != nil && *docType != "Command" {
		return invalidContent("the lab holds Command documents only, not %s.", *docType)
	}
	if len(content) > maxDocumentSize {
		return awsjson.Errorf("MaxDocumentSizeExceeded", "The document is %d bytes; Systems Manager takes documents of at most 64 KB.", len(content))
	}
	return nil
}

func (s *Service) createDocument(_ context.Context, in *createDocumentInput) (*documentDescriptionOutput, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	name := *in.Name
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(strings.ToLower(name), p) {
			return nil, awsjson.Errorf("ValidationException", "Document name %s starts with %q, a prefix AWS keeps for its own documents (aws, amazon, amzn); choose another name.", name, p)
		}
	}
	if err := checkContent(*in.Content, in.DocumentFormat, in.DocumentType); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.docs[name]; taken {
		return nil, awsjson.Errorf("DocumentAlreadyExists", "Document with the same name %s already exists.", name)
	}
	if s.ownDocuments() >= maxDocuments {
		return nil, awsjson.Errorf("DocumentLimitExceeded", "This account already has %d documents, the most the lab holds; delete some first.", maxDocuments)
	}
	v, err := newVersion(1, *in.Content, s.now())
	if err != nil {
		return nil, err
	}
	v.versionName, v.displayName, v.targetType = deref(in.VersionName), deref(in.DisplayName), deref(in.TargetType)
	e := &docEntry{name: name, owner: s.account, docType: "Command", versions: map[int]*docVersion{1: v}, latest: 1, def: 1, made: 1, tags: in.Tags}
	s.docs[name] = e
	return &documentDescriptionOutput{DocumentDescription: s.describe(e, v)}, nil
}

// ownDocuments counts the account's own documents. Callers hold s.mu.
func (s *Service) ownDocuments() int {
	n := 0
	for _, e := range s.docs {
		if e.owner != amazonOwner {
			n++
		}
	}
	return n
}

type updateDocumentInput struct {
	Content         *string
	Name            *string
	DisplayName     *string
	VersionName     *string
	DocumentVersion *string
	DocumentFormat  *string
	TargetType      *string
	Attachments     []any
}

func (s *Service) updateDocument(_ context.Context, in *updateDocumentInput) (*documentDescriptionOutput, error) {
	var v violations
	v.required(in.Content != nil, "content")
	if in.Content != nil {
		v.length(*in.Content, "content", 1, 0)
	}
	documentRef{Name: in.Name, DocumentVersion: in.DocumentVersion, VersionName: in.VersionName}.validate(&v, "name", false)
	checkDocumentFields(&v, in.DisplayName, in.TargetType, in.DocumentFormat)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkContent(*in.Content, in.DocumentFormat, nil); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.ownDocument(*in.Name, "InvalidDocumentOperation", "cannot be updated")
	if err != nil {
		return nil, err
	}
	if dv := deref(in.DocumentVersion); dv != "" && dv != "$LATEST" && dv != strconv.Itoa(e.latest) {
		return nil, awsjson.Errorf("InvalidDocumentVersion", "Systems Manager updates only the latest version of a document: give $LATEST or %d, not %s.", e.latest, clip(dv))
	}
	if len(e.versions) >= maxDocumentVersions {
		return nil, awsjson.Errorf("DocumentVersionLimitExceeded", "Document %s already has %d versions; delete old ones first.", e.name, maxDocumentVersions)
	}
	for _, old := range e.versions {
		if old.content == *in.Content {
			return nil, awsjson.Errorf("DuplicateDocumentContent", "The content of the association document matches another document. Change the content of the document and try again.")
		}
		if in.VersionName != nil && old.versionName == *in.VersionName {
			return nil, awsjson.Errorf("DuplicateDocumentVersionName", "Version name %s is already a version of %s.", *in.VersionName, e.name)
		}
	}
	nv, err := newVersion(e.made+1, *in.Content, s.now())
	if err != nil {
		return nil, err
	}
	prev := e.versions[e.latest]
	nv.versionName, nv.displayName, nv.targetType = deref(in.VersionName), prev.displayName, prev.targetType
	if in.DisplayName != nil {
		nv.displayName = *in.DisplayName
	}
	if in.TargetType != nil {
		nv.targetType = *in.TargetType
	}
	e.versions[nv.number] = nv
	e.latest, e.made = nv.number, nv.number
	return &documentDescriptionOutput{DocumentDescription: s.describe(e, nv)}, nil
}

type updateDocumentDefaultVersionInput struct {
	Name            *string
	DocumentVersion *string
}

type defaultVersionDescription struct {
	Name               string
	DefaultVersion     string
	DefaultVersionName string `json:",omitempty"`
}

type updateDocumentDefaultVersionOutput struct {
	Description defaultVersionDescription
}

func (s *Service) updateDocumentDefaultVersion(_ context.Context, in *updateDocumentDefaultVersionInput) (*updateDocumentDefaultVersionOutput, error) {
	var v violations
	documentRef{Name: in.Name}.validate(&v, "name", false)
	v.required(in.DocumentVersion != nil, "documentVersion")
	if in.DocumentVersion != nil {
		v.pattern(*in.DocumentVersion, "documentVersion", versionNumber)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.ownDocument(*in.Name, "InvalidDocument", "keeps its default version")
	if err != nil {
		return nil, err
	}
	dv, err := e.version(in.DocumentVersion, nil)
	if err != nil {
		return nil, err
	}
	e.def = dv.number
	return &updateDocumentDefaultVersionOutput{Description: defaultVersionDescription{Name: e.name, DefaultVersion: strconv.Itoa(dv.number), DefaultVersionName: dv.versionName}}, nil
}

type getDocumentInput struct {
	Name            *string
	DocumentVersion *string
	VersionName     *string
	DocumentFormat  *string
}

type getDocumentOutput struct {
	Name            string
	CreatedDate     epoch
	DisplayName     string `json:",omitempty"`
	VersionName     string `json:",omitempty"`
	DocumentVersion string
	Status          string
	Content         string
	DocumentType    string
	DocumentFormat  string
}

func (s *Service) getDocument(_ context.Context, in *getDocumentInput) (*getDocumentOutput, error) {
	var v violations
	documentRef{Name: in.Name, DocumentVersion: in.DocumentVersion, VersionName: in.VersionName}.validate(&v, "name", true)
	checkDocumentFields(&v, nil, nil, in.DocumentFormat)
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, dv, err := s.addressed(documentRef{Name: in.Name, DocumentVersion: in.DocumentVersion, VersionName: in.VersionName})
	if err != nil {
		return nil, err
	}
	if f := deref(in.DocumentFormat); f != "" && f != dv.format {
		return nil, awsjson.Errorf("ValidationException", "The lab returns documents in the format they were written in (%s) and does not convert them to %s.", dv.format, f)
	}
	return &getDocumentOutput{Name: e.name, CreatedDate: epoch(dv.created), DisplayName: dv.displayName, VersionName: dv.versionName,
		DocumentVersion: strconv.Itoa(dv.number), Status: "Active", Content: dv.content, DocumentType: e.docType, DocumentFormat: dv.format}, nil
}

type describeDocumentOutput struct {
	Document documentDescription
}

func (s *Service) describeDocument(_ context.Context, in *documentRef) (*describeDocumentOutput, error) {
	var v violations
	in.validate(&v, "name", true)
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, dv, err := s.addressed(*in)
	if err != nil {
		return nil, err
	}
	return &describeDocumentOutput{Document: s.describe(e, dv)}, nil
}

// addressed finds the document and version ref names. Callers hold s.mu.
func (s *Service) addressed(ref documentRef) (*docEntry, *docVersion, error) {
	e, err := s.entry(*ref.Name)
	if err != nil {
		return nil, nil, err
	}
	dv, err := e.version(ref.DocumentVersion, ref.VersionName)
	if err != nil {
		return nil, nil, err
	}
	return e, dv, nil
}

type deleteDocumentInput struct {
	Name            *string
	DocumentVersion *string
	VersionName     *string
	Force           bool
}

func (s *Service) deleteDocument(_ context.Context, in *deleteDocumentInput) (*struct{}, error) {
	var v violations
	documentRef{Name: in.Name, DocumentVersion: in.DocumentVersion, VersionName: in.VersionName}.validate(&v, "name", false)
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.ownDocument(*in.Name, "InvalidDocumentOperation", "cannot be deleted")
	if err != nil {
		return nil, err
	}
	if in.DocumentVersion == nil && in.VersionName == nil {
		delete(s.docs, e.name)
		return &struct{}{}, nil
	}
	dv, err := e.version(in.DocumentVersion, in.VersionName)
	if err != nil {
		return nil, err
	}
	if dv.number == e.def {
		return nil, awsjson.Errorf("InvalidDocumentOperation", "Version %d is the default version of %s and can't be deleted; make another version the default, or delete the whole document.", dv.number, e.name)
	}
	delete(e.versions, dv.number)
	if dv.number == e.latest {
		e.latest = 0
		for n := range e.versions {
			e.latest = max(e.latest, n)
		}
	}
	return &struct{}{}, nil
}

type documentFilter struct {
	Key    string
	Values []string
}

type listDocumentsInput struct {
	DocumentFilterList []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	Filters    []documentFilter
	MaxResults *int64
	NextToken  *string
}

type listDocumentsOutput struct {
	DocumentIdentifiers []documentIdentifier
	NextToken           string `json:",omitempty"`
}

// listDocuments lists documents by name, the default version of each.
// Filters: Name (a prefix), Owner (one of Self, Amazon, Private, Public,
// ThirdParty, All), PlatformTypes, DocumentType, TargetType,
// SearchKeyword (a part of the name) and tag:<key>; documents must match
// every key and, within a key, any value.
func (s *Service) listDocuments(_ context.Context, in *listDocumentsInput) (*listDocumentsOutput, error) {
	var v violations
	if in.DocumentFilterList != nil && len(in.DocumentFilterList) < 1 {
		v.add("[]", "documentFilterList", "Member must have length greater than or equal to 1")
	}
	if len(in.Filters) > 6 {
		v.add(len(in.Filters), "filters", "Member must have length less than or equal to 6")
	}
	for i, f := range in.Filters {
		v.length(f.Key, fmt.Sprintf("filters.%d.member.key", i+1), 1, 128)
		for _, val := range f.Values {
			v.length(val, fmt.Sprintf("filters.%d.member.values", i+1), 1, 256)
		}
	}
	if in.MaxResults != nil {
		v.valueRange(*in.MaxResults, "maxResults", 1, 50)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	filters := slices.Clone(in.Filters)
	for _, f := range in.DocumentFilterList {
		key := f.Key
		if key == "Name" || key == "name" {
			key = "Name"
		}
		filters = append(filters, documentFilter{Key: key, Values: []string{f.Value}})
	}
	for _, f := range filters {
		switch {
		case f.Key == "Name", f.Key == "PlatformTypes", f.Key == "DocumentType", f.Key == "TargetType", f.Key == "SearchKeyword",
			strings.HasPrefix(f.Key, "tag:") && len(f.Key) > 4:
		case f.Key == "Owner":
			if len(f.Values) != 1 {
				return nil, awsjson.Errorf("ValidationException", "Only one Owner can be specified in a request.")
			}
		default:
			return nil, awsjson.Errorf("InvalidFilterKey", "%q is not a document filter key; use Name, Owner, PlatformTypes, DocumentType, TargetType, SearchKeyword or tag:<key>.", clip(f.Key))
		}
	}
	limit := 50
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []documentIdentifier
	for _, e := range s.docs {
		dv := e.versions[e.def]
		if !s.documentMatches(e, dv, filters) {
			continue
		}
		ids = append(ids, documentIdentifier{
			Name: e.name, CreatedDate: epoch(dv.created), DisplayName: dv.displayName, Owner: e.owner, VersionName: dv.versionName,
			PlatformTypes: dv.spec.platformTypes(), DocumentVersion: strconv.Itoa(dv.number), DocumentType: e.docType,
			SchemaVersion: dv.spec.schema, DocumentFormat: dv.format, TargetType: dv.targetType, Tags: tagsOrEmpty(e.tags),
		})
	}
	slices.SortFunc(ids, func(a, b documentIdentifier) int { return strings.Compare(a.Name, b.Name) })
	pageItems, next, err := awsjson.Page(s.pages, "ListDocuments", deref(in.NextToken), limit, ids, func(d documentIdentifier) string { return d.Name })
	if err != nil {
		return nil, err
	}
	return &listDocumentsOutput{DocumentIdentifiers: nonNil(pageItems), NextToken: next}, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// documentMatches applies ListDocuments' filters. Callers hold s.mu.
func (s *Service) documentMatches(e *docEntry, dv *docVersion, filters []documentFilter) bool {
	for _, f := range filters {
		var ok bool
		for _, val := range f.Values {
			switch {
			case f.Key == "Name":
				ok = ok || strings.HasPrefix(e.name, val)
			case f.Key == "SearchKeyword":
				ok = ok || strings.Contains(strings.ToLower(e.name), strings.ToLower(val))
			case f.Key == "Owner":
				switch val {
				case "Self", "Private":
					ok = e.owner == s.account
				case "Amazon":
					ok = e.owner == amazonOwner
				case "All":
					ok = true
				}
			case f.Key == "PlatformTypes":
				ok = ok || slices.Contains(dv.spec.platformTypes(), val)
			case f.Key == "DocumentType":
				ok = ok || e.docType == val
			case f.Key == "TargetType":
				ok = ok || dv.targetType == val
			default:
				key := strings.TrimPrefix(f.Key, "tag:")
				for _, t := range e.tags {
					ok = ok || t.Key == key && t.Value == val
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// commandDocument finds the document version SendCommand runs and checks
// the hash the caller gave for it. Callers hold s.mu.
func (s *Service) commandDocument(name string, version, hash, hashType *string) (*docEntry, *docVersion, error) {
	e, dv, err := s.addressed(documentRef{Name: &name, DocumentVersion: version})
	if err != nil {
		return nil, nil, err
	}
	if hash != nil {
		want := dv.hash
		if deref(hashType) == "Sha1" {
			want = dv.sha1
		}
		if *hash != want {
			return nil, nil, awsjson.Errorf("InvalidDocument", "The DocumentHash does not match version %d of document %s; it was changed after the hash was taken. Nothing was sent.", dv.number, e.name)
		}
	}
	return e, dv, nil
}

// runtimeSize is what SSM counts against a document's 64 KB at run time:
// its content and the parameters given.
func runtimeSize(content string, params map[string][]string) int {
	n := len(content)
	for k, vs := range params {
		n += len(k)
		for _, v := range vs {
			n += utf8.RuneCountInString(v)
		}
	}
	return n
}

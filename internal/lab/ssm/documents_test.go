package ssm

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awscli"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// greetContent is a Command document with the parameter kinds Passport's
// documents use: a String with an allowedPattern spliced into a line, one
// with allowedValues and a default, and the execution timeout.
func greetContent(greeting string) string {
	return `{"schemaVersion":"2.2","description":"Greets someone.","parameters":{` +
		`"who":{"type":"String","description":"Whom to greet.","allowedPattern":"^[A-Za-z0-9+/]+={0,2}$","maxChars":16},` +
		`"tone":{"type":"String","default":"calm","allowedValues":["calm","loud"]},` +
		`"executionTimeout":{"type":"String","default":"3600","allowedPattern":"([1-9][0-9]{0,4})|(172800)"}},` +
		`"mainSteps":[{"action":"aws:runShellScript","name":"greet","precondition":{"StringEquals":["platformType","Linux"]},` +
		`"inputs":{"runCommand":["#!/bin/sh","WHO='{{ who }}'","echo ` + greeting + ` \"$WHO\" {{tone}}"],"timeoutSeconds":"{{ executionTimeout }}"}}]}`
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (l *lab) createDocument(name, content string) *types.DocumentDescription {
	l.t.Helper()
	out, err := l.client.CreateDocument(context.Background(), &ssm.CreateDocumentInput{
		Name: aws.String(name), Content: aws.String(content), DocumentType: types.DocumentTypeCommand, DocumentFormat: types.DocumentFormatJson,
	})
	if err != nil {
		l.t.Fatalf("CreateDocument %s: %v", name, err)
	}
	return out.DocumentDescription
}

func TestDocumentVersionsAndHashes(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	v1 := greetContent("hello")
	desc := l.createDocument("Team-Greet", v1)
	if aws.ToString(desc.DocumentVersion) != "1" || aws.ToString(desc.DefaultVersion) != "1" || aws.ToString(desc.LatestVersion) != "1" ||
		aws.ToString(desc.Hash) != sha256Hex(v1) || desc.HashType != types.DocumentHashTypeSha256 || desc.Status != types.DocumentStatusActive ||
		aws.ToString(desc.Owner) != testAccount || desc.DocumentType != types.DocumentTypeCommand || aws.ToString(desc.SchemaVersion) != "2.2" ||
		aws.ToString(desc.Description) != "Greets someone." || !slices.Contains(desc.PlatformTypes, types.PlatformTypeLinux) {
		t.Fatalf("CreateDocument described %+v", desc)
	}
	var params []string
	for _, p := range desc.Parameters {
		params = append(params, fmt.Sprintf("%s:%s:%s", aws.ToString(p.Name), p.Type, aws.ToString(p.DefaultValue)))
	}
	if got := strings.Join(params, " "); got != "executionTimeout:String:3600 tone:String:calm who:String:" {
		t.Fatalf("parameters %s", got)
	}

	_, err := l.client.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("Team-Greet"), Content: aws.String(v1)})
	if !is[*types.DocumentAlreadyExists](err) {
		t.Fatalf("creating it again: %v, want DocumentAlreadyExists", err)
	}

	v2 := greetContent("hi")
	up, err := l.client.UpdateDocument(ctx, &ssm.UpdateDocumentInput{Name: aws.String("Team-Greet"), Content: aws.String(v2), DocumentVersion: aws.String("$LATEST")})
	if err != nil {
		t.Fatal(err)
	}
	if d := up.DocumentDescription; aws.ToString(d.DocumentVersion) != "2" || aws.ToString(d.LatestVersion) != "2" || aws.ToString(d.DefaultVersion) != "1" || aws.ToString(d.Hash) != sha256Hex(v2) {
		t.Fatalf("UpdateDocument described version %s latest %s default %s", aws.ToString(d.DocumentVersion), aws.ToString(d.LatestVersion), aws.ToString(d.DefaultVersion))
	}
	for name, in := range map[string]*ssm.UpdateDocumentInput{
		"same content as version 1": {Name: aws.String("Team-Greet"), Content: aws.String(v1)},
		"same content as version 2": {Name: aws.String("Team-Greet"), Content: aws.String(v2)},
	} {
		if _, err := l.client.UpdateDocument(ctx, in); !is[*types.DuplicateDocumentContent](err) {
			t.Errorf("%s: %v, want DuplicateDocumentContent", name, err)
		}
	}
	_, err = l.client.UpdateDocument(ctx, &ssm.UpdateDocumentInput{Name: aws.String("Team-Greet"), Content: aws.String(greetContent("hey")), DocumentVersion: aws.String("1")})
	if !is[*types.InvalidDocumentVersion](err) {
		t.Fatalf("updating an old version: %v, want InvalidDocumentVersion", err)
	}

	// The default stays version 1 until it is moved.
	got, err := l.client.GetDocument(ctx, &ssm.GetDocumentInput{Name: aws.String("Team-Greet")})
	if err != nil || aws.ToString(got.Content) != v1 || aws.ToString(got.DocumentVersion) != "1" || got.DocumentFormat != types.DocumentFormatJson {
		t.Fatalf("GetDocument default: %v, version %s", err, aws.ToString(got.DocumentVersion))
	}
	def, err := l.client.UpdateDocumentDefaultVersion(ctx, &ssm.UpdateDocumentDefaultVersionInput{Name: aws.String("Team-Greet"), DocumentVersion: aws.String("2")})
	if err != nil || aws.ToString(def.Description.DefaultVersion) != "2" {
		t.Fatalf("UpdateDocumentDefaultVersion: %v", err)
	}
	got, err = l.client.GetDocument(ctx, &ssm.GetDocumentInput{Name: aws.String("Team-Greet")})
	if err != nil || aws.ToString(got.Content) != v2 {
		t.Fatalf("GetDocument after moving the default: %v", err)
	}
	old, err := l.client.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String("arn:aws:ssm:" + testRegion + ":" + testAccount + ":document/Team-Greet"), DocumentVersion: aws.String("1")})
	if err != nil || aws.ToString(old.Document.Hash) != sha256Hex(v1) || aws.ToString(old.Document.DefaultVersion) != "2" {
		t.Fatalf("DescribeDocument version 1 by ARN: %v", err)
	}

	for name, call := range map[string]func() error{
		"default to a missing version": func() error {
			_, err := l.client.UpdateDocumentDefaultVersion(ctx, &ssm.UpdateDocumentDefaultVersionInput{Name: aws.String("Team-Greet"), DocumentVersion: aws.String("9")})
			return err
		},
		"get a missing version": func() error {
			_, err := l.client.GetDocument(ctx, &ssm.GetDocumentInput{Name: aws.String("Team-Greet"), DocumentVersion: aws.String("3")})
			return err
		},
	} {
		if err := call(); !is[*types.InvalidDocumentVersion](err) {
			t.Errorf("%s: %v, want InvalidDocumentVersion", name, err)
		}
	}
	if _, err := l.client.DeleteDocument(ctx, &ssm.DeleteDocumentInput{Name: aws.String("Team-Greet"), DocumentVersion: aws.String("2")}); !is[*types.InvalidDocumentOperation](err) {
		t.Fatalf("deleting the default version: %v, want InvalidDocumentOperation", err)
	}
	if _, err := l.client.DeleteDocument(ctx, &ssm.DeleteDocumentInput{Name: aws.String("Team-Greet"), DocumentVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.client.GetDocument(ctx, &ssm.GetDocumentInput{Name: aws.String("Team-Greet"), DocumentVersion: aws.String("1")}); !is[*types.InvalidDocumentVersion](err) {
		t.Fatalf("a deleted version: %v", err)
	}
	if _, err := l.client.DeleteDocument(ctx, &ssm.DeleteDocumentInput{Name: aws.String("Team-Greet")}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.client.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String("Team-Greet")}); !is[*types.InvalidDocument](err) {
		t.Fatalf("a deleted document: %v, want InvalidDocument", err)
	}
	if _, err := l.client.DeleteDocument(ctx, &ssm.DeleteDocumentInput{Name: aws.String("AWS-RunShellScript")}); !is[*types.InvalidDocumentOperation](err) {
		t.Fatalf("deleting AWS's document: %v, want InvalidDocumentOperation", err)
	}
}

func TestCreateDocumentRefusesBadDocuments(t *testing.T) {
	l := newLab(t)
	good := greetContent("hello")
	tests := []struct {
		name, docName, content string
		want                   func(error) bool
		msg                    string
	}{
		{"reserved prefix", "AWS-MyScript", good, is[*types.ValidationException], "prefix AWS keeps"},
		{"reserved prefix in lower case", "amazon-thing", good, is[*types.ValidationException], "prefix AWS keeps"},
		{"name with a space", "my doc", good, is[*types.ValidationException], "regular expression pattern"},
		{"not JSON", "Team-Bad", "schemaVersion: '2.2'", is[*types.InvalidDocumentContent], "JSON"},
		{"no schema", "Team-Bad", `{"mainSteps":[]}`, is[*types.InvalidDocumentContent], "schemaVersion"},
		{"old schema", "Team-Bad", `{"schemaVersion":"0.3","mainSteps":[]}`, is[*types.InvalidDocumentSchemaVersion], "0.3"},
		{"unknown plugin", "Team-Bad", strings.Replace(good, "aws:runShellScript", "aws:downloadContent", 1), is[*types.InvalidDocumentContent], "aws:downloadContent"},
		{"undeclared parameter", "Team-Bad", strings.Replace(good, "{{ who }}", "{{ whom }}", 1), is[*types.InvalidDocumentContent], `"whom"`},
		{"pattern that does not compile", "Team-Bad", strings.Replace(good, `^[A-Za-z0-9+/]+={0,2}$`, `[`, 1), is[*types.InvalidDocumentContent], "allowedPattern"},
		{"too big", "Team-Bad", strings.Replace(good, "Greets someone.", strings.Repeat("x", 65*1024), 1), is[*types.MaxDocumentSizeExceeded], "64 KB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.client.CreateDocument(context.Background(), &ssm.CreateDocumentInput{Name: aws.String(tt.docName), Content: aws.String(tt.content)})
			if !tt.want(err) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want an error saying %q", err, tt.msg)
			}
		})
	}
	out, err := l.client.ListDocuments(context.Background(), &ssm.ListDocumentsInput{Filters: []types.DocumentKeyValuesFilter{{Key: aws.String("Owner"), Values: []string{"Self"}}}})
	if err != nil || len(out.DocumentIdentifiers) != 0 {
		t.Fatalf("refused documents were kept: %v %v", err, out)
	}
}

func TestListDocumentsPagesAndFilters(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	for i := range 7 {
		l.createDocument(fmt.Sprintf("Team-Doc-%d", i), greetContent(fmt.Sprintf("hello%d", i)))
	}
	l.createDocument("Other-Doc", greetContent("x"))

	var names []string
	pages := 0
	p := ssm.NewListDocumentsPaginator(l.client, &ssm.ListDocumentsInput{
		MaxResults: aws.Int32(3),
		Filters:    []types.DocumentKeyValuesFilter{{Key: aws.String("Owner"), Values: []string{"Self"}}, {Key: aws.String("Name"), Values: []string{"Team-"}}},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, d := range out.DocumentIdentifiers {
			names = append(names, aws.ToString(d.Name))
			if aws.ToString(d.Owner) != testAccount || aws.ToString(d.DocumentVersion) != "1" || d.DocumentType != types.DocumentTypeCommand {
				t.Errorf("identifier %+v", d)
			}
		}
	}
	if pages != 3 || strings.Join(names, ",") != "Team-Doc-0,Team-Doc-1,Team-Doc-2,Team-Doc-3,Team-Doc-4,Team-Doc-5,Team-Doc-6" {
		t.Fatalf("%d pages: %v", pages, names)
	}

	out, err := l.client.ListDocuments(ctx, &ssm.ListDocumentsInput{Filters: []types.DocumentKeyValuesFilter{{Key: aws.String("Owner"), Values: []string{"Amazon"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var amazon []string
	for _, d := range out.DocumentIdentifiers {
		amazon = append(amazon, aws.ToString(d.Name)+"/"+aws.ToString(d.Owner))
	}
	if strings.Join(amazon, ",") != "AWS-RunPowerShellScript/Amazon,AWS-RunShellScript/Amazon" {
		t.Fatalf("Amazon's documents: %v", amazon)
	}
	for name, in := range map[string]*ssm.ListDocumentsInput{
		"unknown key": {Filters: []types.DocumentKeyValuesFilter{{Key: aws.String("Colour"), Values: []string{"red"}}}},
	} {
		if _, err := l.client.ListDocuments(ctx, in); !is[*types.InvalidFilterKey](err) {
			t.Errorf("%s: %v, want InvalidFilterKey", name, err)
		}
	}
	if _, err := l.client.ListDocuments(ctx, &ssm.ListDocumentsInput{NextToken: aws.String("forged")}); !is[*types.InvalidNextToken](err) {
		t.Fatalf("forged token: %v", err)
	}
}

func TestSendCommandRunsOwnDocument(t *testing.T) {
	l := newLab(t)
	id, host := l.add(node.Linux, nil)
	content := greetContent("hello")
	desc := l.createDocument("Team-Greet", content)

	cmd := l.send(&ssm.SendCommandInput{
		DocumentName: aws.String("Team-Greet"), DocumentVersion: aws.String("1"),
		DocumentHash: desc.Hash, DocumentHashType: types.DocumentHashTypeSha256,
		InstanceIds: []string{id},
		Parameters:  map[string][]string{"who": {"YWxpY2U="}, "executionTimeout": {"90"}},
	})
	inv := l.waitDetail(*cmd.CommandId, id, "Success")
	if aws.ToString(inv.DocumentName) != "Team-Greet" || aws.ToString(inv.PluginName) != "greet" || aws.ToString(inv.DocumentVersion) != "1" {
		t.Fatalf("invocation %+v", inv)
	}
	want := node.Script{Document: "Team-Greet", Plugin: "aws:runShellScript", Timeout: 90 * time.Second,
		Source: "#!/bin/sh\nWHO='YWxpY2U='\necho hello \"$WHO\" calm\n"}
	if runs := host.runs(); len(runs) != 1 || runs[0] != want {
		t.Fatalf("the node ran %+v, want %+v", runs, want)
	}
}

func TestSendCommandChecksDocumentParametersAndHash(t *testing.T) {
	l := newLab(t)
	id, host := l.add(node.Linux, nil)
	v1 := greetContent("hello")
	l.createDocument("Team-Greet", v1)
	if _, err := l.client.UpdateDocument(context.Background(), &ssm.UpdateDocumentInput{Name: aws.String("Team-Greet"), Content: aws.String(greetContent("hi"))}); err != nil {
		t.Fatal(err)
	}
	send := func(params map[string][]string, mod func(*ssm.SendCommandInput)) error {
		in := &ssm.SendCommandInput{DocumentName: aws.String("Team-Greet"), InstanceIds: []string{id}, Parameters: params}
		if mod != nil {
			mod(in)
		}
		_, err := l.client.SendCommand(context.Background(), in)
		return err
	}
	who := map[string][]string{"who": {"YWxpY2U="}}
	tests := []struct {
		name   string
		params map[string][]string
		mod    func(*ssm.SendCommandInput)
		want   func(error) bool
		msg    string
	}{
		{"quote in a base64 parameter", map[string][]string{"who": {"x'; rm -rf / #"}}, nil, is[*types.InvalidParameters], "who does not match its allowed pattern"},
		{"newline in a base64 parameter", map[string][]string{"who": {"YWxp\nY2U="}}, nil, is[*types.InvalidParameters], "allowed pattern"},
		{"braces in a base64 parameter", map[string][]string{"who": {"{{tone}}"}}, nil, is[*types.InvalidParameters], "allowed pattern"},
		{"too long", map[string][]string{"who": {strings.Repeat("A", 20)}}, nil, is[*types.InvalidParameters], "must be at most 16 characters"},
		{"value not allowed", map[string][]string{"who": {"YQ=="}, "tone": {"angry"}}, nil, is[*types.InvalidParameters], "tone must be one of calm and loud"},
		{"required parameter missing", map[string][]string{"tone": {"loud"}}, nil, is[*types.InvalidParameters], "who is required"},
		{"two values for a String", map[string][]string{"who": {"YQ==", "Yg=="}}, nil, is[*types.InvalidParameters], "exactly one value"},
		{"unknown parameter", map[string][]string{"who": {"YQ=="}, "commands": {"id"}}, nil, is[*types.InvalidParameters], `"commands" is not a parameter of this document (it takes executionTimeout, tone and who)`},
		{"hash of another version", who, func(in *ssm.SendCommandInput) { in.DocumentHash = aws.String(sha256Hex(greetContent("hi"))) }, is[*types.InvalidDocument], "does not match version 1"},
		{"tampered hash", who, func(in *ssm.SendCommandInput) {
			in.DocumentVersion, in.DocumentHash = aws.String("2"), aws.String(strings.Repeat("0", 64))
		}, is[*types.InvalidDocument], "does not match version 2"},
		{"SHA-1 given as SHA-256", who, func(in *ssm.SendCommandInput) {
			in.DocumentHash, in.DocumentHashType = aws.String(sha256Hex(v1)), types.DocumentHashTypeSha1
		}, is[*types.InvalidDocument], "does not match"},
		{"unknown hash type", who, func(in *ssm.SendCommandInput) {
			in.DocumentHash, in.DocumentHashType = aws.String(sha256Hex(v1)), "Md5"
		}, is[*types.ValidationException], "documentHashType"},
		{"missing version", who, func(in *ssm.SendCommandInput) { in.DocumentVersion = aws.String("3") }, is[*types.InvalidDocumentVersion], "no version 3"},
		{"on Windows", who, func(in *ssm.SendCommandInput) {
			win, _ := l.add(node.Windows, nil)
			in.InstanceIds = []string{win}
		}, is[*types.UnsupportedPlatformType], "Linux only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := send(tt.params, tt.mod)
			if !tt.want(err) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want an error saying %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "rm -rf") {
				t.Fatalf("the error quotes the parameter's value: %v", err)
			}
		})
	}
	if runs := host.runs(); len(runs) != 0 {
		t.Fatalf("refused commands ran on the node: %+v", runs)
	}
	// The hash of the version sent is accepted, by SHA-256 and by SHA-1.
	if err := send(who, func(in *ssm.SendCommandInput) { in.DocumentHash = aws.String(sha256Hex(v1)) }); err != nil {
		t.Fatalf("the right hash: %v", err)
	}
	sum := sha1.Sum([]byte(v1))
	if err := send(who, func(in *ssm.SendCommandInput) {
		in.DocumentHash, in.DocumentHashType = aws.String(hex.EncodeToString(sum[:])), types.DocumentHashTypeSha1
	}); err != nil {
		t.Fatalf("the right SHA-1: %v", err)
	}
}

func TestAWSCLIReadsDocuments(t *testing.T) {
	if err := awscli.Find(); err != nil {
		t.Skip(err)
	}
	l := newLab(t)
	content := greetContent("hello")
	desc := l.createDocument("Team-Greet", content)

	out, stderr, err := l.cli(t, "ssm", "get-document", "--name", "Team-Greet")
	if err != nil {
		t.Fatalf("get-document: %v\n%s", err, stderr)
	}
	var got struct{ Name, Content, DocumentVersion, Status, DocumentType, DocumentFormat string }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "Team-Greet" || got.Content != content || got.DocumentVersion != "1" || got.Status != "Active" || got.DocumentType != "Command" || got.DocumentFormat != "JSON" {
		t.Fatalf("get-document returned %+v", got)
	}

	out, stderr, err = l.cli(t, "ssm", "describe-document", "--name", "Team-Greet", "--document-version", "1")
	if err != nil {
		t.Fatalf("describe-document: %v\n%s", err, stderr)
	}
	var described struct {
		Document struct {
			Name, Hash, HashType, DefaultVersion, Owner, CreatedDate string
			Parameters                                               []struct{ Name, Type string }
		}
	}
	if err := json.Unmarshal([]byte(out), &described); err != nil {
		t.Fatal(err)
	}
	d := described.Document
	if d.Hash != aws.ToString(desc.Hash) || d.HashType != "Sha256" || d.DefaultVersion != "1" || d.Owner != testAccount ||
		!strings.HasPrefix(d.CreatedDate, "2026-01-24T02:00:00") || len(d.Parameters) != 3 {
		t.Fatalf("describe-document returned %+v", d)
	}

	// The CLI follows NextToken itself; one document per page makes it.
	out, stderr, err = l.cli(t, "ssm", "list-documents", "--page-size", "1")
	if err != nil {
		t.Fatalf("list-documents: %v\n%s", err, stderr)
	}
	var listed struct {
		DocumentIdentifiers []struct{ Name, Owner string }
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(listed.DocumentIdentifiers); got != "[{AWS-RunPowerShellScript Amazon} {AWS-RunShellScript Amazon} {Team-Greet "+testAccount+"}]" {
		t.Fatalf("list-documents returned %s", got)
	}

	_, stderr, err = l.cli(t, "ssm", "describe-document", "--name", "Team-Missing")
	if err == nil || !strings.Contains(stderr, "(InvalidDocument)") {
		t.Fatalf("a missing document: %v %q", err, stderr)
	}
}

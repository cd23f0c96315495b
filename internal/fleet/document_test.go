package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// echoDocument is a Command document of one's own that prints its one
// parameter.
const echoDocument = `{"schemaVersion":"2.2","description":"Prints a word.","parameters":{` +
	`"word":{"type":"String","allowedPattern":"^[a-z]+$"},"executionTimeout":{"type":"String","default":"3600"}},` +
	`"mainSteps":[{"action":"aws:runShellScript","name":"echo","inputs":{"runCommand":["echo {{ word }}"],"timeoutSeconds":"{{ executionTimeout }}"}}]}`

func TestRunOwnDocumentByHash(t *testing.T) {
	l := startLab(t, 2, 0)
	ctx := context.Background()
	if _, err := l.client.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("Team-Echo"), Content: aws.String(echoDocument)}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(echoDocument))
	r := New(l.client, fastOptions)
	job := Job{Targets: l.ids, Document: "Team-Echo", DocumentVersion: "1", DocumentHash: hex.EncodeToString(sum[:]),
		Parameters: map[string][]string{"word": {"hello"}}, ExecutionTimeout: 30 * time.Second}
	for _, res := range run(t, r, ctx, job) {
		if res.Outcome != Success {
			t.Fatalf("%s: %s", res.InstanceID, res.Reason)
		}
	}
	out, err := l.client.ListCommands(ctx, &ssm.ListCommandsInput{})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Commands[0]
	if aws.ToString(c.DocumentName) != "Team-Echo" || aws.ToString(c.DocumentVersion) != "1" ||
		strings.Join(c.Parameters["word"], ",") != "hello" || strings.Join(c.Parameters[TimeoutParameter], ",") != "30" {
		t.Fatalf("SSM received %s version %s with %v", aws.ToString(c.DocumentName), aws.ToString(c.DocumentVersion), c.Parameters)
	}

	// Once the document has changed, the hash taken before no longer
	// matches: SSM sends nothing, and every host says why.
	if _, err := l.client.UpdateDocument(ctx, &ssm.UpdateDocumentInput{Name: aws.String("Team-Echo"), Content: aws.String(strings.Replace(echoDocument, "echo {{", "rm -rf / ; echo {{", 1))}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.client.UpdateDocumentDefaultVersion(ctx, &ssm.UpdateDocumentDefaultVersionInput{Name: aws.String("Team-Echo"), DocumentVersion: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	job.DocumentVersion = ""
	before := l.commandsTo(t, l.ids[0])
	for _, res := range run(t, r, ctx, job) {
		if res.Outcome != Undeliverable || !strings.Contains(res.Reason, "InvalidDocument") || !strings.Contains(res.Reason, "DocumentHash") {
			t.Fatalf("%s: %s: %s", res.InstanceID, res.Outcome, res.Reason)
		}
	}
	if l.commandsTo(t, l.ids[0]) != before {
		t.Fatal("a command was sent with a hash that does not match")
	}
}

package ssm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// FuzzSendCommandInput feeds arbitrary JSON objects to SendCommand, as the
// awsjson server would hand them over. Whatever arrives, the answer is a
// command or a client error (HTTP 400) AWS could give: never a panic,
// never an internal failure.
func FuzzSendCommandInput(f *testing.F) {
	seeds := []string{
		`{"DocumentName":"AWS-RunShellScript","InstanceIds":["i-0123456789abcdef0"],"Parameters":{"commands":["echo hi"]}}`,
		`{"DocumentName":"AWS-RunPowerShellScript","InstanceIds":["i-0123456789abcdef1"],"Parameters":{"commands":["dir"],"executionTimeout":["60"]}}`,
		`{"DocumentName":"AWS-RunShellScript","Targets":[{"Key":"tag:Role","Values":["web"]}],"Parameters":{"commands":["true"]},"MaxConcurrency":"50%","MaxErrors":"0"}`,
		`{"DocumentName":"AWS-RunShellScript","Targets":[{"Key":"tag-key","Values":["Role"]},{"Key":"InstanceIds","Values":["i-0123456789abcdef0"]}],"Parameters":{"commands":["true"]}}`,
		`{"DocumentName":"AWS-RunShellScript","InstanceIds":["i-0123456789abcdef0"],"Parameters":{"commands":["x"],"workingDirectory":["/"]},"TimeoutSeconds":30,"Comment":"c"}`,
		`{"DocumentName":"AWS-RunShellScript","InstanceIds":"i-0123456789abcdef0"}`,
		`{"DocumentName":null,"InstanceIds":[null],"Parameters":{"commands":null}}`,
		`{"TimeoutSeconds":1e400,"MaxConcurrency":"100%","MaxErrors":"9999999"}`,
		`{"DocumentName":"arn:aws:ssm:us-east-1::document/AWS-RunShellScript","DocumentVersion":"$LATEST","InstanceIds":["i-0123456789abcdef0"],"Parameters":{"commands":["\u0000"]}}`,
		`{}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	clk := clock.NewFake(time.Date(2026, 1, 24, 2, 0, 0, 0, time.UTC))
	svc := New(Config{Now: clk.Now, PollInterval: time.Millisecond})
	f.Cleanup(svc.Close)
	svc.AddNode(node.NewModel(node.Info{InstanceID: "i-0123456789abcdef0", PlatformType: node.Linux, Tags: map[string]string{"Role": "web"}}))
	svc.AddNode(node.NewModel(node.Info{InstanceID: "i-0123456789abcdef1", PlatformType: node.Windows, Tags: map[string]string{"Role": "web"}}))
	send := svc.API().Operations["SendCommand"]

	f.Fuzz(func(t *testing.T, body []byte) {
		var obj map[string]json.RawMessage
		if json.Unmarshal(body, &obj) != nil || obj == nil {
			return // the server refuses anything but a JSON object before any operation runs
		}
		out, err := send(context.Background(), bytes.Clone(body))
		if err != nil {
			var e *awsjson.Error
			if !errors.As(err, &e) {
				t.Fatalf("SendCommand(%s) returned %T %v, want an *awsjson.Error", body, err, err)
			}
			if e.HTTPStatus != http.StatusBadRequest && e.HTTPStatus != 0 {
				t.Fatalf("SendCommand(%s) answered %d %s: bad input must be a client error", body, e.HTTPStatus, e.Code)
			}
			return
		}
		answer, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("SendCommand output does not encode: %v", err)
		}
		var decoded struct {
			Command struct {
				CommandId   string
				TargetCount int
				Status      string
			}
		}
		if err := json.Unmarshal(answer, &decoded); err != nil || len(decoded.Command.CommandId) != 36 || decoded.Command.TargetCount > 2 {
			t.Fatalf("SendCommand(%s) answered %s", body, answer)
		}
	})
}

// FuzzDocumentContent feeds arbitrary document content and parameters to
// what CreateDocument and SendCommand do with them. Content is refused as
// a client error or parsed; parameters are refused or substituted without
// a panic; and a parameter held to base64 by its allowedPattern accepts
// nothing else.
func FuzzDocumentContent(f *testing.F) {
	f.Add(`{"schemaVersion":"2.2","parameters":{"data":{"type":"String","allowedPattern":"^[A-Za-z0-9+/]+={0,2}$"}},`+
		`"mainSteps":[{"action":"aws:runShellScript","name":"x","inputs":{"runCommand":["D='{{ data }}'"]}}]}`, "data", "Zm9v")
	f.Add(shellScriptContent, "commands", "id")
	f.Add(powerShellScriptContent, "executionTimeout", "60")
	f.Add(`{"schemaVersion":"2.2","parameters":{"l":{"type":"StringList","default":["a"]}},"mainSteps":[{"action":"aws:runShellScript","name":"x","inputs":{"runCommand":"{{l}}","timeoutSeconds":9}}]}`, "l", "b")
	f.Fuzz(func(t *testing.T, content, name, value string) {
		sp, err := parseSpec(content)
		if err != nil {
			var e *awsjson.Error
			if !errors.As(err, &e) || e.HTTPStatus != http.StatusBadRequest {
				t.Fatalf("a refusal that is not a client error: %v", err)
			}
			return
		}
		values, err := sp.values("Fuzz-Doc", map[string][]string{name: {value}})
		if err != nil {
			return
		}
		if p := sp.param(name); p != nil && p.patternText == `^[A-Za-z0-9+/]+={0,2}$` && !reBase64.MatchString(value) {
			t.Fatalf("a value outside base64 was accepted: %q", value)
		}
		sp.script("Fuzz-Doc", values)
	})
}

var reBase64 = regexp.MustCompile(`^[A-Za-z0-9+/]+={0,2}$`)

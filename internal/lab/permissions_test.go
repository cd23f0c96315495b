package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/passport-access/terraform-provider-passport/internal/documents"
)

// permissionLab is a lab with one model node, Passport's documents
// published by the operator, and two KMS keys: a certificate authority's,
// tagged as Passport's provider tags it, and another.
type permissionLab struct {
	*Lab
	node            string
	caKey, otherKey string
	docs            *documents.Set
}

func startPermissionLab(t *testing.T) *permissionLab {
	t.Helper()
	dir, err := os.MkdirTemp("", "perm")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Start(ctx, Options{Dir: dir, ModelNodes: 1})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &permissionLab{Lab: l, node: l.Models[0].Info().InstanceID}
	if p.docs, err = documents.Publish(ctx, ssm.NewFromConfig(l.AWSConfig())); err != nil {
		t.Fatal(err)
	}
	k := kms.NewFromConfig(l.AWSConfig())
	for i, tags := range [][]kmstypes.Tag{{{TagKey: aws.String("passport:certificate-authority"), TagValue: aws.String("prod")}}, nil} {
		out, err := k.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify, Tags: tags})
		if err != nil {
			t.Fatal(err)
		}
		*[]*string{&p.caKey, &p.otherKey}[i] = aws.ToString(out.KeyMetadata.KeyId)
	}
	return p
}

// call is one AWS call an identity makes.
type call struct {
	name string
	do   func(context.Context, aws.Config) error
}

func (p *permissionLab) sendDocument(program string) func(context.Context, aws.Config) error {
	return func(ctx context.Context, cfg aws.Config) error {
		for _, d := range p.docs.Documents() {
			if d.Name == documents.Name(documents.Linux, program) {
				_, err := ssm.NewFromConfig(cfg).SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(d.Name), DocumentVersion: aws.String(d.Version),
					DocumentHash: aws.String(d.Hash), DocumentHashType: ssmtypes.DocumentHashTypeSha256, InstanceIds: []string{p.node},
					Parameters: map[string][]string{documents.DataParameter: {"Zm9ybWF0PTEK"}}})
				return err
			}
		}
		return errors.New("no such document")
	}
}

func (p *permissionLab) sendScript(ctx context.Context, cfg aws.Config) error {
	_, err := ssm.NewFromConfig(cfg).SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"),
		InstanceIds: []string{p.node}, Parameters: map[string][]string{"commands": {"id"}}})
	return err
}

func (p *permissionLab) sign(key *string) func(context.Context, aws.Config) error {
	return func(ctx context.Context, cfg aws.Config) error {
		digest := sha256.Sum256([]byte("certificate to sign"))
		_, err := kms.NewFromConfig(cfg).Sign(ctx, &kms.SignInput{KeyId: key, Message: digest[:], MessageType: kmstypes.MessageTypeDigest,
			SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
		return err
	}
}

func getParameter(name string) func(context.Context, aws.Config) error {
	return func(ctx context.Context, cfg aws.Config) error {
		_, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		return err
	}
}

// startSession reaches the model node, which takes no sessions: past the
// policy, the call ends in TargetNotConnected.
func (p *permissionLab) startSession(ctx context.Context, cfg aws.Config) error {
	_, err := ssm.NewFromConfig(cfg).StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(p.node), DocumentName: aws.String("AWS-StartSSHSession"),
		Parameters: map[string][]string{"portNumber": {"22"}}})
	if code, _ := refusal(err); code == "TargetNotConnected" {
		return nil
	}
	return err
}

func describeTags(ctx context.Context, cfg aws.Config) error {
	_, err := ec2.NewFromConfig(cfg).DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{{Name: aws.String("key"), Values: []string{"Env"}}}})
	return err
}

func describeInstances(ctx context.Context, cfg aws.Config) error {
	_, err := ssm.NewFromConfig(cfg).DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	return err
}

// refusal is what a refused call looked like: the error code and the
// message, which names the identity.
func refusal(err error) (code, msg string) {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode(), api.ErrorMessage()
	}
	return "", ""
}

func wantRefused(t *testing.T, c call, cfg aws.Config, arn, code string) {
	t.Helper()
	err := c.do(context.Background(), cfg)
	got, msg := refusal(err)
	if got != code || !strings.Contains(msg, "User: "+arn+" is not authorized to perform: ") {
		t.Errorf("%s: got %v; want %s naming %s", c.name, err, code, arn)
	}
}

func wantAllowed(t *testing.T, c call, cfg aws.Config) {
	t.Helper()
	if err := c.do(context.Background(), cfg); err != nil {
		t.Errorf("%s: %v", c.name, err)
	}
}

func callerARN(t *testing.T, cfg aws.Config) string {
	t.Helper()
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	return aws.ToString(out.Arn)
}

func TestIdentitiesAndTheirPermissions(t *testing.T) {
	p := startPermissionLab(t)
	send := call{"ssm:SendCommand Passport-Linux-Check", p.sendDocument("check")}
	sendProvision := call{"ssm:SendCommand Passport-Linux-Provision", p.sendDocument("provision")}
	script := call{"ssm:SendCommand AWS-RunShellScript", p.sendScript}
	sign := call{"kms:Sign with the CA's key", p.sign(&p.caKey)}
	signOther := call{"kms:Sign with another key", p.sign(&p.otherKey)}
	policy := call{"ssm:GetParameter " + PolicyParameter, getParameter(PolicyParameter)}
	other := call{"ssm:GetParameter /team/secret", getParameter("/team/secret")}
	session := call{"ssm:StartSession", p.startSession}
	tags := call{"ec2:DescribeTags", describeTags}
	instances := call{"ssm:DescribeInstanceInformation", describeInstances}
	publish := call{"documents publish", func(ctx context.Context, cfg aws.Config) error {
		_, err := documents.Publish(ctx, ssm.NewFromConfig(cfg))
		return err
	}}

	t.Run("operator", func(t *testing.T) {
		cfg := p.AWSConfig()
		if got := callerARN(t, cfg); got != OperatorARN || p.Operator.ARN != OperatorARN || p.Operator.AccessKeyID != p.AccessKeyID {
			t.Fatalf("the operator is %s (%+v)", got, p.Operator)
		}
		for _, c := range []call{script, send, sign, signOther, policy, instances, tags, publish} {
			wantAllowed(t, c, cfg)
		}
	})

	t.Run("service", func(t *testing.T) {
		cfg := p.AWSConfigAs(p.Service)
		if got := callerARN(t, cfg); got != ServiceARN {
			t.Fatalf("the service is %s", got)
		}
		for _, c := range []call{publish, send, sendProvision, sign, policy, instances, tags, session} {
			wantAllowed(t, c, cfg)
		}
		for _, c := range []call{script, signOther} {
			wantRefused(t, c, cfg, ServiceARN, "AccessDeniedException")
		}
		// A parameter that does not exist is refused before it is looked
		// up: AccessDenied, not ParameterNotFound.
		wantRefused(t, other, cfg, ServiceARN, "AccessDeniedException")
		_, msg := refusal(script.do(context.Background(), cfg))
		if !strings.Contains(msg, "on resource: arn:aws:ssm:"+p.Region+"::document/AWS-RunShellScript") {
			t.Errorf("the refusal does not name AWS-RunShellScript: %s", msg)
		}
	})

	t.Run("requester", func(t *testing.T) {
		cfg := p.AWSConfigAs(p.Requester)
		if got := callerARN(t, cfg); got != RequesterARN {
			t.Fatalf("the requester is %s", got)
		}
		for _, c := range []call{script, send, sendProvision, sign, policy, session, instances, publish} {
			wantRefused(t, c, cfg, RequesterARN, "AccessDeniedException")
		}
		wantRefused(t, tags, cfg, RequesterARN, "UnauthorizedOperation")
		_, msg := refusal(send.do(context.Background(), cfg))
		if !strings.Contains(msg, "with an explicit deny") {
			t.Errorf("sending a document is not refused by the requester policy's deny: %s", msg)
		}
	})
}

// The policy sees the document the operation runs: a second, differently
// cased DocumentName (which AWS ignores) cannot show the policy Passport's
// document while AWS-RunShellScript runs.
func TestPolicySeesTheDocumentThatRuns(t *testing.T) {
	p := startPermissionLab(t)
	body := []byte(`{"DocumentName":"AWS-RunShellScript","documentname":"Passport-Linux-Check","InstanceIds":["` + p.node + `"],"Parameters":{"commands":["id"]}}`)
	req, err := http.NewRequest(http.MethodPost, p.Endpoint+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.SendCommand")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: p.Service.AccessKeyID, SecretAccessKey: p.Service.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ssm", p.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(answer, []byte("AccessDeniedException")) || !bytes.Contains(answer, []byte("document/AWS-RunShellScript")) {
		t.Fatalf("%d %s; want AccessDeniedException for AWS-RunShellScript", resp.StatusCode, answer)
	}
}

package documents

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	labssm "github.com/passport-access/terraform-provider-passport/internal/lab/ssm"
)

const (
	testRegion = "us-east-1"
	testKey    = "AKIDDOCUMENTSTEST001"
	testSecret = "documents-test-secret-0123456789abcdef"
)

// testSSM is the lab's SSM behind its real wire protocol, with the real
// SDK client.
type testSSM struct {
	server *awsjson.Server
	svc    *labssm.Service
	client *ssm.Client
}

func newSSM(t *testing.T) *testSSM {
	t.Helper()
	svc := labssm.New(labssm.Config{Region: testRegion, PollInterval: 5 * time.Millisecond})
	server := awsjson.NewServer(awsjson.Config{Region: testRegion, Credentials: map[string]string{testKey: testSecret}})
	server.Register(svc.API())
	srv := httptest.NewServer(server)
	t.Cleanup(func() {
		srv.Close()
		svc.Close()
	})
	client := ssm.New(ssm.Options{Region: testRegion, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(testKey, testSecret, "")})
	return &testSSM{server: server, svc: svc, client: client}
}

// programs returns one program per platform and action, built by package
// hostscript for sample requests, as access would send them.
func programs(t *testing.T) map[[2]string]string {
	t.Helper()
	expires := time.Now().Add(time.Hour)
	const ca = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINOETy5+Llw4BV9Lr0+r0o7jzSFYgZYy8Jd7nKUd+bA/ test-ca"
	seal, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	must := func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return map[[2]string]string{
		{Linux, "provision"}: must(hostscript.Provision(hostscript.Grant{Username: "pp-docs0000001", RequestID: "ar-0123456789abcdef",
			Requester: "alice@example.com", CAPublicKey: ca, ExpiresAt: expires, Sudo: true, Serial: 42})),
		{Linux, "extend"}:    must(hostscript.Extend("pp-docs0000001", expires)),
		{Linux, "revoke"}:    must(hostscript.Revoke(hostscript.Revocation{Username: "pp-docs0000001", Serial: 42, CAPublicKey: ca})),
		{Linux, "check"}:     must(hostscript.Check("pp-docs0000001", "ar-0123456789abcdef")),
		{Linux, "inventory"}: hostscript.Inventory(),
		{Linux, "sweep"}:     hostscript.Sweep(),
		{Windows, "provision"}: must(hostscript.ProvisionWindows(hostscript.WindowsGrant{Username: "pp-docs0000001", RequestID: "ar-0123456789abcdef",
			Requester: "alice@example.com", ExpiresAt: expires, SealKey: &seal.PublicKey})),
		{Windows, "extend"}:    must(hostscript.ExtendWindows("pp-docs0000001", expires)),
		{Windows, "revoke"}:    must(hostscript.RevokeWindows("pp-docs0000001")),
		{Windows, "check"}:     must(hostscript.CheckWindows("pp-docs0000001", "ar-0123456789abcdef")),
		{Windows, "inventory"}: hostscript.InventoryWindows(),
		{Windows, "sweep"}:     hostscript.SweepWindows(),
		{Windows, "collect"}:   must(hostscript.CollectWindows("pp-docs0000001", expires)),
	}
}

func TestDocumentsAreValidCommandDocuments(t *testing.T) {
	docs, err := All()
	if err != nil {
		t.Fatal(err)
	}
	// Every program on each platform.
	want := 2 * len(hostscript.Actions)
	if len(docs) != want || len(Names()) != want {
		t.Fatalf("%d documents, %d names; want %d, one per platform and program it ships", len(docs), len(Names()), want)
	}
	for i, d := range docs {
		if d.Name != Names()[i] || d.Hash != Hash(d.Content) {
			t.Errorf("%s: name or hash out of step", d.Name)
		}
		var c struct {
			SchemaVersion string
			Parameters    map[string]struct{ Type, AllowedPattern string }
			MainSteps     []struct {
				Action string
				Inputs struct{ RunCommand []string }
			}
		}
		if err := json.Unmarshal([]byte(d.Content), &c); err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		if c.SchemaVersion != "2.2" || len(c.MainSteps) != 1 {
			t.Fatalf("%s: schema %s, %d steps", d.Name, c.SchemaVersion, len(c.MainSteps))
		}
		data, hasData := c.Parameters[DataParameter]
		if hasData != hostscript.TakesData(d.Program) || hasData && (data.Type != "String" || data.AllowedPattern != DataPattern) {
			t.Errorf("%s: data parameter %+v", d.Name, data)
		}
		if len(d.Content)+maxData > MaxContent {
			t.Errorf("%s: %d bytes leaves no room for a data block within SSM's 64 KB", d.Name, len(d.Content))
		}
	}
}

// recorder is a model node that keeps the scripts it was given.
type recorder struct {
	*node.Model
	mu   sync.Mutex
	runs []node.Script
}

func (r *recorder) Run(ctx context.Context, s node.Script) (node.Result, error) {
	r.mu.Lock()
	r.runs = append(r.runs, s)
	r.mu.Unlock()
	return r.Model.Run(ctx, s)
}

func (r *recorder) last(t *testing.T) node.Script {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r.mu.Lock()
		n := len(r.runs)
		r.mu.Unlock()
		if n > 0 {
			r.mu.Lock()
			defer r.mu.Unlock()
			s := r.runs[n-1]
			r.runs = nil
			return s
		}
		if time.Now().After(deadline) {
			t.Fatal("the node was never given the script")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// What a host runs through a published document is byte for byte the
// program Passport would send directly.
func TestCommandRunsTheShippedProgram(t *testing.T) {
	s := newSSM(t)
	set, err := Publish(context.Background(), s.client)
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]*recorder{}
	for i, platform := range []string{Linux, Windows} {
		hosts[platform] = &recorder{Model: node.NewModel(node.Info{InstanceID: []string{"i-0000000000000000a", "i-0000000000000000b"}[i], PlatformType: platform})}
		s.svc.AddNode(hosts[platform])
	}
	for key, program := range programs(t) {
		platform, action := key[0], key[1]
		cmd, err := set.Command(platform, program)
		if err != nil {
			t.Fatalf("%s %s: %v", platform, action, err)
		}
		if cmd.Document != Name(platform, action) || cmd.Version != "1" || cmd.Hash != Hash(docContent(t, set, cmd.Document)) {
			t.Fatalf("%s %s: command %+v", platform, action, cmd)
		}
		params := map[string][]string{TimeoutParameter: {"180"}}
		for k, v := range cmd.Parameters {
			params[k] = v
		}
		h := hosts[platform]
		_, err = s.client.SendCommand(context.Background(), &ssm.SendCommandInput{
			DocumentName: aws.String(cmd.Document), DocumentVersion: aws.String(cmd.Version),
			DocumentHash: aws.String(cmd.Hash), DocumentHashType: types.DocumentHashTypeSha256,
			InstanceIds: []string{h.Info().InstanceID}, Parameters: params,
		})
		if err != nil {
			t.Fatalf("%s %s: SendCommand: %v", platform, action, err)
		}
		ran := h.last(t)
		if ran.Source != program {
			t.Errorf("%s %s: the host ran a script that is not the shipped program", platform, action)
		}
		if ran.Timeout != 180*time.Second {
			t.Errorf("%s %s: timeout %s", platform, action, ran.Timeout)
		}
	}
}

func docContent(t *testing.T, set *Set, name string) string {
	t.Helper()
	for _, d := range set.Documents() {
		if d.Name == name {
			return d.Content
		}
	}
	t.Fatalf("no document %s", name)
	return ""
}

func TestCommandRefusesAnythingElse(t *testing.T) {
	s := newSSM(t)
	set, err := Publish(context.Background(), s.client)
	if err != nil {
		t.Fatal(err)
	}
	progs := programs(t)
	prov := progs[[2]string{Linux, "provision"}]
	data := prov[strings.Index(prov, "PASSPORT_DATA='")+len("PASSPORT_DATA='"):]
	data = data[:strings.IndexByte(data, '\'')]
	tests := map[string]struct{ platform, script string }{
		"a script of one's own":           {Linux, "#!/bin/sh\nid\n"},
		"a program with a line added":     {Linux, prov + "id\n"},
		"a program with a line changed":   {Linux, strings.Replace(prov, "useradd", "adduser", 1)},
		"data that leaves its quotes":     {Linux, strings.Replace(prov, data, "x'; id; '", 1)},
		"data with a newline":             {Linux, strings.Replace(prov, data, data[:8]+"\n"+data[8:], 1)},
		"the Linux program for Windows":   {Windows, prov},
		"the Windows program for Linux":   {Linux, progs[[2]string{Windows, "revoke"}]},
		"sweep with a line added":         {Linux, hostscript.Sweep() + "id\n"},
		"an empty script":                 {Linux, ""},
		"a platform Passport has none of": {"MacOS", prov},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if cmd, err := set.Command(tt.platform, tt.script); err == nil {
				t.Fatalf("accepted as %+v", cmd)
			}
		})
	}
}

func TestPublishCreatesUpdatesAndLeavesAlone(t *testing.T) {
	s := newSSM(t)
	ctx := context.Background()
	changes := func(set *Set) map[Change]int {
		n := map[Change]int{}
		for _, d := range set.Documents() {
			n[d.Change]++
		}
		return n
	}
	set, err := Publish(ctx, s.client)
	if err != nil {
		t.Fatal(err)
	}
	if n := changes(set); n[Created] != len(Names()) {
		t.Fatalf("first publish: %v", n)
	}
	if _, err := Lookup(ctx, s.client); err != nil {
		t.Fatalf("Lookup after Publish: %v", err)
	}

	s.server.ResetCalls()
	set, err = Publish(ctx, s.client)
	if err != nil {
		t.Fatal(err)
	}
	calls := s.server.Calls()
	if n := changes(set); n[Unchanged] != len(Names()) || calls["AmazonSSM.UpdateDocument"]+calls["AmazonSSM.CreateDocument"]+calls["AmazonSSM.UpdateDocumentDefaultVersion"] != 0 {
		t.Fatalf("publishing again changed something: %v, calls %v", n, calls)
	}

	// Someone puts their own content in as the default version.
	name := Name(Linux, "revoke")
	ours := docContent(t, set, name)
	theirs := strings.Replace(ours, "Passport's revoke program", "Someone's revoke program", 1)
	if _, err := s.client.UpdateDocument(ctx, &ssm.UpdateDocumentInput{Name: aws.String(name), Content: aws.String(theirs), DocumentVersion: aws.String("$LATEST")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.UpdateDocumentDefaultVersion(ctx, &ssm.UpdateDocumentDefaultVersionInput{Name: aws.String(name), DocumentVersion: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup(ctx, s.client); err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "passport documents publish") {
		t.Fatalf("Lookup of a changed document: %v", err)
	}
	set, err = Publish(ctx, s.client)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range set.Documents() {
		switch {
		case d.Name == name && (d.Change != Restored || d.Version != "1"):
			t.Errorf("%s: %s version %s, want version 1 restored", d.Name, d.Change, d.Version)
		case d.Name != name && d.Change != Unchanged:
			t.Errorf("%s: %s", d.Name, d.Change)
		}
	}
	desc, err := s.client.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String(name)})
	if err != nil || aws.ToString(desc.Document.DefaultVersion) != "1" || aws.ToString(desc.Document.Hash) != Hash(ours) {
		t.Fatalf("after publishing, %s's default is %s: %v", name, aws.ToString(desc.Document.DefaultVersion), err)
	}

	// A release with other programs adds a version and makes it the
	// default; the old version stays for replicas still running the old
	// release.
	if _, err := s.client.DeleteDocument(ctx, &ssm.DeleteDocumentInput{Name: aws.String(name), DocumentVersion: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.UpdateDocument(ctx, &ssm.UpdateDocumentInput{Name: aws.String(name), Content: aws.String(theirs)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.UpdateDocumentDefaultVersion(ctx, &ssm.UpdateDocumentDefaultVersionInput{Name: aws.String(name), DocumentVersion: aws.String("3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.DeleteDocument(ctx, &ssm.DeleteDocumentInput{Name: aws.String(name), DocumentVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	set, err = Publish(ctx, s.client)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range set.Documents() {
		if d.Name == name && (d.Change != Updated || d.Version != "4") {
			t.Errorf("%s: %s version %s, want version 4 added", d.Name, d.Change, d.Version)
		}
	}
}

func TestLookupNamesWhatIsMissing(t *testing.T) {
	s := newSSM(t)
	_, err := Lookup(context.Background(), s.client)
	if err == nil || !strings.Contains(err.Error(), Name(Linux, "provision")) || !strings.Contains(err.Error(), "passport documents publish") {
		t.Fatalf("Lookup with nothing published: %v", err)
	}
}

// SSM refuses data that is not base64 before anything runs, so nothing a
// caller puts in the parameter can leave the program's quotes.
func TestDataOutsideBase64IsRefusedBeforeAnythingRuns(t *testing.T) {
	s := newSSM(t)
	set, err := Publish(context.Background(), s.client)
	if err != nil {
		t.Fatal(err)
	}
	h := &recorder{Model: node.NewModel(node.Info{InstanceID: "i-0000000000000000c", PlatformType: Linux})}
	s.svc.AddNode(h)
	for _, platform := range []string{Linux, Windows} {
		for _, data := range []string{"x'; reboot; '", "Zm9v\nid", "{{ executionTimeout }}", "Zm9v YmFy", "Zm9v$(id)", ""} {
			var d Published
			for _, p := range set.Documents() {
				if p.Name == Name(platform, "revoke") {
					d = p
				}
			}
			_, err := s.client.SendCommand(context.Background(), &ssm.SendCommandInput{
				DocumentName: aws.String(d.Name), DocumentVersion: aws.String(d.Version), DocumentHash: aws.String(d.Hash),
				InstanceIds: []string{h.Info().InstanceID}, Parameters: map[string][]string{DataParameter: {data}},
			})
			var invalid *types.InvalidParameters
			if !errors.As(err, &invalid) {
				t.Errorf("%s with data %q: %v, want InvalidParameters", d.Name, data, err)
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.runs) != 0 {
		t.Fatalf("a refused command ran: %+v", h.runs)
	}
}

// FuzzCommand: a script is refused, or it is a published program and the
// document with the command's parameters substituted is that script, byte
// for byte.
func FuzzCommand(f *testing.F) {
	set := &Set{}
	docs, err := All()
	if err != nil {
		f.Fatal(err)
	}
	for _, d := range docs {
		set.docs = append(set.docs, Published{Document: d, Version: "1"})
	}
	prov, err := hostscript.Extend("pp-fuzz00000001", time.Unix(1900000000, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(Linux, prov)
	f.Add(Linux, hostscript.Sweep())
	f.Add(Windows, hostscript.InventoryWindows())
	f.Add(Linux, strings.Replace(prov, "PASSPORT_DATA='", "PASSPORT_DATA='x'; id; '", 1))
	f.Fuzz(func(t *testing.T, platform, script string) {
		cmd, err := set.Command(platform, script)
		if err != nil {
			return
		}
		var d Document
		for _, p := range docs {
			if p.Name == cmd.Document {
				d = p
			}
		}
		var c struct {
			MainSteps []struct{ Inputs struct{ RunCommand []string } }
		}
		if err := json.Unmarshal([]byte(d.Content), &c); err != nil {
			t.Fatal(err)
		}
		ran := strings.Join(c.MainSteps[0].Inputs.RunCommand, "\n") + "\n"
		if data := cmd.Parameters[DataParameter]; len(data) == 1 {
			if !reData.MatchString(data[0]) {
				t.Fatalf("data %q is not base64", data[0])
			}
			ran = strings.Replace(ran, dataMarker, data[0], 1)
		}
		if d.Platform != platform || ran != script {
			t.Fatalf("%s does not run the script it was chosen for", cmd.Document)
		}
	})
}

package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// TestServeCollectsRecordings runs `passport serve --recordings-bucket`
// on the lab's S3: a person gets access through it, types on a terminal
// over SSH, and ends the request through it. The recording is then in the
// bucket under recordings/<request>/<instance>/<session>, indexed in the
// ledger with its size and digest, the trail's recording-collected event
// carries that digest, and the service lists and searches what was typed.
// Deleting it early goes through the service too: policy decides, and the
// trail names the person who did it and why.
func TestServeCollectsRecordings(t *testing.T) {
	if testing.Short() {
		t.Skip("-short leaves it out: it builds the passport binary and runs passport serve as a process; the full run (scripts/test.sh) has it")
	}
	l := labtest.Start(t, lab.Options{Hosts: 1})
	ctx := context.Background()
	ca, err := sshca.CreateKMS(ctx, kms.NewFromConfig(l.AWSConfig()), sshca.Ed25519,
		sshca.KMSKeyOptions{Description: "recordings test CA", Tags: map[string]string{"passport:certificate-authority": "lab"}})
	if err != nil {
		t.Fatal(err)
	}
	bin := buildPassport(t)
	ledgerURL := "sqlite://" + t.TempDir() + "/ledger.db"
	serve := startServe(t, bin, l, "", ca.KMSKeyID(), "service/rec", "--ledger", ledgerURL, "--recordings-bucket", lab.RecordingsBucket)
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(serve.log)
			t.Logf("passport serve's log:\n%s", log)
		}
	})
	// Callers reach the process through a proxy that holds every answer
	// to the API document, as the in-process service's tests do.
	r := &rig{lab: l, url: recordedProxy(t, serve.url)}
	h := l.Hosts[0]
	instance := h.Info().InstanceID
	aliceTok, carolTok := r.token(t, "alice"), r.token(t, "carol")
	alice, bob, carol := r.anonymous(t).WithToken(aliceTok), r.signIn(t, "bob"), r.anonymous(t).WithToken(carolTok)

	key := newUserKey(t)
	req, err := alice.Create(ctx, api.CreateRequest{Targets: []string{instance}, Reason: "INC-515 the disk fills up", Duration: "1h", PublicKey: key.line}, "")
	if err != nil {
		t.Fatal(err)
	}
	labtest.Converse(t, h, req.Username, labtest.CertSigner(t, key.signer, req.Certificate), [2]string{"$ ", "echo typed-$((6*7))\r"}, [2]string{"typed-42", "exit\r"})
	if ended, err := alice.End(ctx, req.ID); err != nil || ended.State != "revoked" {
		t.Fatalf("ending the request: %+v, %v", ended, err)
	}

	// In the bucket, where DESIGN.md says, with nothing left in transfer.
	index, err := ledger.Open(ctx, ledgerURL, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer index.Close()
	recs, err := index.Recordings(ctx, ledger.RecordingFilter{RequestID: req.ID})
	if err != nil || len(recs) != 1 {
		t.Fatalf("the ledger indexes %d recordings of %s (%v); want the one session", len(recs), req.ID, err)
	}
	rec := recs[0]
	wantKey := "recordings/" + req.ID + "/" + instance + "/" + rec.Session
	obj, ok := l.S3.Object(lab.RecordingsBucket, wantKey)
	sum := sha256.Sum256(obj)
	if !ok || rec.Key != wantKey || rec.Bucket != lab.RecordingsBucket || rec.Size != int64(len(obj)) || rec.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("indexed %+v; the bucket has %s: %v (%d bytes)", rec, wantKey, ok, len(obj))
	}
	if rec.Username != req.Username || rec.Subject != "alice" || len(rec.Serials) == 0 || rec.End.IsZero() {
		t.Errorf("the index ties it to %s/%s serials %v ended %v; want %s for alice, the certificate, and the end", rec.Username, rec.Subject, rec.Serials, rec.End, req.Username)
	}
	trail, err := alice.Audit(ctx, client.AuditFilter{Request: req.ID})
	if err != nil {
		t.Fatal(err)
	}
	digest := "s3://" + lab.RecordingsBucket + "/" + wantKey + " size=" + strconv.FormatInt(rec.Size, 10) + " sha256=" + rec.SHA256
	if !slices.ContainsFunc(trail, func(e api.Event) bool { return e.Action == "recording-collected" && e.Detail == digest }) {
		t.Errorf("the trail of %s has no recording-collected event with %q: %+v", req.ID, digest, trail)
	}

	// Through the service: listed for the requester, and what was typed is
	// found, as typed and as shown.
	id := req.ID + "/" + instance + "/" + rec.Session
	list, err := alice.Recordings(ctx, client.RecordingFilter{Request: req.ID})
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].SHA256 != rec.SHA256 {
		t.Fatalf("alice's recordings of %s: %+v, %v; want %s", req.ID, list, err, id)
	}
	found, err := alice.GrepRecordings(ctx, `typed-`, client.RecordingFilter{Request: req.ID})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, m := range found.Matches {
		lines = append(lines, m.Recording+" "+map[bool]string{true: "in", false: "out"}[m.Input]+" "+m.Line)
	}
	for _, want := range []string{id + " in echo typed-$((6*7))", id + " out typed-42"} {
		if !slices.Contains(lines, want) {
			t.Errorf("grep found %q; want %q", lines, want)
		}
	}

	// Deleting it early: a reason is required; the recorded person may
	// not, someone who cannot see it learns nothing, an administrator
	// policy permits does, through passport sessions delete --server.
	path := api.PathRecordings + "/" + id
	for _, c := range []struct {
		name   string
		call   call
		status int
		field  string
	}{
		{"unsigned", call{method: "DELETE", path: path, body: `{"reason": "INC-515 pasted a password"}`}, 401, ""},
		{"without a reason", call{method: "DELETE", path: path, token: carolTok, body: `{"reason": " "}`}, 400, "reason"},
		{"without a body", call{method: "DELETE", path: path, token: carolTok}, 400, ""},
		{"no such session", call{method: "DELETE", path: api.PathRecordings + "/" + req.ID + "/" + instance + "/20990101-000000-nonexi", token: carolTok, body: `{"reason": "x"}`}, 404, ""},
		{"a bad name", call{method: "DELETE", path: api.PathRecordings + "/" + req.ID + "/" + instance + "/bad%20name", token: carolTok, body: `{"reason": "x"}`}, 404, "id"},
		{"by the recorded person", call{method: "DELETE", path: path, token: aliceTok, body: `{"reason": "mine"}`}, 403, ""},
	} {
		if a := r.do(t, c.call); a.status != c.status || a.field != c.field {
			t.Errorf("delete %s: %d %s; want %d (field %q)", c.name, a.status, a.raw, c.status, c.field)
		}
	}
	if err := bob.DeleteRecording(ctx, id, "not mine"); codeOf(err) != api.CodeNotFound {
		t.Errorf("bob deletes alice's recording: %v; want not_found", err)
	}
	if _, ok := l.S3.Object(lab.RecordingsBucket, wantKey); !ok {
		t.Fatal("a refused delete deleted the object")
	}
	del := exec.Command(bin, "sessions", "delete", id, "--reason", "INC-515 a password was pasted", "--server", r.url)
	del.Env = append(os.Environ(), "PASSPORT_TOKEN="+carolTok, "PASSPORT_CONFIG_DIR="+t.TempDir(), "PASSPORT_RECORDINGS_BUCKET=", "PASSPORT_SERVER=")
	if out, err := del.CombinedOutput(); err != nil || !strings.Contains(string(out), "deleted "+id) {
		t.Fatalf("passport sessions delete --server: %v\n%s", err, out)
	}
	if _, ok := l.S3.Object(lab.RecordingsBucket, wantKey); ok {
		t.Error("the object is still in the bucket")
	}
	if _, err := index.GetRecording(ctx, req.ID, instance, rec.Session); err == nil {
		t.Error("the ledger still indexes it")
	}
	if _, err := alice.Recording(ctx, id); codeOf(err) != api.CodeNotFound {
		t.Errorf("reading the deleted recording: %v; want not_found", err)
	}
	trail, err = carol.Audit(ctx, client.AuditFilter{Request: req.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(trail, func(e api.Event) bool {
		return e.Action == "recording-deleted" && e.Actor == "carol" && strings.HasPrefix(e.Detail, "INC-515 a password was pasted: s3://"+lab.RecordingsBucket+"/"+wantKey)
	}) {
		t.Errorf("the trail has no recording-deleted event by carol with her reason: %+v", trail)
	}
}

// recordedProxy serves a proxy to the service at target on a loopback
// port, holding every answer to the API document, and returns its URL.
func recordedProxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := loadAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: recordAPI(t, httputil.NewSingleHostReverseProxy(u), doc.operations())}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

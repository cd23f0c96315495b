//go:build linux

package hostscript

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// collect runs the collect program on h as Run Command does with S3
// output (all of stdout kept) and returns its result, read from stderr,
// and the tar it wrote to stdout: member name → header and content.
func (h *host) collect(t *testing.T, c Collection) (Result, map[string]*tar.Header, map[string]string) {
	t.Helper()
	r, stdout := h.collectStdout(t, c)
	headers, files := untar(t, stdout)
	return r, headers, files
}

// collectStdout runs the collect program and returns its result and its
// stdout as it is, compressed.
func (h *host) collectStdout(t *testing.T, c Collection) (Result, []byte) {
	t.Helper()
	script, err := Collect(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := h.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: script, Timeout: time.Minute, WholeStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseResult(string(res.Stderr))
	if err != nil || !r.OK {
		t.Fatalf("collect on %s: %+v, %v (exit %d)\nstderr: %s", h, r, err, res.ExitCode, res.Stderr)
	}
	return r, res.Stdout
}

var zstdMagic, gzipMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}, []byte{0x1f, 0x8b}

// untar reads what collect wrote: a tar compressed with zstd or gzip.
func untar(t *testing.T, stdout []byte) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	headers, files := map[string]*tar.Header{}, map[string]string{}
	if len(stdout) == 0 {
		return headers, files
	}
	var zr io.Reader
	var err error
	if bytes.HasPrefix(stdout, zstdMagic) {
		zr, err = zstd.NewReader(bytes.NewReader(stdout))
	} else {
		zr, err = gzip.NewReader(bytes.NewReader(stdout))
	}
	if err != nil {
		t.Fatalf("collect's stdout is neither zstd nor gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("collect's stdout is not a tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		name := strings.TrimSuffix(hdr.Name, "/")
		headers[name], files[name] = hdr, string(b)
	}
	return headers, files
}

// sessionsIn lists the <user>/<session> directories of a collected tar.
func sessionsIn(headers map[string]*tar.Header, user string) []string {
	var out []string
	for name, hdr := range headers {
		if u, s, ok := strings.Cut(name, "/"); ok && u == user && hdr.Typeflag == tar.TypeDir && ValidSession(s) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestCollect: the collect program hands over every user's recordings with
// what ties them to the grant, marks the finished ones (sudo makes their
// timing read-only), deletes only what Passport says it stored, and forgets
// a removed user once nothing of theirs is left.
func TestCollect(t *testing.T) {
	t.Parallel()
	h := bootHost(t, "col")
	authority := newCA(t)
	alice, bob := authority.issue(t, "pp-alice"), authority.issue(t, "pp-bob")
	h.provision(t, grantFor(authority, "pp-alice", alice, false, time.Now().Add(time.Hour)))
	h.provision(t, grantFor(authority, "pp-bob", bob, false, time.Now().Add(time.Hour)))
	for _, who := range []struct {
		user string
		cred credential
	}{{"pp-alice", alice}, {"pp-alice", alice}, {"pp-bob", bob}} {
		if out, err := h.login(who.user, who.cred.signer, "echo collected-by-"+who.user); err != nil {
			t.Fatalf("%s: %q, %v", who.user, out, err)
		}
	}
	h.waitRecorded(t, "pp-bob", "collected-by-pp-bob")

	r, headers, files := h.collect(t, Collection{})
	aliceSessions, bobSessions := sessionsIn(headers, "pp-alice"), sessionsIn(headers, "pp-bob")
	if len(aliceSessions) != 2 || len(bobSessions) != 1 || r.Fields["sessions"] != "3" || r.Fields["recorded"] != "2" {
		t.Fatalf("collect handed over %v and %v (result %v); want 2 sessions of pp-alice and 1 of pp-bob", aliceSessions, bobSessions, r.Fields)
	}
	if g := files["pp-alice/grant"]; !strings.Contains(g, "user=pp-alice\n") || !strings.Contains(g, "request=req-pp-alice") || !strings.Contains(g, "serial=") {
		t.Errorf("pp-alice/grant holds %q; want the user, request and serial", g)
	}
	for _, s := range append(aliceSessions, bobSessions...) {
		timing := headers[s+"/timing"]
		if timing == nil || files[s+"/log.json"] == "" {
			t.Fatalf("%s lacks sudo's timing or log.json: %v", s, headers)
		}
		if timing.Mode&0o222 != 0 {
			t.Errorf("%s/timing has mode %o: sudo leaves a finished session's timing writable?", s, timing.Mode)
		}
	}
	if !strings.Contains(files[bobSessions[0]+"/stdout"], "collected-by-pp-bob") {
		t.Errorf("pp-bob's session output: %q", files[bobSessions[0]+"/stdout"])
	}

	// Passport stored pp-alice's first session: the host deletes it, and
	// hands over only the rest of hers.
	r, headers, _ = h.collect(t, Collection{Users: []string{"pp-alice"}, Prune: aliceSessions[:1]})
	if got := sessionsIn(headers, "pp-alice"); r.Fields["pruned"] != "1" || !slices.Equal(got, aliceSessions[1:]) || len(sessionsIn(headers, "pp-bob")) != 0 {
		t.Errorf("after pruning %s: handed over %v (result %v), want %v", aliceSessions[0], got, r.Fields, aliceSessions[1:])
	}

	// A session that is still being written is never pruned.
	ready := make(chan error, 1)
	go func() {
		_, err := h.login("pp-bob", bob.signer, "echo long-running-started; sleep 30")
		ready <- err
	}()
	h.waitRecorded(t, "pp-bob", "long-running-started")
	_, headers, _ = h.collect(t, Collection{Users: []string{"pp-bob"}})
	running := slices.DeleteFunc(sessionsIn(headers, "pp-bob"), func(s string) bool { return s == bobSessions[0] })
	if len(running) != 1 || headers[running[0]+"/timing"].Mode&0o200 == 0 {
		t.Fatalf("the running session of pp-bob: %v; want one, its timing writable", running)
	}
	r, headers, _ = h.collect(t, Collection{Users: []string{"pp-bob"}, Prune: running})
	if r.Fields["pruned"] != "0" || !slices.Contains(sessionsIn(headers, "pp-bob"), running[0]) {
		t.Errorf("a running session was pruned: result %v", r.Fields)
	}

	// Once pp-bob is gone (his running session killed with him) and
	// Passport has stored his sessions, the host forgets him.
	h.revoke(t, Revocation{Username: "pp-bob"})
	if err := <-ready; err == nil {
		t.Error("the running session survived the revoke")
	}
	_, headers, _ = h.collect(t, Collection{Users: []string{"pp-bob"}})
	left := sessionsIn(headers, "pp-bob")
	if len(left) != 2 {
		t.Fatalf("after the revoke, pp-bob's recordings are %v; want both kept", left)
	}
	h.collect(t, Collection{Users: []string{"pp-bob"}, Prune: left})
	if h.exists(t, RecordingsDir+"/pp-bob") {
		t.Errorf("%s/pp-bob is still there with its user gone and its sessions stored", RecordingsDir)
	}
	if _, headers, _ = h.collect(t, Collection{}); len(sessionsIn(headers, "pp-alice")) != 1 {
		t.Errorf("pp-alice's last session went with pp-bob's: %v", headers)
	}
}

// TestCollectRefusesBadInput: what travels in the data block is checked on
// the Go side with words naming the field, and again on the host.
func TestCollectRefusesBadInput(t *testing.T) {
	for name, c := range map[string]Collection{
		"user with a slash":     {Users: []string{"pp-a/../../etc"}},
		"prune without session": {Prune: []string{"pp-alice"}},
		"prune with a dot path": {Prune: []string{"pp-alice/../grants"}},
		"prune with a space":    {Prune: []string{"pp-alice/20261206-091500-Ab12C d"}},
		"too many sessions":     {Prune: slices.Repeat([]string{"pp-a/20261206-091500-Ab12Cd"}, MaxPrune+1)},
	} {
		if _, err := Collect(c); err == nil {
			t.Errorf("%s: Collect accepted %+v", name, c)
		}
	}
}

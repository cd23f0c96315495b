package collect

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"

	"github.com/passport-access/terraform-provider-passport/internal/ledger/dynamotest"
)

func testMeta() Meta {
	at := time.Date(2026, 12, 6, 9, 15, 0, 0, time.UTC)
	end := at.Add(time.Minute)
	return Meta{RequestID: "req-1", InstanceID: "i-0aaa", Session: "20261206-091500-Ab12Cd", Username: "pp-abc", Subject: "alice",
		Serials: []uint64{42}, KeyID: "passport:req-1:alice", Start: at, End: &end, CollectedAt: at.Add(time.Hour)}
}

func TestPackunpack(t *testing.T) {
	files := []File{{"log.json", []byte(`{"command":"/bin/bash"}`)}, {"timing", []byte("4 0.1 5\n")}, {"ttyout", []byte("hello\r\n")}}
	obj, sum, err := Pack(testMeta(), files)
	if err != nil {
		t.Fatal(err)
	}
	again, sum2, _ := Pack(testMeta(), files)
	if sum != sum2 || !bytes.Equal(obj, again) {
		t.Error("packing the same session twice gives different objects")
	}
	m, got, err := unpack(obj)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != Format || m.RequestID != "req-1" || m.KeyID != "passport:req-1:alice" || len(m.Files) != 3 || m.Files[2].Size != 7 {
		t.Errorf("recording.json: %+v", m)
	}
	if len(got) != 3 || got[2].Name != "ttyout" || string(got[2].Data) != "hello\r\n" {
		t.Errorf("files: %+v", got)
	}
	if _, _, err := Pack(testMeta(), []File{{"../etc/passwd", nil}}); err == nil {
		t.Error("Pack took a file name outside sudo's I/O log")
	}
}

// tarGz builds a gzip-compressed tar of the given members for tests.
func tarGz(t testing.TB, members ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	writeTar(t, zw, members)
	zw.Close()
	return buf.Bytes()
}

// tarZst builds the same compressed with zstd, as hosts with zstd do.
func tarZst(t testing.TB, members ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	writeTar(t, zw, members)
	zw.Close()
	return buf.Bytes()
}

func writeTar(t testing.TB, w io.Writer, members []*tar.Header) {
	tw := tar.NewWriter(w)
	for _, h := range members {
		h := *h
		data := []byte(h.Linkname)
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(data))
			h.Linkname = ""
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(data)
		}
	}
	tw.Close()
}

// zstdFrame is a zstd frame holding data as one raw block, which asks
// for a window of 1<<windowLog bytes.
func zstdFrame(windowLog byte, data []byte) []byte {
	n := len(data)<<3 | 1 // the last block, raw
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0, (windowLog - 10) << 3, byte(n), byte(n >> 8), byte(n >> 16)}
	return append(frame, data...)
}

// compressions are the ways a host may compress its bundle.
var compressions = map[string]func(testing.TB, ...*tar.Header) []byte{"gzip": tarGz, "zstd": tarZst}

// file makes a regular member; its content rides in Linkname until tarGz.
func file(name, content string, mode int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Linkname: content, ModTime: time.Unix(1765012500, 0)}
}

func dir(name string) *tar.Header {
	return &tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o700}
}

// TestReadBundle reads a bundle as hosts write it, compressed either way.
func TestReadBundle(t *testing.T) {
	for name, compress := range compressions {
		t.Run(name, func(t *testing.T) {
			bundle := compress(t, dir("pp-abc"), file("pp-abc/grant", "user=pp-abc\nrequest=req-1\nrequester=alice\nuid=60001\nserial=7\nserial=42\n", 0o600),
				dir("pp-abc/20261206-091500-Ab12Cd"),
				file("pp-abc/20261206-091500-Ab12Cd/log.json", `{"submit_time":{"seconds":1765012500,"nanoseconds":5}}`, 0o600),
				file("pp-abc/20261206-091500-Ab12Cd/timing", "1 0.5 3\n", 0o400),
				file("pp-abc/20261206-091500-Ab12Cd/stdout", "out", 0o600),
				dir("pp-abc/20261206-091600-Zz0011"),
				file("pp-abc/20261206-091600-Zz0011/timing", "", 0o600))
			sessions, grants, err := ReadBundle(bytes.NewReader(bundle))
			if err != nil {
				t.Fatal(err)
			}
			g := grants["pp-abc"]
			if g.Request != "req-1" || g.Requester != "alice" || len(g.Serials) != 2 || g.Serials[1] != 42 {
				t.Errorf("grant: %+v", g)
			}
			if len(sessions) != 2 {
				t.Fatalf("sessions: %+v", sessions)
			}
			s := sessions[0]
			if !s.Finished || s.Start != time.Unix(1765012500, 5).UTC() || s.End.IsZero() || len(s.Files) != 3 || s.Files[0].Name != "log.json" || s.Files[1].Name != "timing" {
				t.Errorf("finished session: %+v", s)
			}
			if sessions[1].Finished {
				t.Error("a session whose timing file is writable reads as finished")
			}
		})
	}
}

// TestReadBundleRefusesWhatTheRecorderNeverWrites: the host is root's;
// anything but users' grant files and session directories is refused.
func TestReadBundleRefusesWhatTheRecorderNeverWrites(t *testing.T) {
	for name, h := range map[string]*tar.Header{
		"a path out":       file("../etc/passwd", "x", 0o600),
		"an absolute path": file("/etc/shadow", "x", 0o600),
		"a symlink":        {Name: "pp-abc/20261206-091500-Ab12Cd/stdout", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"},
		"a strange file":   file("pp-abc/20261206-091500-Ab12Cd/notes", "x", 0o600),
		"a deep path":      file("pp-abc/20261206-091500-Ab12Cd/x/stdout", "x", 0o600),
		"a bad user":       file("Root/grant", "x", 0o600),
		"a bad session":    file("pp-abc/2026/stdout", "x", 0o600),
	} {
		for how, compress := range compressions {
			if _, _, err := ReadBundle(bytes.NewReader(compress(t, h))); err == nil {
				t.Errorf("%s (%s): accepted", name, how)
			}
		}
	}
	var plain bytes.Buffer
	grant := file("pp-abc/grant", "request=r\n", 0o600)
	writeTar(t, &plain, []*tar.Header{grant})
	// A window larger than the bound would have the decoder take that
	// much memory; the same frame with a small window reads.
	if _, _, err := ReadBundle(bytes.NewReader(zstdFrame(20, plain.Bytes()))); err != nil {
		t.Fatalf("a zstd frame with a 1 MiB window: %v", err)
	}
	for name, bundle := range map[string][]byte{
		"not compressed":          []byte("not gzip"),
		"a plain tar":             plain.Bytes(),
		"gzip cut short":          tarGz(t, grant)[:20],
		"zstd cut short":          tarZst(t, grant)[:20],
		"a zstd header":           {0x28, 0xb5, 0x2f, 0xfd},
		"a window over the bound": zstdFrame(27, plain.Bytes()),
	} {
		if _, _, err := ReadBundle(bytes.NewReader(bundle)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzReadBundle(f *testing.F) {
	f.Add(tarGz(f, dir("pp-abc"), file("pp-abc/grant", "request=r\n", 0o600)))
	f.Add(tarZst(f, dir("pp-abc"), dir("pp-abc/20261206-091500-Ab12Cd"), file("pp-abc/20261206-091500-Ab12Cd/timing", "1 0.5 3\n", 0o400)))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, data []byte) {
		sessions, _, err := ReadBundle(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, s := range sessions {
			if !reUser.MatchString(s.User) || !reSession.MatchString(s.Name) {
				t.Fatalf("a session named %q/%q came through", s.User, s.Name)
			}
			for _, f := range s.Files {
				if !validFileName(f.Name) {
					t.Fatalf("a file named %q came through", f.Name)
				}
			}
		}
	})
}

func FuzzUnpack(f *testing.F) {
	obj, _, _ := Pack(testMeta(), []File{{"timing", []byte("1 2 3\n")}})
	f.Add(obj)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, files, err := unpack(data)
		if err != nil {
			return
		}
		for _, f := range files {
			if !validFileName(f.Name) {
				t.Fatalf("a file named %q came through", f.Name)
			}
		}
	})
}

// TestStoreAgainstMoto: the store's calls work against another S3
// implementation than the lab's: moto's.
func TestStoreAgainstMoto(t *testing.T) {
	endpoint := dynamotest.Start(t, dynamotest.Moto)
	ctx := context.Background()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDRECORDINGTEST", "recording-test-secret", "")}
	st, err := NewStore(cfg, "passport-recordings")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(st.Bucket)}); err != nil {
		t.Fatal(err)
	}
	obj, _, err := Pack(testMeta(), []File{{"timing", []byte("1 2 3\n")}})
	if err != nil {
		t.Fatal(err)
	}
	key := "recordings/req-1/i-0aaa/20261206-091500-Ab12Cd"
	if err := st.Put(ctx, key, obj, ContentType); err != nil {
		t.Fatal(err)
	}
	transfer := TransferPrefix + "cmd-1/i-0aaa/awsrunShellScript/collect/stdout"
	if err := st.Put(ctx, transfer, []byte("bundle"), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, key)
	if err != nil || !bytes.Equal(got, obj) {
		t.Fatalf("Get: %d bytes, %v", len(got), err)
	}
	if n, err := st.Size(ctx, key); err != nil || n != int64(len(obj)) {
		t.Errorf("Size: %d, %v", n, err)
	}
	if k, err := st.TransferOutput(ctx, "cmd-1", "i-0aaa"); err != nil || k != transfer {
		t.Errorf("TransferOutput: %q, %v", k, err)
	}
	if keys, err := st.List(ctx, "recordings/req-1/"); err != nil || len(keys) != 1 || keys[0] != key {
		t.Errorf("List: %v, %v", keys, err)
	}
	if err := st.ApplyRetention(ctx, 90*24*time.Hour); err != nil {
		t.Errorf("ApplyRetention: %v", err)
	}
	if err := st.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, key); !errors.Is(err, ErrMissing) {
		t.Errorf("Get of a deleted object: %v, want ErrMissing", err)
	}
	if _, err := st.Size(ctx, key); !errors.Is(err, ErrMissing) {
		t.Errorf("Size of a deleted object: %v, want ErrMissing", err)
	}
}

// maxObject bounds what unpack reads uncompressed: a deflate bomb stops
// there.
const maxObject = 1 << 30

// unpack reads a recording object: its recording.json and its I/O log
// files, each checked against the size and SHA-256 recording.json gives.
func unpack(object []byte) (Meta, []File, error) {
	zr, err := gzip.NewReader(bytes.NewReader(object))
	if err != nil {
		return Meta{}, nil, fmt.Errorf("recording: the object is not gzip: %w", err)
	}
	tr := tar.NewReader(io.LimitReader(zr, maxObject))
	var m Meta
	var files []File
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Meta{}, nil, fmt.Errorf("recording: the object is not a tar: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return Meta{}, nil, fmt.Errorf("recording: reading %s: %w", hdr.Name, err)
		}
		switch {
		case i == 0 && hdr.Name == "recording.json":
			if err := json.Unmarshal(data, &m); err != nil {
				return Meta{}, nil, fmt.Errorf("recording: recording.json: %w", err)
			}
			if m.Format != Format {
				return Meta{}, nil, fmt.Errorf("recording: format %q, this Passport reads %s", m.Format, Format)
			}
		case i == 0:
			return Meta{}, nil, fmt.Errorf("recording: the object starts with %q, not recording.json", hdr.Name)
		default:
			name, ok := strings.CutPrefix(hdr.Name, ioLogDir)
			if !ok || !validFileName(name) {
				return Meta{}, nil, fmt.Errorf("recording: unexpected member %q", hdr.Name)
			}
			files = append(files, File{Name: name, Data: data})
		}
	}
	if m.Format == "" {
		return Meta{}, nil, errors.New("recording: the object holds no recording.json")
	}
	if len(files) != len(m.Files) {
		return Meta{}, nil, fmt.Errorf("recording: recording.json lists %d files, the object holds %d", len(m.Files), len(files))
	}
	for i, f := range files {
		sum := sha256.Sum256(f.Data)
		if want := m.Files[i]; want.Name != f.Name || want.Size != int64(len(f.Data)) || want.SHA256 != hex.EncodeToString(sum[:]) {
			return Meta{}, nil, fmt.Errorf("recording: %s differs from what recording.json says of it", f.Name)
		}
	}
	return m, files, nil
}

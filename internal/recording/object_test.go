package recording

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
)

// object builds a recording object as collection writes it, from the
// files of a testdata I/O log; change edits the tar entries before they
// are written.
func object(t testing.TB, dir string, change func(info *collect.Meta, files map[string][]byte)) []byte {
	t.Helper()
	m := mapFS(t, dir)
	files := map[string][]byte{}
	info := collect.Meta{Format: collect.Format, RequestID: "ar-0123456789abcdef", InstanceID: "i-0a1b2c3d4e5f67890", Session: "20261206-064656-PAwD9y",
		Username: "nobody", Start: time.Unix(1796539616, 0).UTC(), CollectedAt: time.Unix(1796539700, 0).UTC()}
	for name, f := range m {
		files["iolog/"+name] = f.Data
		sum := sha256.Sum256(f.Data)
		info.Files = append(info.Files, collect.FileMeta{Name: name, Size: int64(len(f.Data)), SHA256: hex.EncodeToString(sum[:])})
	}
	if change != nil {
		change(&info, files)
	}
	if _, ok := files["recording.json"]; !ok {
		b, _ := json.Marshal(info)
		files["recording.json"] = b
	}
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	tw := tar.NewWriter(z)
	for _, name := range append([]string{"recording.json"}, keys(files)...) {
		data, ok := files[name]
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "link:") {
			tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(name, "link:"), Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o400, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	tw.Close()
	z.Close()
	return buf.Bytes()
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		if k != "recording.json" {
			out = append(out, k)
		}
	}
	return out
}

func TestReadObject(t *testing.T) {
	info, l, err := ReadObject(bytes.NewReader(object(t, "testdata/sudo-terminal", nil)))
	if err != nil {
		t.Fatal(err)
	}
	if info.RequestID != "ar-0123456789abcdef" || l.Info.User != "nobody" || !l.Info.Terminal {
		t.Errorf("info %+v, log %+v", info, l.Info)
	}
	ev, err := l.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	if out := joined(readAll(t, ev), TTYOut); !strings.Contains(out, "got secret input") {
		t.Errorf("output %q", out)
	}
}

// An object that is not exactly what collection wrote is refused, naming
// what is wrong.
func TestBadObjects(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*collect.Meta, map[string][]byte)
		want   string
	}{
		{"changed stream", func(_ *collect.Meta, f map[string][]byte) { f["iolog/ttyout"] = []byte("forged") }, "ttyout is not the file collected"},
		{"unlisted file", func(i *collect.Meta, _ map[string][]byte) { i.Files = i.Files[1:] }, "is not listed in recording.json"},
		{"listed, missing", func(i *collect.Meta, f map[string][]byte) { delete(f, "iolog/"+i.Files[0].Name) }, "which the object does not hold"},
		{"another file", func(_ *collect.Meta, f map[string][]byte) { f["iolog/evil"] = []byte("x") }, `"iolog/evil" is not a file a recording holds`},
		{"a path out", func(_ *collect.Meta, f map[string][]byte) { f["../../etc/cron.d/x"] = []byte("x") }, "is not a file a recording holds"},
		{"a link", func(_ *collect.Meta, f map[string][]byte) { f["link:iolog/stdin"] = nil }, "is not a regular file"},
		{"format", func(i *collect.Meta, _ map[string][]byte) { i.Format = "passport-recording/9" }, "format"},
		{"json", func(_ *collect.Meta, f map[string][]byte) { f["recording.json"] = []byte(`{"format":1}`) }, "recording.json"},
		{"unknown field", func(_ *collect.Meta, f map[string][]byte) {
			f["recording.json"] = []byte(`{"format":"passport-recording/1","files":[],"evil":1}`)
		}, "unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ReadObject(bytes.NewReader(object(t, "testdata/sudo-terminal", c.change)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want one saying %q", err, c.want)
			}
		})
	}
	if _, _, err := ReadObject(strings.NewReader("not gzip")); err == nil || !strings.Contains(err.Error(), "not gzip") {
		t.Errorf("not gzip: %v", err)
	}
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	z.Write([]byte("not a tar, but long enough to be read as one header block..."))
	z.Close()
	if _, _, err := ReadObject(&buf); err == nil {
		t.Error("a gzip of no tar was read")
	}
}

// What collection writes is what this reads.
func TestReadObjectOfCollectPack(t *testing.T) {
	var files []collect.File
	for _, name := range []string{"log", "log.json", "timing", "ttyin", "ttyout"} {
		files = append(files, collect.File{Name: name, Data: mapFS(t, "testdata/sudo-terminal")[name].Data})
	}
	obj, _, err := collect.Pack(collect.Meta{RequestID: "ar-0123456789abcdef", InstanceID: "i-0a1b2c3d4e5f67890", Session: "20261206-064656-PAwD9y", Username: "nobody"}, files)
	if err != nil {
		t.Fatal(err)
	}
	meta, l, err := ReadObject(bytes.NewReader(obj))
	if err != nil || meta.Session != "20261206-064656-PAwD9y" || l.Info.User != "nobody" {
		t.Fatalf("ReadObject of collect.Pack's object: %+v, %v", meta, err)
	}
}

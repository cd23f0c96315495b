package labtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

// CollectRecordings copies the recordings of user's sessions on h into
// dir/<session>/, as collection puts them in the bucket (dir is then
// request/instance under a recording.Dir).
func CollectRecordings(t testing.TB, h *sandbox.Host, user, dir string) {
	t.Helper()
	packed := OnHost(t, h, "cd "+hostscript.RecordingsDir+"/"+user+" && tar -czf - . | base64 -w0")
	raw, err := base64.StdEncoding.DecodeString(packed)
	if err != nil {
		t.Fatal(err)
	}
	z, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(z)
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(hd.Name, "./")))
		switch hd.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, 0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err == nil {
				err = os.WriteFile(name, b, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

package recording

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
)

// Limits on a recording object: what collection writes stays far below
// them.
const (
	maxObjectFiles = 16
	// MaxObjectBytes bounds the files of one object, unpacked.
	MaxObjectBytes = 2 << 30
)

// ioLogFiles are the files of sudo's I/O log an object may hold.
var ioLogFiles = []string{"log", "log.json", "timing", "stdin", "stdout", "stderr", "ttyin", "ttyout"}

// ReadObject reads a recording object, as collect.Pack writes it (a
// gzip-compressed tar of recording.json and iolog/<file>), and opens the
// I/O log in it. Every
// file must be one recording.json lists, with its size and SHA-256, and
// every file it lists must be there.
func ReadObject(r io.Reader) (*collect.Meta, *Log, error) {
	z, err := gzip.NewReader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("recording object: not gzip: %v", err)
	}
	tr := tar.NewReader(z)
	fsys := fstest.MapFS{}
	var info *collect.Meta
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("recording object: not a tar: %v", err)
		}
		if n >= maxObjectFiles {
			return nil, nil, fmt.Errorf("recording object: more than %d files", maxObjectFiles)
		}
		if h.Typeflag == tar.TypeDir && (h.Name == "iolog/" || h.Name == "iolog") {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return nil, nil, fmt.Errorf("recording object: %.60q is not a regular file", h.Name)
		}
		name, isLog := strings.CutPrefix(h.Name, "iolog/")
		if !(isLog && (slices.Contains(ioLogFiles, name) || name == collect.EventsFile)) && h.Name != "recording.json" {
			return nil, nil, fmt.Errorf("recording object: %.60q is not a file a recording holds (recording.json, iolog/ and sudo's files)", h.Name)
		}
		if h.Size < 0 || total+h.Size > MaxObjectBytes || h.Name == "recording.json" && h.Size > maxInfoBytes {
			return nil, nil, fmt.Errorf("recording object: %s is larger than a recording may be", h.Name)
		}
		total += h.Size
		b, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil || int64(len(b)) != h.Size {
			return nil, nil, fmt.Errorf("recording object: %s is cut short", h.Name)
		}
		if h.Name == "recording.json" {
			if info != nil {
				return nil, nil, errors.New("recording object: two recording.json")
			}
			info = &collect.Meta{}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(info); err != nil {
				return nil, nil, fmt.Errorf("recording object: recording.json: %v", err)
			}
			continue
		}
		if _, dup := fsys[name]; dup {
			return nil, nil, fmt.Errorf("recording object: %s twice", h.Name)
		}
		fsys[name] = &fstest.MapFile{Data: b, Mode: 0o400}
	}
	if info == nil {
		return nil, nil, errors.New("recording object: no recording.json")
	}
	if info.Format != collect.Format {
		return nil, nil, fmt.Errorf("recording object: format %.40q, not %s", info.Format, collect.Format)
	}
	listed := map[string]bool{}
	for _, f := range info.Files {
		got, ok := fsys[f.Name]
		if !ok || listed[f.Name] {
			return nil, nil, fmt.Errorf("recording object: recording.json lists %.40q, which the object does not hold once", f.Name)
		}
		listed[f.Name] = true
		sum := sha256.Sum256(got.Data)
		if int64(len(got.Data)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			return nil, nil, fmt.Errorf("recording object: %s is not the file collected (size or SHA-256 differ from recording.json)", f.Name)
		}
	}
	for name := range fsys {
		if !listed[name] {
			return nil, nil, fmt.Errorf("recording object: iolog/%s is not listed in recording.json", name)
		}
	}
	l, err := Open(fsys)
	if err != nil {
		return nil, nil, err
	}
	return info, l, nil
}

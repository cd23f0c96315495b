// Package collect takes session recordings off hosts into the recordings
// bucket: the bundle a host hands over through Run Command's S3 output
// (ReadBundle), the object each session becomes (Pack: a gzip-compressed
// tar of recording.json and sudo's I/O log files, which package recording
// reads), and the bucket itself (Store).
//
// DESIGN.md, "Collecting recordings", describes the layout; the ledger
// indexes each object (ledger.Recording) and the audit trail holds its
// digest.
package collect

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Format names the layout of a recording object, in recording.json.
const Format = "passport-recording/1"

// ContentType is the recording objects' Content-Type.
const ContentType = "application/gzip"

// Meta is recording.json: what ties the session to its grant.
type Meta struct {
	Format      string     `json:"format"`
	RequestID   string     `json:"request_id"`
	InstanceID  string     `json:"instance_id"`
	Session     string     `json:"session"`
	Username    string     `json:"username"`
	Subject     string     `json:"subject,omitempty"`
	Serials     []uint64   `json:"serials,omitempty"`
	KeyID       string     `json:"key_id,omitempty"`
	Start       time.Time  `json:"start"`
	End         *time.Time `json:"end,omitempty"`
	CollectedAt time.Time  `json:"collected_at"`
	Files       []FileMeta `json:"files"`
}

// FileMeta is one file of sudo's I/O log as collected.
type FileMeta struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// File is one file of a session's I/O log directory.
type File struct {
	Name string
	Data []byte
}

// ioLogDir is where the I/O log files sit in a recording object.
const ioLogDir = "iolog/"

// Pack builds a session's recording object: recording.json (m, with Files
// filled in from files), then iolog/<name> for each file, in files' order.
// It returns the object and its hex SHA-256.
func Pack(m Meta, files []File) ([]byte, string, error) {
	m.Format = Format
	m.Files = nil
	for _, f := range files {
		if !validFileName(f.Name) {
			return nil, "", fmt.Errorf("recording: %q is not a file name of sudo's I/O log", f.Name)
		}
		sum := sha256.Sum256(f.Data)
		m.Files = append(m.Files, FileMeta{Name: f.Name, Size: int64(len(f.Data)), SHA256: hex.EncodeToString(sum[:])})
	}
	meta, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, "", err
	}
	var total int
	for _, f := range files {
		total += len(f.Data)
	}
	buf := bytes.NewBuffer(make([]byte, 0, total/2+4096))
	zw, _ := gzip.NewWriterLevel(buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	// Every member carries the collection time: the object depends on
	// what was recorded, not on when tar ran.
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o400, Size: int64(len(data)), ModTime: m.CollectedAt, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put("recording.json", append(meta, '\n')); err != nil {
		return nil, "", err
	}
	for _, f := range files {
		if err := put(ioLogDir+f.Name, f.Data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]), nil
}

// ioLogFiles are the files sudo writes in a session's I/O log directory.
var ioLogFiles = []string{"log", "log.json", "timing", "ttyin", "ttyout", "stdin", "stdout", "stderr"}

func validFileName(name string) bool {
	return (slices.Contains(ioLogFiles, name) || name == EventsFile) && path.Base(name) == name
}

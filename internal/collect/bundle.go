package collect

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// A HostSession is one session as a host handed it over.
type HostSession struct {
	User, Name string
	Files      []File
	// Finished: sudo made the timing file read-only, as it does when the
	// session ends; End is then the timing file's last change.
	Finished   bool
	Start, End time.Time
}

// A HostGrant is what a host's recordings/<user>/grant says: the request
// and requester the user was made for, and every certificate serial it
// was given there. The host's root could have changed it; Passport
// checks it against the ledger.
type HostGrant struct {
	User, Request, Requester string
	Serials                  []uint64
}

// MaxBundle bounds what ReadBundle reads uncompressed.
const MaxBundle = 4 << 30

var (
	reUser    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)
	reSession = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}-[A-Za-z0-9]{6}$`)
)

// ReadBundle reads the tar the collect program writes, compressed with
// zstd or gzip (whichever the host has): <user>/grant and
// <user>/<session>/<file>. Members it does not expect (a link, a name
// outside that shape) are refused: the host is root's, and whatever it
// sends is checked.
func ReadBundle(r io.Reader) ([]HostSession, map[string]HostGrant, error) {
	plain, done, err := decompress(r)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	tr := tar.NewReader(io.LimitReader(plain, MaxBundle))
	grants := map[string]HostGrant{}
	byKey := map[string]*HostSession{}
	var order []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("recording: the host's bundle is not a tar: %w", err)
		}
		parts := strings.Split(strings.TrimSuffix(hdr.Name, "/"), "/")
		if !reUser.MatchString(parts[0]) || len(parts) > 3 {
			return nil, nil, fmt.Errorf("recording: the host's bundle holds %.80q, which the recorder never writes", hdr.Name)
		}
		user := parts[0]
		switch {
		case len(parts) == 1 && hdr.Typeflag == tar.TypeDir:
		case len(parts) == 2 && parts[1] == "grant" && hdr.Typeflag == tar.TypeReg:
			data, err := io.ReadAll(io.LimitReader(tr, 64<<10))
			if err != nil {
				return nil, nil, err
			}
			grants[user] = parseHostGrant(user, string(data))
		case len(parts) == 2 && reSession.MatchString(parts[1]) && hdr.Typeflag == tar.TypeDir:
			key := user + "/" + parts[1]
			if byKey[key] == nil {
				byKey[key] = &HostSession{User: user, Name: parts[1]}
				order = append(order, key)
			}
		case len(parts) == 3 && reSession.MatchString(parts[1]) && slices.Contains(ioLogFiles, parts[2]) && hdr.Typeflag == tar.TypeReg:
			key := user + "/" + parts[1]
			s := byKey[key]
			if s == nil {
				s = &HostSession{User: user, Name: parts[1]}
				byKey[key] = s
				order = append(order, key)
			}
			// The header's size sizes the buffer, up to a bound: a host
			// that lies about it gets no more memory than that up front.
			buf := bytes.NewBuffer(make([]byte, 0, min(max(hdr.Size, 0), 64<<20)+bytes.MinRead))
			if _, err := buf.ReadFrom(tr); err != nil {
				return nil, nil, fmt.Errorf("recording: reading %s from the host's bundle: %w", hdr.Name, err)
			}
			data := buf.Bytes()
			s.Files = append(s.Files, File{Name: parts[2], Data: data})
			if parts[2] == "timing" && hdr.Mode&0o222 == 0 {
				s.Finished, s.End = true, hdr.ModTime.UTC()
			}
			if parts[2] == "log.json" {
				s.Start = submitTime(data, hdr.ModTime)
			}
		default:
			return nil, nil, fmt.Errorf("recording: the host's bundle holds %.80q, which the recorder never writes", hdr.Name)
		}
	}
	sessions := make([]HostSession, 0, len(order))
	for _, k := range order {
		s := byKey[k]
		// A fixed order makes a session's object the same whenever it is
		// packed: sudo's files in the order ioLogFiles names them.
		slices.SortFunc(s.Files, func(a, b File) int { return slices.Index(ioLogFiles, a.Name) - slices.Index(ioLogFiles, b.Name) })
		sessions = append(sessions, *s)
	}
	return sessions, grants, nil
}

// maxWindow bounds the zstd window a bundle may ask for, and so the
// memory decoding it takes: zstd -1 uses at most 2 MiB.
const maxWindow = 64 << 20

// decompress opens a bundle by its magic number: zstd or gzip. done
// releases the decoder.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderMaxMemory(maxWindow), zstd.WithDecoderConcurrency(2))
		if err != nil {
			return nil, nil, fmt.Errorf("recording: the host's bundle is not zstd: %w", err)
		}
		return zr, zr.Close, nil
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("recording: the host's bundle is not gzip: %w", err)
		}
		return zr, func() {}, nil
	}
	return nil, nil, fmt.Errorf("recording: the host's bundle is neither zstd nor gzip (it starts %q)", magic)
}

// submitTime reads when sudo started the session from its log.json, or
// falls back to the file's time.
func submitTime(logJSON []byte, fallback time.Time) time.Time {
	var l struct {
		SubmitTime *struct {
			Seconds     int64 `json:"seconds"`
			Nanoseconds int64 `json:"nanoseconds"`
		} `json:"submit_time"`
	}
	if json.Unmarshal(logJSON, &l) == nil && l.SubmitTime != nil && l.SubmitTime.Seconds > 0 {
		return time.Unix(l.SubmitTime.Seconds, l.SubmitTime.Nanoseconds).UTC()
	}
	return fallback.UTC()
}

func parseHostGrant(user, text string) HostGrant {
	g := HostGrant{User: user}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "request":
			g.Request = v
		case "requester":
			g.Requester = v
		case "serial":
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				g.Serials = append(g.Serials, n)
			}
		}
	}
	return g
}

package recording

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Ref names one collected recording: the request it was made under, the
// instance, and the session's directory name on that host (sudo's
// iolog_file). Its ID, request/instance/session, is also where the bucket
// keeps it, under recordings/.
type Ref struct {
	Request  string `json:"request"`
	Instance string `json:"instance"`
	Session  string `json:"session"`
	// User is the Passport user the session ran as, Subject the person it
	// was for, and Start and End when it began and ended, where the
	// catalog knows them (End is zero for a session collected while it
	// ran).
	User    string    `json:"user,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Start   time.Time `json:"start,omitzero"`
	End     time.Time `json:"end,omitzero"`
	// Size and SHA256 are what the ledger's index recorded at collection:
	// a recording that no longer matches them is refused.
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// ID is request/instance/session.
func (r Ref) ID() string { return r.Request + "/" + r.Instance + "/" + r.Session }

var (
	reRequest  = regexp.MustCompile(`^ar-[0-9a-f]{16}$`)
	reInstance = regexp.MustCompile(`^(i|mi)-[0-9a-f]{8,17}$`)
	reSession  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// ParseID reads a recording's ID, request/instance/session, as `passport
// sessions list` prints it.
func ParseID(id string) (Ref, error) {
	parts := strings.Split(id, "/")
	if len(parts) != 3 {
		return Ref{}, fmt.Errorf("%.80q is not a recording: give request/instance/session, as passport sessions list prints it", id)
	}
	r := Ref{Request: parts[0], Instance: parts[1], Session: parts[2]}
	return r, r.Check()
}

// Check says which part of r is not what Passport names recordings with.
func (r Ref) Check() error {
	switch {
	case !reRequest.MatchString(r.Request):
		return fmt.Errorf("%.40q is not a request id (ar- and 16 hex digits)", r.Request)
	case !reInstance.MatchString(r.Instance):
		return fmt.Errorf("%.40q is not an instance id (i- and 8 to 17 hex digits)", r.Instance)
	case !reSession.MatchString(r.Session):
		return fmt.Errorf("%.70q is not a session name (letters, digits, '.', '_' and '-', as the recorder names them)", r.Session)
	}
	return nil
}

// Query narrows a listing: empty fields match everything.
type Query struct {
	Request  string
	Instance string
}

func (q Query) matches(r Ref) bool {
	return (q.Request == "" || q.Request == r.Request) && (q.Instance == "" || q.Instance == r.Instance)
}

// Catalog is where collected recordings are found and opened: the
// ledger's index and the bucket, or a directory laid out the same way.
type Catalog interface {
	// List returns the recordings q matches, oldest first.
	List(ctx context.Context, q Query) ([]Ref, error)
	// Open opens one, refusing one that is not what was collected.
	Open(ctx context.Context, r Ref) (*Log, error)
}

// ErrNotFound is returned by Open for a recording the catalog does not
// hold.
var ErrNotFound = errors.New("no such recording")

// Dir is a catalog in a directory laid out as the bucket's recordings/
// prefix, one directory per session: <request>/<instance>/<session>/
// holding sudo's files. `aws s3 sync s3://<bucket>/recordings DIR` makes
// one for reading offline.
type Dir string

// List walks the directory.
func (d Dir) List(ctx context.Context, q Query) ([]Ref, error) {
	var out []Ref
	requests, err := os.ReadDir(string(d))
	if err != nil {
		return nil, fmt.Errorf("recordings directory: %w", err)
	}
	for _, req := range requests {
		if q.Request != "" && req.Name() != q.Request || !reRequest.MatchString(req.Name()) {
			continue
		}
		instances, _ := os.ReadDir(filepath.Join(string(d), req.Name()))
		for _, in := range instances {
			if q.Instance != "" && in.Name() != q.Instance || !reInstance.MatchString(in.Name()) {
				continue
			}
			sessions, _ := os.ReadDir(filepath.Join(string(d), req.Name(), in.Name()))
			for _, s := range sessions {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				r := Ref{Request: req.Name(), Instance: in.Name(), Session: s.Name()}
				if !s.IsDir() || r.Check() != nil {
					continue
				}
				if l, err := d.Open(ctx, r); err == nil {
					r.User, r.Start = l.Info.User, l.Info.Start
				}
				out = append(out, r)
			}
		}
	}
	sortRefs(out)
	return out, nil
}

// sortRefs puts recordings oldest first, then by ID.
func sortRefs(refs []Ref) {
	slices.SortStableFunc(refs, func(a, b Ref) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID(), b.ID())
	})
}

// Open opens the session's directory.
func (d Dir) Open(_ context.Context, r Ref) (*Log, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	dir := filepath.Join(string(d), r.Request, r.Instance, r.Session)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: %w", r.ID(), ErrNotFound)
	}
	l, err := Open(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.ID(), err)
	}
	return l, nil
}

var _ Catalog = Dir("")

// Package s3 is the lab's S3: buckets of objects kept in memory, served
// over S3's REST protocol (path-style, and virtual-hosted where the Host
// names the bucket) to SigV4-signed callers, with the operations Passport's
// recordings need: CreateBucket, PutObject, GetObject, HeadObject,
// ListObjectsV2, DeleteObject and a bucket's lifecycle expiration. The
// lab's agent writes Run Command output here as AWS's agent writes it to a
// bucket, and Expire applies the lifecycle rules as S3 does, on a clock
// the tests move.
package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/iam"
)

// MaxObject bounds one object: recordings of long sessions are large, and
// the lab keeps every object in memory.
const MaxObject = 512 << 20

// Config connects the service to the lab's front end.
type Config struct {
	// Verify checks a request's SigV4 signature over its body, as S3
	// signs, and returns the request with the caller in its context.
	Verify func(r *http.Request, body []byte) (*http.Request, error)
	// Authorize decides whether the caller may call action (s3:PutObject,
	// ...) on resource (arn:aws:s3:::bucket/key, or the bucket's ARN).
	Authorize func(ctx context.Context, action string, resources []iam.Resource) error
	// Now is the lab's clock, for Last-Modified and lifecycle expiry.
	Now func() time.Time
}

// Service holds the buckets.
type Service struct {
	cfg     Config
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	objects map[string]object
	// expireDays is the lifecycle rules' expiration by key prefix.
	expireDays map[string]int
}

type object struct {
	data     []byte
	modified time.Time
	etag     string
	kind     string
}

// New returns an empty S3.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, buckets: map[string]*bucket{}}
}

// CreateBucket makes a bucket (or keeps the one there).
func (s *Service) CreateBucket(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[name] == nil {
		s.buckets[name] = &bucket{objects: map[string]object{}, expireDays: map[string]int{}}
	}
}

// Put stores an object as the lab's own agent does, with the instance's
// role (which the lab does not model): the bucket must exist.
func (s *Service) Put(bucketName, key string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucketName]
	if b == nil {
		return fmt.Errorf("the specified bucket %q does not exist", bucketName)
	}
	b.objects[key] = newObject(data, "application/octet-stream", s.cfg.Now())
	return nil
}

// Object returns a stored object's bytes, for tests and the lab's agent.
func (s *Service) Object(bucketName, key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buckets[bucketName]; b != nil {
		if o, ok := b.objects[key]; ok {
			return o.data, true
		}
	}
	return nil, false
}

// Replace changes a stored object's bytes behind every caller's back, for
// tests that tamper with a recording after it was collected.
func (s *Service) Replace(bucketName, key string, data []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buckets[bucketName]; b != nil {
		if o, ok := b.objects[key]; ok {
			b.objects[key] = newObject(data, o.kind, o.modified)
			return true
		}
	}
	return false
}

// Expire deletes every object a lifecycle rule has expired at the lab's
// clock, as S3 does (S3 rounds to the next midnight UTC after the days
// pass; the lab does not) and returns how many went. Where several rules
// match a key the shortest expiration wins, as in S3. Every request runs
// it first, so an expired object is gone for every caller at once.
func (s *Service) Expire() int {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.buckets {
		if len(b.expireDays) == 0 {
			continue
		}
		for key, o := range b.objects {
			days := 0
			for prefix, d := range b.expireDays {
				if strings.HasPrefix(key, prefix) && (days == 0 || d < days) {
					days = d
				}
			}
			if days > 0 && !now.Before(o.modified.AddDate(0, 0, days)) {
				delete(b.objects, key)
				n++
			}
		}
	}
	return n
}

func newObject(data []byte, kind string, at time.Time) object {
	sum := md5.Sum(data)
	return object{data: bytes.Clone(data), modified: at.UTC(), etag: `"` + hex.EncodeToString(sum[:]) + `"`, kind: kind}
}

// ServeHTTP answers one S3 call.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxObject+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "IncompleteBody", "The request body could not be read.", "")
		return
	}
	if len(body) > MaxObject {
		writeError(w, http.StatusBadRequest, "EntityTooLarge", fmt.Sprintf("Your proposed upload exceeds the lab's maximum of %d bytes.", MaxObject), "")
		return
	}
	r, err = s.cfg.Verify(r, body)
	if err != nil {
		// S3 names every signature refusal SignatureDoesNotMatch or
		// InvalidAccessKeyId; the message says which check failed.
		writeError(w, http.StatusForbidden, "SignatureDoesNotMatch", err.Error(), "")
		return
	}
	s.Expire()
	bucketName, key := s.address(r)
	if bucketName == "" {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "ListBuckets is not served by the lab; name a bucket.", "")
		return
	}
	q := r.URL.Query()
	switch {
	case key == "" && r.Method == http.MethodPut && q.Has("lifecycle"):
		s.putLifecycle(w, r, bucketName, body)
	case key == "" && r.Method == http.MethodPut:
		if !s.allowed(w, r, "s3:CreateBucket", bucketARN(bucketName)) {
			return
		}
		s.CreateBucket(bucketName)
		w.Header().Set("Location", "/"+bucketName)
		w.WriteHeader(http.StatusOK)
	case key == "" && r.Method == http.MethodGet && q.Get("list-type") == "2":
		s.list(w, r, bucketName)
	case key == "":
		writeError(w, http.StatusNotImplemented, "NotImplemented", "The lab's S3 serves CreateBucket, PutBucketLifecycleConfiguration and ListObjectsV2 on a bucket.", "")
	case r.Method == http.MethodPut:
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			writeError(w, http.StatusNotImplemented, "NotImplemented", "CopyObject is not served by the lab.", key)
			return
		}
		s.put(w, r, bucketName, key, body)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		s.get(w, r, bucketName, key)
	case r.Method == http.MethodDelete:
		s.delete(w, r, bucketName, key)
	default:
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.", key)
	}
}

// address reads the bucket and key: from the Host where it names the
// bucket (virtual-hosted style, bucket.host), else from the path.
func (s *Service) address(r *http.Request) (bucketName, key string) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	host := r.Host
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	if b, rest, ok := strings.Cut(host, "."); ok && !isIPv4(host) && rest != "" && b != "s3" {
		return b, path
	}
	bucketName, key, _ = strings.Cut(path, "/")
	return bucketName, key
}

func isIPv4(h string) bool {
	return strings.Trim(h, "0123456789.") == ""
}

func bucketARN(name string) string { return "arn:aws:s3:::" + name }

func (s *Service) allowed(w http.ResponseWriter, r *http.Request, action, arn string) bool {
	if err := s.cfg.Authorize(r.Context(), action, []iam.Resource{{ARN: arn}}); err != nil {
		msg := err.Error()
		if _, m, ok := strings.Cut(msg, ": "); ok {
			msg = m
		}
		writeError(w, http.StatusForbidden, "AccessDenied", msg, "")
		return false
	}
	return true
}

func (s *Service) bucket(w http.ResponseWriter, name string) *bucket {
	b := s.buckets[name]
	if b == nil {
		writeError(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist", "")
	}
	return b
}

func (s *Service) put(w http.ResponseWriter, r *http.Request, bucketName, key string, body []byte) {
	if !s.allowed(w, r, "s3:PutObject", bucketARN(bucketName)+"/"+key) {
		return
	}
	if want := r.Header.Get("Content-Md5"); want != "" {
		sum := md5.Sum(body)
		if got := base64.StdEncoding.EncodeToString(sum[:]); got != want {
			writeError(w, http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.", key)
			return
		}
	}
	kind := r.Header.Get("Content-Type")
	if kind == "" {
		kind = "binary/octet-stream"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(w, bucketName)
	if b == nil {
		return
	}
	o := newObject(body, kind, s.cfg.Now())
	b.objects[key] = o
	w.Header().Set("ETag", o.etag)
	w.WriteHeader(http.StatusOK)
}

func (s *Service) get(w http.ResponseWriter, r *http.Request, bucketName, key string) {
	// HeadObject is authorized as GetObject, as on AWS.
	if !s.allowed(w, r, "s3:GetObject", bucketARN(bucketName)+"/"+key) {
		return
	}
	s.mu.Lock()
	b := s.bucket(w, bucketName)
	if b == nil {
		s.mu.Unlock()
		return
	}
	o, ok := b.objects[key]
	s.mu.Unlock()
	if !ok {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		writeError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", key)
		return
	}
	w.Header().Set("ETag", o.etag)
	w.Header().Set("Content-Type", o.kind)
	w.Header().Set("Last-Modified", o.modified.Format(http.TimeFormat))
	w.Header().Set("Content-Length", strconv.Itoa(len(o.data)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(o.data)
	}
}

func (s *Service) delete(w http.ResponseWriter, r *http.Request, bucketName, key string) {
	if !s.allowed(w, r, "s3:DeleteObject", bucketARN(bucketName)+"/"+key) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(w, bucketName)
	if b == nil {
		return
	}
	// Deleting a key that is not there succeeds, as on S3.
	delete(b.objects, key)
	w.WriteHeader(http.StatusNoContent)
}

type listResult struct {
	XMLName               xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	KeyCount              int            `xml:"KeyCount"`
	MaxKeys               int            `xml:"MaxKeys"`
	IsTruncated           bool           `xml:"IsTruncated"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	Contents              []listedObject `xml:"Contents"`
}

type listedObject struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int    `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

// list is ListObjectsV2: keys in order, at most max-keys (1000) a page,
// the continuation token being the last key of the page before.
func (s *Service) list(w http.ResponseWriter, r *http.Request, bucketName string) {
	if !s.allowed(w, r, "s3:ListBucket", bucketARN(bucketName)) {
		return
	}
	q := r.URL.Query()
	prefix, token := q.Get("prefix"), q.Get("continuation-token")
	if token == "" {
		token = q.Get("start-after")
	}
	max := 1000
	if m := q.Get("max-keys"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "InvalidArgument", "max-keys must be a number from 0 to 1000.", "")
			return
		}
		max = min(n, 1000)
	}
	s.mu.Lock()
	b := s.bucket(w, bucketName)
	if b == nil {
		s.mu.Unlock()
		return
	}
	var keys []string
	for k := range b.objects {
		if strings.HasPrefix(k, prefix) && k > token {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	res := listResult{Name: bucketName, Prefix: prefix, MaxKeys: max, ContinuationToken: q.Get("continuation-token")}
	for _, k := range keys {
		if len(res.Contents) == max {
			res.IsTruncated = true
			res.NextContinuationToken = res.Contents[len(res.Contents)-1].Key
			break
		}
		o := b.objects[k]
		res.Contents = append(res.Contents, listedObject{Key: k, LastModified: o.modified.Format("2006-01-02T15:04:05.000Z"),
			ETag: o.etag, Size: len(o.data), StorageClass: "STANDARD"})
	}
	s.mu.Unlock()
	res.KeyCount = len(res.Contents)
	writeXML(w, res)
}

type lifecycle struct {
	Rules []struct {
		ID     string `xml:"ID"`
		Status string `xml:"Status"`
		Filter struct {
			Prefix *string `xml:"Prefix"`
		} `xml:"Filter"`
		Prefix     *string `xml:"Prefix"`
		Expiration *struct {
			Days int `xml:"Days"`
		} `xml:"Expiration"`
	} `xml:"Rule"`
}

// putLifecycle takes the expiration rules of a lifecycle configuration
// (by prefix, in days); any other action is refused rather than ignored.
func (s *Service) putLifecycle(w http.ResponseWriter, r *http.Request, bucketName string, body []byte) {
	if !s.allowed(w, r, "s3:PutLifecycleConfiguration", bucketARN(bucketName)) {
		return
	}
	var lc lifecycle
	if err := xml.Unmarshal(body, &lc); err != nil {
		writeError(w, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.", "")
		return
	}
	days := map[string]int{}
	for _, rule := range lc.Rules {
		if rule.Expiration == nil || rule.Expiration.Days < 1 {
			writeError(w, http.StatusNotImplemented, "NotImplemented", "The lab's S3 applies lifecycle rules that expire objects after a number of days (Expiration.Days) only.", "")
			return
		}
		if rule.Status != "Enabled" {
			continue
		}
		prefix := ""
		if rule.Filter.Prefix != nil {
			prefix = *rule.Filter.Prefix
		} else if rule.Prefix != nil {
			prefix = *rule.Prefix
		}
		days[prefix] = rule.Expiration.Days
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(w, bucketName)
	if b == nil {
		return
	}
	b.expireDays = days
	w.WriteHeader(http.StatusOK)
}

type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Key       string   `xml:"Key,omitempty"`
	RequestID string   `xml:"RequestId"`
}

func writeError(w http.ResponseWriter, status int, code, message, key string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	b, _ := xml.Marshal(errorBody{Code: code, Message: message, Key: key, RequestID: w.Header().Get("X-Amzn-Requestid")})
	w.Write([]byte(xml.Header))
	w.Write(b)
}

func writeXML(w http.ResponseWriter, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.", "")
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Write([]byte(xml.Header))
	w.Write(b)
}

package access

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// Recordings says where session recordings go once collected.
type Recordings struct {
	// Store is the recordings bucket, written with the service's role.
	Store *collect.Store
	// Retention is how long a recording and its index are kept after it
	// was collected; DefaultRetention when zero. The bucket's lifecycle
	// rule (collect.Lifecycle) says the same to S3.
	Retention time.Duration
}

// DefaultRetention keeps recordings for a year, what audits commonly ask.
const DefaultRetention = 365 * 24 * time.Hour

// collectTimeout bounds one host's collect program: it reads and
// compresses the recordings, which a long session makes large.
const collectTimeout = 10 * time.Minute

// Collected says what one host handed over.
type Collected struct {
	InstanceID string
	// Stored are the sessions written to the bucket and indexed;
	// Unchanged those already stored whole.
	Stored, Unchanged []ledger.Recording
	// Err says why the host's recordings (or some) were not collected;
	// they stay on the host for the next collection.
	Err error
}

// Records reports whether the service collects session recordings (it has
// a bucket for them).
func (s *Service) Records() bool { return s.recordings != nil && s.recordings.Store != nil }

// CollectRecordings takes the session recordings of users (every user
// with recordings when empty) off each Linux target: one Run Command per
// host whose output the agent writes to the bucket, then each session
// becomes its own object under recordings/<request>/<instance>/<session>,
// indexed in the ledger with its size and SHA-256, which the audit trail
// records too. Sessions already stored whole are deleted from the host
// first. Nothing is lost on failure: a host keeps what was not stored.
//
// by is who collects, as the audit trail names them.
func (s *Service) CollectRecordings(ctx context.Context, by string, targets, users []string) []Collected {
	s = s.as(by)
	out := make([]Collected, len(targets))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, id := range targets {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = s.collectHost(ctx, id, users)
		})
	}
	wg.Wait()
	return out
}

func (s *Service) collectHost(ctx context.Context, instance string, users []string) Collected {
	c := Collected{InstanceID: instance}
	if s.recordings == nil || s.recordings.Store == nil {
		c.Err = errors.New("no recordings bucket is configured")
		return c
	}
	st := s.recordings.Store
	stored, err := s.storedWhole(ctx, instance, users)
	if err != nil {
		c.Err = err
		return c
	}
	script, err := hostscript.Collect(hostscript.Collection{Users: users, Prune: stored})
	if err != nil {
		c.Err = fmt.Errorf("%s: building the collect program: %w", instance, err)
		return c
	}
	job := fleet.Job{Targets: []string{instance}, Document: fleet.ShellScript, Script: script,
		Comment: "Passport collect recordings", ExecutionTimeout: collectTimeout,
		OutputS3Bucket: st.Bucket, OutputS3KeyPrefix: strings.TrimSuffix(collect.TransferPrefix, "/")}
	if s.docs != nil {
		if err := s.throughDocument(&job, Linux); err != nil {
			c.Err = fmt.Errorf("%s: %w", instance, err)
			return c
		}
	}
	ctx, cancel := context.WithTimeout(ctx, collectTimeout+s.timeout)
	defer cancel()
	results, err := s.fleet.Run(ctx, job)
	if err != nil || len(results) != 1 {
		c.Err = fmt.Errorf("%s: the collect program could not be sent: %v; the recordings stay on the host for the next collection", instance, err)
		return c
	}
	r := results[0]
	res, perr := hostscript.ParseResult(r.Stderr)
	if r.Outcome != fleet.Success || perr != nil || !res.OK {
		c.Err = fmt.Errorf("%s: collecting recordings failed: %s; they stay on the host for the next collection", instance, r.Reason)
		return c
	}
	if res.Fields["sessions"] == "0" {
		return c
	}
	key, err := st.TransferOutput(ctx, r.CommandID, instance)
	if err != nil {
		c.Err = fmt.Errorf("%s: the agent wrote no recordings to the bucket (does the instance's role allow s3:PutObject on %s%s*?): %w", instance, st.Bucket+"/", collect.TransferPrefix, err)
		return c
	}
	// Read as it downloads: the transfer is never held whole.
	bundle, err := st.GetObject(ctx, st.Bucket, key)
	if err != nil {
		c.Err = err
		return c
	}
	sessions, grants, err := collect.ReadBundle(bundle)
	bundle.Close()
	if err != nil {
		c.Err = fmt.Errorf("%s: %w; the transfer object s3://%s/%s is kept for inspection", instance, err, st.Bucket, key)
		return c
	}
	s.storeAll(ctx, &c, r.CommandID, sessions, func(user string) collect.HostGrant { return grants[user] })
	return c
}

// storeAll stores each session a host handed over for command into c,
// and deletes the command's transfer object once all are stored; one
// that was not stays for inspection and the next collection.
func (s *Service) storeAll(ctx context.Context, c *Collected, command string, sessions []collect.HostSession, grantOf func(user string) collect.HostGrant) {
	var errs []error
	for _, hs := range sessions {
		rec, changed, err := s.storeSession(ctx, c.InstanceID, hs, grantOf(hs.User))
		switch {
		case err != nil:
			errs = append(errs, err)
		case changed:
			c.Stored = append(c.Stored, rec)
		default:
			c.Unchanged = append(c.Unchanged, rec)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, s.recordings.Store.DeleteTransfer(ctx, command, c.InstanceID))
	}
	c.Err = errors.Join(errs...)
}

// storedWhole lists the sessions on instance that the ledger holds as
// finished: the host may delete them.
func (s *Service) storedWhole(ctx context.Context, instance string, users []string) ([]string, error) {
	if s.ledger == nil {
		return nil, nil
	}
	recs, err := s.ledger.Recordings(ctx, ledger.RecordingFilter{InstanceID: instance})
	if err != nil {
		return nil, err
	}
	var done []string
	for _, r := range recs {
		if !r.End.IsZero() && (len(users) == 0 || slices.Contains(users, r.Username)) && len(done) < hostscript.MaxPrune {
			done = append(done, r.Username+"/"+r.Session)
		}
	}
	return done, nil
}

var reRequestPart = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// storeSession writes one session's object, indexes it and records its
// digest; it reports changed=false for a session already stored whole.
func (s *Service) storeSession(ctx context.Context, instance string, hs collect.HostSession, hg collect.HostGrant) (ledger.Recording, bool, error) {
	if !reRequestPart.MatchString(hg.Request) {
		return ledger.Recording{}, false, fmt.Errorf("%s: session %s/%s has no valid request in its grant file; it stays on the host", instance, hs.User, hs.Name)
	}
	if s.ledger != nil {
		if prev, err := s.ledger.GetRecording(ctx, hg.Request, instance, hs.Name); err == nil && !prev.End.IsZero() {
			return prev, false, nil
		}
	}
	rec := ledger.Recording{RequestID: hg.Request, InstanceID: instance, Session: hs.Name, Username: hs.User, Subject: hg.Requester,
		Serials: hg.Serials, Start: hs.Start, CollectedAt: s.now().UTC(), Expires: s.now().Add(s.retention())}
	if hs.Finished {
		rec.End = hs.End
	}
	if s.ledger != nil {
		// The ledger, not the host, says whose grant it was.
		if g, err := s.ledger.Get(ctx, hg.Request); err == nil {
			rec.Subject = g.Requester
			rec.KeyID = keyID(g.Certificate)
			if hg.User != g.Username {
				return ledger.Recording{}, false, fmt.Errorf("%s: the grant file of %s names request %s, whose user is %s; the session stays on the host", instance, hs.User, hg.Request, g.Username)
			}
		}
	}
	meta := collect.Meta{RequestID: rec.RequestID, InstanceID: instance, Session: rec.Session, Username: rec.Username, Subject: rec.Subject,
		Serials: rec.Serials, KeyID: rec.KeyID, Start: rec.Start, CollectedAt: rec.CollectedAt}
	if !rec.End.IsZero() {
		end := rec.End
		meta.End = &end
	}
	obj, sum, err := collect.Pack(meta, hs.Files)
	if err != nil {
		return ledger.Recording{}, false, fmt.Errorf("%s: %w", instance, err)
	}
	st := s.recordings.Store
	rec.Bucket, rec.Key, rec.Size, rec.SHA256 = st.Bucket, ledger.RecordingKey(rec.RequestID, instance, rec.Session), int64(len(obj)), sum
	if err := st.Put(ctx, rec.Key, obj, collect.ContentType); err != nil {
		return ledger.Recording{}, false, err
	}
	if s.ledger == nil {
		return rec, true, nil
	}
	if err := s.ledger.PutRecording(ctx, rec); err != nil {
		return ledger.Recording{}, false, err
	}
	_, err = s.ledger.Append(ctx, ledger.Event{Actor: s.actorOr("passport"), Action: ledger.ActionRecordingCollected, GrantID: rec.RequestID,
		Target: instance, Subject: rec.Subject, Detail: RecordingDigest(rec)})
	return rec, true, err
}

// RecordingDigest is the detail of a recording-collected event: where the
// object is, its size and SHA-256. collect.Verify reads it back.
func RecordingDigest(r ledger.Recording) string {
	return "s3://" + r.Bucket + "/" + r.Key + " size=" + strconv.FormatInt(r.Size, 10) + " sha256=" + r.SHA256
}

func (s *Service) retention() time.Duration {
	if s.recordings != nil && s.recordings.Retention > 0 {
		return s.recordings.Retention
	}
	return DefaultRetention
}

func (s *Service) actorOr(fallback string) string {
	if s.actor != "" {
		return s.actor
	}
	return fallback
}

// keyID reads the key id of a certificate in authorized_keys form; empty
// when there is none.
func keyID(certificate string) string {
	if certificate == "" {
		return ""
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(certificate))
	if err != nil {
		return ""
	}
	if c, ok := pub.(*ssh.Certificate); ok {
		return c.KeyId
	}
	return ""
}

// ExpireRecordings deletes the recordings whose retention has passed, the
// object and then its index, each with a recording-expired event. The
// bucket's lifecycle rule deletes the objects too; this keeps the index
// and the trail in step with it.
func (s *Service) ExpireRecordings(ctx context.Context, by string) (int, error) {
	if s.ledger == nil || s.recordings == nil || s.recordings.Store == nil {
		return 0, nil
	}
	s = s.as(by)
	due, err := s.ledger.ExpiredRecordings(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, r := range due {
		if err := s.deleteRecording(ctx, r, ledger.ActionRecordingExpired, "retention ended "+r.Expires.UTC().Format(time.RFC3339)); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// DeletesRecordings says recordings are kept where this Service may
// delete them: a bucket and the ledger's index. One reading recordings
// from a directory keeps none it may delete.
func (s *Service) DeletesRecordings() bool {
	return s.ledger != nil && s.recordings != nil && s.recordings.Store != nil
}

// DeleteRecording deletes one recording before its retention ends: the
// object, its index, and a recording-deleted event naming who and why,
// which auditors see as loudly as any revoke. reason is required.
func (s *Service) DeleteRecording(ctx context.Context, by, request, instance, session, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return classed(Invalid, errors.New("deleting a recording before its retention ends needs a reason; it goes into the audit trail"))
	}
	if !s.DeletesRecordings() {
		return classed(NotFound, errors.New("recordings are kept in no bucket and ledger here: delete it where it is kept"))
	}
	r, err := s.ledger.GetRecording(ctx, request, instance, session)
	if err != nil {
		return classed(NotFound, err)
	}
	return s.as(by).deleteRecording(ctx, r, ledger.ActionRecordingDeleted, reason)
}

// deleteRecording deletes r, its event on the trail first: a recording
// must never go without one. A deletion that then fails half-way leaves
// the event and the recording (collect.Verify names it); run again, it
// finishes, with a second event.
func (s *Service) deleteRecording(ctx context.Context, r ledger.Recording, action ledger.Action, detail string) error {
	if _, err := s.ledger.Append(ctx, ledger.Event{Actor: s.actorOr("passport"), Action: action, GrantID: r.RequestID, Target: r.InstanceID,
		Subject: r.Subject, Detail: detail + ": s3://" + r.Bucket + "/" + r.Key + " sha256=" + r.SHA256}); err != nil {
		return err
	}
	// The object before its index entry: an entry left behind is found by
	// Verify and by the next try, an object left without one by nothing.
	if err := s.recordings.Store.Delete(ctx, r.Key); err != nil {
		return fmt.Errorf("%s is on the audit trail, but the object could not be deleted: %w (run it again to finish)", action, err)
	}
	if err := s.ledger.DeleteRecording(ctx, r.RequestID, r.InstanceID, r.Session); err != nil {
		return fmt.Errorf("%s is on the audit trail and the object is gone, but its index entry could not be deleted: %w (run it again to finish)", action, err)
	}
	return nil
}

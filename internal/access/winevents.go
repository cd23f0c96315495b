package access

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// eventSkew is how far before a window's start a Windows collection
// reads: a host's clock a little behind Passport's stamps the first
// logon before it. The user name is the request's own, so nothing older
// can be another person's.
const eventSkew = 10 * time.Minute

// WindowsUser names a Passport user on a Windows target whose Security
// log events to collect: the request it was made for, and since when.
type WindowsUser struct {
	Instance, User, Request string
	Since                   time.Time
}

// CollectWindowsEvents takes each user's logons, logoffs and process
// creations (Security events 4624, 4634, 4688) off its Windows target,
// the same way as Linux recordings: one Run Command whose output the
// agent writes to the bucket, then one object per logon under
// recordings/<request>/<instance>/<session>, indexed with its size and
// SHA-256 and its digest in the audit trail. It is an event log, not a
// screen recording. The host keeps its Security log: a collection that
// fails loses nothing that Windows has not overwritten.
func (s *Service) CollectWindowsEvents(ctx context.Context, by string, users []WindowsUser) []Collected {
	s = s.as(by)
	out := make([]Collected, len(users))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, u := range users {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = s.collectEvents(ctx, u)
		})
	}
	wg.Wait()
	return out
}

func (s *Service) collectEvents(ctx context.Context, u WindowsUser) Collected {
	c := Collected{InstanceID: u.Instance}
	if !s.Records() {
		c.Err = errors.New("no recordings bucket is configured")
		return c
	}
	st := s.recordings.Store
	script, err := hostscript.CollectWindows(u.User, u.Since)
	if err != nil {
		c.Err = fmt.Errorf("%s: building the Windows collect program: %w", u.Instance, err)
		return c
	}
	job := fleet.Job{Targets: []string{u.Instance}, Document: fleet.PowerShellScript, Script: script,
		Comment: "Passport collect Windows events", ExecutionTimeout: collectTimeout,
		OutputS3Bucket: st.Bucket, OutputS3KeyPrefix: strings.TrimSuffix(collect.TransferPrefix, "/")}
	if s.docs != nil {
		if err := s.throughDocument(&job, Windows); err != nil {
			c.Err = fmt.Errorf("%s: %w", u.Instance, err)
			return c
		}
	}
	ctx, cancel := context.WithTimeout(ctx, collectTimeout+s.timeout)
	defer cancel()
	results, err := s.fleet.Run(ctx, job)
	if err != nil || len(results) != 1 {
		c.Err = fmt.Errorf("%s: the Windows collect program could not be sent: %v; the events stay in the host's Security log for the next collection", u.Instance, err)
		return c
	}
	r := results[0]
	res, perr := hostscript.ParseResult(r.Stderr)
	if r.Outcome != fleet.Success || perr != nil || !res.OK {
		c.Err = fmt.Errorf("%s: collecting %s's Windows events failed: %s; they stay in the host's Security log for the next collection", u.Instance, u.User, r.Reason)
		return c
	}
	if res.Fields["events"] == "0" {
		return c
	}
	key, err := st.TransferOutput(ctx, r.CommandID, u.Instance)
	if err != nil {
		c.Err = fmt.Errorf("%s: the agent wrote no events to the bucket (does the instance's role allow s3:PutObject on %s%s*?): %w", u.Instance, st.Bucket+"/", collect.TransferPrefix, err)
		return c
	}
	out, err := st.Get(ctx, key)
	if err != nil {
		c.Err = err
		return c
	}
	sessions, err := collect.ReadEvents(bytes.NewReader(out), u.User)
	if err != nil {
		c.Err = fmt.Errorf("%s: %w; the transfer object s3://%s/%s is kept for inspection", u.Instance, err, st.Bucket, key)
		return c
	}
	grant := collect.HostGrant{User: u.User, Request: u.Request}
	s.storeAll(ctx, &c, r.CommandID, sessions, func(string) collect.HostGrant { return grant })
	return c
}

// ActiveWindowsUsers lists the Passport users of active requests on
// Windows targets, for the reconciler's periodic collection: each since
// its request was issued.
func (s *Service) ActiveWindowsUsers(ctx context.Context) ([]WindowsUser, error) {
	if s.ledger == nil {
		return nil, nil
	}
	grants, err := s.ledger.List(ctx, ledger.Active)
	if err != nil {
		return nil, err
	}
	var out []WindowsUser
	for _, g := range grants {
		for _, t := range g.Targets {
			if isWindows(t.Platform) && t.State == ledger.Active {
				out = append(out, WindowsUser{Instance: t.InstanceID, User: g.Username, Request: g.ID, Since: g.IssuedAt.Add(-eventSkew)})
			}
		}
	}
	return out, nil
}

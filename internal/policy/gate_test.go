package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// tagTable answers tag lookups from a map, or fails, and counts calls.
type tagTable struct {
	tags  map[string]map[string]string
	err   error
	calls int
}

func (s *tagTable) Tags(_ context.Context, ids []string) (map[string]map[string]string, error) {
	s.calls++
	return s.tags, s.err
}

func TestGate(t *testing.T) {
	p := examplePolicy(t)
	req := func() Request {
		return Request{Subject: "alice", Duration: time.Hour, Reason: "INC-3 check", Targets: []Instance{{ID: staging, Platform: "Linux"}}}
	}
	t.Run("fills tags and groups", func(t *testing.T) {
		src := &tagTable{tags: map[string]map[string]string{staging: {"Env": "staging"}}}
		g := &Gate{Policy: p, Tags: src, Groups: []string{"ops"}}
		if err := g.Authorize(context.Background(), req()); err != nil {
			t.Fatalf("ops on a staging host: %v", err)
		}
		if src.calls != 1 {
			t.Errorf("%d tag lookups for one request", src.calls)
		}
	})
	t.Run("request groups win over the session's", func(t *testing.T) {
		g := &Gate{Policy: p, Tags: &tagTable{tags: map[string]map[string]string{staging: {"Env": "staging"}}}, Groups: []string{"ops"}}
		r := req()
		r.Groups = []string{"oncall"}
		if err := g.Authorize(context.Background(), r); err == nil {
			t.Fatal("oncall allowed on staging")
		}
	})
	t.Run("tags that cannot be read refuse", func(t *testing.T) {
		g := &Gate{Policy: p, Tags: &tagTable{err: errors.New("AccessDenied: ec2:DescribeTags")}, Groups: []string{"admins"}}
		err := g.Authorize(context.Background(), req())
		if err == nil || !strings.Contains(err.Error(), "ec2:DescribeTags") {
			t.Fatalf("a failed tag lookup: %v", err)
		}
	})
	t.Run("no policy denies without asking for tags", func(t *testing.T) {
		empty, err := Parse("ssm:///passport/policy", nil)
		if err != nil {
			t.Fatal(err)
		}
		src := &tagTable{err: errors.New("must not be called")}
		err = (&Gate{Policy: empty, Tags: src}).Authorize(context.Background(), req())
		var denied *DeniedError
		if !errors.As(err, &denied) || !strings.Contains(err.Error(), "ssm:///passport/policy holds no policies") || src.calls != 0 {
			t.Fatalf("no policy: %v (%d tag lookups)", err, src.calls)
		}
	})
	t.Run("no gate policy", func(t *testing.T) {
		if err := (&Gate{}).Authorize(context.Background(), req()); err == nil {
			t.Fatal("a Gate without policy allowed")
		}
	})
}

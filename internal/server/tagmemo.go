package server

import (
	"context"
	"sync"

	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// tagMemo remembers instances' tags for the length of one call that
// checks many records against policy (a list of requests, the audit
// trail): their targets repeat, and each lookup is an EC2 call. A page of
// the portal over a ledger of 1,000 grants made one call a grant without
// it (BenchmarkPortalPages in internal/portal).
type tagMemo struct {
	src  policy.TagSource
	mu   sync.Mutex
	tags map[string]map[string]string // nil for an instance without tags
}

// Tags implements policy.TagSource, asking src only about instances it
// has not seen in this call.
func (m *tagMemo) Tags(ctx context.Context, ids []string) (map[string]map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var unseen []string
	for _, id := range ids {
		if _, seen := m.tags[id]; !seen {
			unseen = append(unseen, id)
		}
	}
	if len(unseen) > 0 {
		found, err := m.src.Tags(ctx, unseen)
		if err != nil {
			return nil, err
		}
		for _, id := range unseen {
			m.tags[id] = found[id]
		}
	}
	out := make(map[string]map[string]string, len(ids))
	for _, id := range ids {
		if t := m.tags[id]; t != nil {
			out[id] = t
		}
	}
	return out, nil
}

type tagMemoKey struct{}

// withTagMemo returns ctx carrying a memo of src's answers, which
// permits uses for the rest of the call.
func withTagMemo(ctx context.Context, src policy.TagSource) context.Context {
	if src == nil {
		return ctx
	}
	return context.WithValue(ctx, tagMemoKey{}, &tagMemo{src: src, tags: map[string]map[string]string{}})
}

// tagsIn is the call's memo when it has one, else src.
func tagsIn(ctx context.Context, src policy.TagSource) policy.TagSource {
	if m, ok := ctx.Value(tagMemoKey{}).(*tagMemo); ok {
		return m
	}
	return src
}

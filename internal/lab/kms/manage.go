package kms

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

// keyIDInput is the input of operations that take only a key.
type keyIDInput struct{ KeyId string }

// changeKey resolves a key for a state change and applies change to it
// under the lock.
func (s *Service) changeKey(input json.RawMessage, change func(*key) error) (*key, error) {
	var in keyIDInput
	if err := awsjson.Decode(input, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.lookup(in.KeyId)
	if err != nil {
		return nil, err
	}
	return k, change(k)
}

func pendingDeletion(k *key) error {
	return awsjson.Errorf("KMSInvalidStateException", "%s is pending deletion.", k.arn)
}

// cancelKeyDeletion takes a key out of its deletion window. As on AWS, the
// key comes back Disabled: EnableKey makes it sign again.
func (s *Service) cancelKeyDeletion(_ context.Context, input json.RawMessage) (any, error) {
	k, err := s.changeKey(input, func(k *key) error {
		if k.deletion.IsZero() {
			return awsjson.Errorf("KMSInvalidStateException", "%s is not pending deletion.", k.arn)
		}
		k.deletion, k.disabled = time.Time{}, true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyId": k.arn}, nil
}

func (s *Service) enableKey(_ context.Context, input json.RawMessage) (any, error) {
	_, err := s.changeKey(input, func(k *key) error {
		if !k.deletion.IsZero() {
			return pendingDeletion(k)
		}
		k.disabled = false
		return nil
	})
	return nil, err
}

func (s *Service) disableKey(_ context.Context, input json.RawMessage) (any, error) {
	_, err := s.changeKey(input, func(k *key) error {
		if !k.deletion.IsZero() {
			return pendingDeletion(k)
		}
		k.disabled = true
		return nil
	})
	return nil, err
}

type listInput struct {
	KeyId  string
	Limit  *int
	Marker *string
}

// page checks Limit (1 to max, def when absent) and Marker, and returns a
// page of items sorted by key.
func page[T any](s *Service, op string, in listInput, max, def int, items []T, key func(T) string) (map[string]any, []T, error) {
	limit := def
	if in.Limit != nil {
		limit = *in.Limit
		if limit < 1 || limit > max {
			return nil, nil, validation("Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and %d", limit, max)
		}
	}
	marker := ""
	if in.Marker != nil {
		marker = *in.Marker
		if marker == "" {
			return nil, nil, validation("Value '' at 'marker' failed to satisfy constraint: Member must have length greater than or equal to 1")
		}
	}
	pg, next, err := awsjson.Page(s.pages, op, marker, limit, items, key)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]any{"Truncated": next != ""}
	if next != "" {
		out["NextMarker"] = next
	}
	return out, pg, nil
}

// listKeys lists every key of the account, pending deletion or not, in
// key id order, 100 to a page unless Limit says otherwise (at most 1000).
func (s *Service) listKeys(_ context.Context, input json.RawMessage) (any, error) {
	var in listInput
	if err := awsjson.Decode(input, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.forgetDeleted()
	keys := make([]*key, 0, len(s.keys))
	for _, k := range s.keys {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	slices.SortFunc(keys, func(a, b *key) int { return strings.Compare(a.id, b.id) })
	out, pg, err := page(s, "ListKeys", in, 1000, 100, keys, func(k *key) string { return k.id })
	if err != nil {
		return nil, err
	}
	entries := make([]map[string]string, len(pg))
	for i, k := range pg {
		entries[i] = map[string]string{"KeyId": k.id, "KeyArn": k.arn}
	}
	out["Keys"] = entries
	return out, nil
}

type aliasEntry struct {
	AliasName       string
	AliasArn        string
	TargetKeyId     string
	CreationDate    epoch
	LastUpdatedDate epoch
}

// listAliases lists the account's aliases in name order, or only those of
// one key (its id or ARN), 50 to a page unless Limit says otherwise (at
// most 100). The lab has no AWS managed keys, so no alias/aws/ names.
func (s *Service) listAliases(_ context.Context, input json.RawMessage) (any, error) {
	var in listInput
	if err := awsjson.Decode(input, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.forgetDeleted()
	only := ""
	if in.KeyId != "" {
		if strings.HasPrefix(in.KeyId, "alias/") || strings.Contains(in.KeyId, ":alias/") {
			s.mu.Unlock()
			return nil, awsjson.Errorf("InvalidArnException", "KeyId %s names an alias; ListAliases takes a key id or key ARN.", clip(in.KeyId))
		}
		k, err := s.lookup(in.KeyId)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		only = k.id
	}
	var entries []aliasEntry
	for name, a := range s.aliases {
		if only == "" || a.target == only {
			entries = append(entries, aliasEntry{
				AliasName: name, AliasArn: "arn:aws:kms:" + s.region + ":" + s.account + ":" + name,
				TargetKeyId: a.target, CreationDate: epoch(a.created), LastUpdatedDate: epoch(a.created),
			})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(entries, func(a, b aliasEntry) int { return strings.Compare(a.AliasName, b.AliasName) })
	out, pg, err := page(s, "ListAliases:"+only, in, 100, 50, entries, func(e aliasEntry) string { return e.AliasName })
	if err != nil {
		return nil, err
	}
	if pg == nil {
		pg = []aliasEntry{}
	}
	out["Aliases"] = pg
	return out, nil
}

// forgetDeleted deletes every key whose deletion date has passed, as
// lookup does for one; s.mu is held.
func (s *Service) forgetDeleted() {
	for id := range s.keys {
		s.lookup(id)
	}
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

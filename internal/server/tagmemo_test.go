package server

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"testing"
)

// countingTags answers from a fixed table and remembers what it was asked.
type countingTags struct {
	table map[string]map[string]string
	asked [][]string
}

func (c *countingTags) Tags(_ context.Context, ids []string) (map[string]map[string]string, error) {
	c.asked = append(c.asked, slices.Clone(ids))
	out := map[string]map[string]string{}
	for _, id := range ids {
		if t, ok := c.table[id]; ok {
			out[id] = t
		}
	}
	return out, nil
}

// Within one call each instance's tags are asked for once, an instance
// without tags included, and every answer is the source's.
func TestTagMemoAsksOncePerInstance(t *testing.T) {
	src := &countingTags{table: map[string]map[string]string{"i-1": {"Env": "staging"}, "i-2": {"Env": "production"}}}
	ctx := withTagMemo(context.Background(), src)
	tags := tagsIn(ctx, nil)
	for _, ids := range [][]string{{"i-1", "i-3"}, {"i-1", "i-2", "i-3"}, {"i-2"}, {"i-3"}} {
		got, err := tags.Tags(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := src.Tags(ctx, ids)
		src.asked = src.asked[:len(src.asked)-1]
		if !maps.EqualFunc(got, want, func(a, b map[string]string) bool { return maps.Equal(a, b) }) {
			t.Errorf("tags of %v: %v; want %v", ids, got, want)
		}
	}
	if want := [][]string{{"i-1", "i-3"}, {"i-2"}}; !reflect.DeepEqual(src.asked, want) {
		t.Errorf("the source was asked %v; want %v", src.asked, want)
	}
	// Another call starts afresh; without a memo the source answers.
	if tagsIn(context.Background(), src) != src || tagsIn(withTagMemo(context.Background(), src), src) == tags {
		t.Error("a memo outlived its call")
	}
}

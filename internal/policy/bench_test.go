package policy

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAuthorize decides a 200-target request (the most one request
// may hold) under the example policy, and reports its cost as a ratio to
// the same request under a single unconditional permit, timed in the same
// loop: what eight real policies with tag, group and context conditions
// cost over Cedar's own floor.
func BenchmarkAuthorize(b *testing.B) {
	example := examplePolicy(b)
	floor, err := Parse("floor.cedar", []byte(`permit (principal, action, resource);`))
	if err != nil {
		b.Fatal(err)
	}
	req := Request{Subject: "alice", Groups: []string{"ops"}, Duration: time.Hour, Reason: "INC-1 deploy"}
	for i := range 200 {
		req.Targets = append(req.Targets, Instance{ID: fmt.Sprintf("i-%017x", i), Platform: "Linux", Tags: map[string]string{"Env": "staging", "Name": fmt.Sprint("web-", i), "Team": "platform"}})
	}
	var base, subject time.Duration
	for b.Loop() {
		start := time.Now()
		if !floor.Authorize(req).Allowed() {
			b.Fatal("floor denied")
		}
		mid := time.Now()
		if !example.Authorize(req).Allowed() {
			b.Fatal("200 staging hosts denied to ops")
		}
		base += mid.Sub(start)
		subject += time.Since(mid)
	}
	b.ReportMetric(float64(subject)/float64(base), "x-permit-all")
	b.ReportMetric(float64(subject)/float64(b.N)/float64(len(req.Targets)), "ns/target")
}

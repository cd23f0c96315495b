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

// BenchmarkApprovalDecision decides a 200-target request that needs
// approval under the approvals example (the decision, its count and who
// may approve every target), and reports its cost as a ratio to today's
// Authorize: the same 200 targets granted at once under the example
// policy, timed in the same loop. The target is under 2.
func BenchmarkApprovalDecision(b *testing.B) {
	example, approvals := examplePolicy(b), approvalsPolicy(b)
	now := Request{Subject: "alice", Groups: []string{"ops"}, Duration: time.Hour, Reason: "INC-1 deploy"}
	later := now
	later.Duration = 3 * time.Hour
	for i := range 200 {
		h := Instance{ID: fmt.Sprintf("i-%017x", i), Platform: "Linux", Tags: map[string]string{"Env": "staging", "Name": fmt.Sprint("web-", i), "Team": "platform"}}
		now.Targets = append(now.Targets, h)
		later.Targets = append(later.Targets, h)
	}
	var base, subject time.Duration
	for b.Loop() {
		start := time.Now()
		if !example.Authorize(now).Allowed() {
			b.Fatal("200 staging hosts denied to ops")
		}
		mid := time.Now()
		if d := approvals.Authorize(later); d.Outcome() != NeedsApproval || len(d.Approvers) != 2 {
			b.Fatalf("3h on staging: %s, approvers %v", d.Outcome(), d.Approvers)
		}
		base += mid.Sub(start)
		subject += time.Since(mid)
	}
	b.ReportMetric(float64(subject)/float64(base), "x-authorize")
}

package service

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtPassport.dir != "" {
		os.RemoveAll(builtPassport.dir)
	}
	if code == 0 && wholeRun() {
		if missing := apiCoverage(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: the tests of internal/service never made the service answer these, which docs/service-api.yaml promises; add a call that does (or, where one cannot, a reason to unexercised in main_test.go):\n\t%s\n", strings.Join(missing, "\n\t"))
			code = 1
		}
	}
	os.Exit(code)
}

// wholeRun says whether every test of the package ran, on sandbox hosts:
// only then must the answers cover the document.
func wholeRun() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short() && sandbox.Available() == nil
}

// sharedStatuses are answered by the same code on every route that has
// them (the edge's size and rate limits, a dependency out of reach): once
// on any route proves them.
var sharedStatuses = []int{413, 429, 503}

// unexercised are documented answers no test here can provoke, and why.
var unexercised = map[string]string{
	"* 500":                          "internal: only a bug answers it (the edge turns a panic into it); the fuzz targets check no bad input does",
	"GET /v1/targets 404":            "passport serve always lists instances; the server answers 404 only when embedded without Config.Instances",
	"POST /v1/requests 409":          "two creates with one Idempotency-Key racing inside the first one's ledger write; no test can order that without a hook in the ledger",
	"POST /v1/requests/{id}/end 409": "another replica moving the request between this end's read and its write; the same race",
}

// apiCoverage lists the documented routes and statuses no call answered.
func apiCoverage() []string {
	doc, err := loadAPIDocument()
	if err != nil {
		return []string{err.Error()}
	}
	doc.mu.Lock()
	defer doc.mu.Unlock()
	var missing []string
	shared := map[int]bool{}
	for _, route := range doc.operations() {
		for _, status := range doc.documentedStatuses(route) {
			key := fmt.Sprintf("%s %d", route, status)
			switch {
			case doc.seen[route][status]:
				shared[status] = true
			case unexercised[key] != "", unexercised[fmt.Sprintf("* %d", status)] != "":
			case slices.Contains(sharedStatuses, status):
			default:
				missing = append(missing, key)
			}
		}
	}
	for _, s := range sharedStatuses {
		if !shared[s] {
			missing = append(missing, fmt.Sprintf("any route %d", s))
		}
	}
	if !doc.seen[""][404] || !doc.seen[""][405] {
		missing = append(missing, "a call that names no route (404) and one with the wrong method (405)")
	}
	return missing
}

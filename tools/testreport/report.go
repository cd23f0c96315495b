package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string // build-output and build-fail
	FailedBuild string
}

// key names one test of one package.
type key struct{ pkg, test string }

// skip is a test that skipped, and what it said.
type skip struct {
	key
	reason  string
	allowed *allowance
}

// report follows a test run: it keeps each test's output until the test
// ends, shows all of it when the test fails, and shows every skip with its
// reason. It stays quiet about tests that pass.
type report struct {
	out   io.Writer
	allow allowList

	output  map[key][]string // tests still running, and packages
	started map[string]bool  // packages with no final event yet
	counts  map[string]*counts

	failed     []key
	failedPkgs []string
	skips      []skip
	total      counts // set by summary
}

type counts struct{ pass, skip, fail int }

func (c *counts) add(o counts) {
	c.pass += o.pass
	c.skip += o.skip
	c.fail += o.fail
}

func newReport(out io.Writer, allow allowList) *report {
	return &report{
		out:     out,
		allow:   allow,
		output:  map[key][]string{},
		started: map[string]bool{},
		counts:  map[string]*counts{},
	}
}

// read consumes a stream of events; lines that are not events (go test's
// own complaints, a test binary's stray writes) are shown as they are.
func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(r.out, "%s\n", line)
			continue
		}
		r.handle(e)
	}
	return sc.Err()
}

func (r *report) handle(e event) {
	switch e.Action {
	case "build-output":
		fmt.Fprint(r.out, e.Output)
		return
	case "build-fail":
		r.failedPkgs = append(r.failedPkgs, e.ImportPath+" (build failed)")
		return
	}
	k := key{e.Package, e.Test}
	if r.counts[e.Package] == nil {
		r.counts[e.Package] = &counts{}
	}
	c := r.counts[e.Package]
	if e.Test == "" {
		r.handlePackage(e, c)
		return
	}
	switch e.Action {
	case "output":
		r.output[k] = append(r.output[k], e.Output)
	case "pass", "bench":
		c.pass++
		delete(r.output, k)
	case "fail":
		c.fail++
		r.failed = append(r.failed, k)
		fmt.Fprintf(r.out, "=== FAIL %s %s (%.2fs)\n", short(e.Package), e.Test, e.Elapsed)
		for _, o := range r.output[k] {
			fmt.Fprint(r.out, o)
		}
		delete(r.output, k)
	case "skip":
		c.skip++
		s := skip{key: k, reason: skipReason(r.output[k]), allowed: r.allow.allows(e.Package, e.Test)}
		r.skips = append(r.skips, s)
		verdict := "NOT on the allow-list"
		if s.allowed != nil {
			verdict = "allowed"
		}
		fmt.Fprintf(r.out, "--- SKIP %s %s (%s): %s\n", short(e.Package), e.Test, verdict, s.reason)
		delete(r.output, k)
	}
}

func (r *report) handlePackage(e event, c *counts) {
	k := key{e.Package, ""}
	switch e.Action {
	case "start":
		r.started[e.Package] = true
	case "output":
		r.output[k] = append(r.output[k], e.Output)
	case "pass", "skip":
		delete(r.started, e.Package)
		delete(r.output, k)
		r.benchmarksDone(e.Package, c, true)
		if e.Action == "skip" && c.pass+c.fail+c.skip == 0 {
			return // no test files
		}
		fmt.Fprintf(r.out, "ok   %s %.1fs (%s)\n", short(e.Package), e.Elapsed, c)
	case "fail":
		delete(r.started, e.Package)
		r.failedPkgs = append(r.failedPkgs, e.Package)
		r.benchmarksDone(e.Package, c, false)
		// A timeout or a crash ends tests that never report: their
		// output is the only trace of where the package stopped.
		for _, tk := range r.unfinished(e.Package) {
			r.failed = append(r.failed, key{tk.pkg, tk.test + " (did not finish)"})
			fmt.Fprintf(r.out, "=== UNFINISHED %s %s\n", short(e.Package), tk.test)
			for _, o := range r.output[tk] {
				fmt.Fprint(r.out, o)
			}
			delete(r.output, tk)
		}
		for _, o := range r.output[k] {
			if !isVerdict(o) {
				fmt.Fprint(r.out, o)
			}
		}
		delete(r.output, k)
		fmt.Fprintf(r.out, "FAIL %s %.1fs (%s)\n", short(e.Package), e.Elapsed, c)
	}
}

// benchmarksDone counts pkg's benchmarks that ran: go test reports no end
// for a benchmark that passes, only its result line (or, in a package that
// passed, nothing at all for a benchmark with sub-benchmarks).
func (r *report) benchmarksDone(pkg string, c *counts, pkgPassed bool) {
	for k, lines := range r.output {
		if k.pkg != pkg || !strings.HasPrefix(k.test, "Benchmark") {
			continue
		}
		if pkgPassed || slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, " ns/op") }) {
			c.pass++
			delete(r.output, k)
		}
	}
}

// unfinished returns pkg's tests that have not ended, in name order.
func (r *report) unfinished(pkg string) []key {
	var keys []key
	for k := range r.output {
		if k.pkg == pkg && k.test != "" {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(a.test, b.test) })
	return keys
}

// summary writes what ran, every skip again, and what failed; it returns
// whether the run is good: nothing failed, nothing was cut short, and
// nothing skipped that the allow-list does not name.
func (r *report) summary(took time.Duration) bool {
	var total counts
	for _, c := range r.counts {
		total.add(*c)
	}
	for pkg := range r.started {
		r.failedPkgs = append(r.failedPkgs, pkg+" (no result: the run was cut short)")
	}
	good := len(r.failedPkgs) == 0 && total.fail == 0
	r.total = total
	fmt.Fprintf(r.out, "\n%s in %s\n", &total, took.Round(time.Second))
	if len(r.skips) > 0 {
		fmt.Fprintln(r.out, "skipped:")
		for _, s := range r.skips {
			why := "NOT ALLOWED: add it to the allow-list with a reason, or make it run"
			if s.allowed != nil {
				why = fmt.Sprintf("allowed (line %d: %s)", s.allowed.line, s.allowed.reason)
			} else {
				good = false
			}
			fmt.Fprintf(r.out, "  %s %s: %s\n      %s\n", short(s.pkg), s.test, s.reason, why)
		}
	}
	if len(r.failed) > 0 {
		good = false
		fmt.Fprintln(r.out, "failed:")
		for _, k := range r.failed {
			fmt.Fprintf(r.out, "  %s %s\n", short(k.pkg), k.test)
		}
	}
	for _, p := range r.failedPkgs {
		fmt.Fprintf(r.out, "FAIL %s\n", short(p))
	}
	return good
}

func (c *counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.pass, c.fail, c.skip)
}

// skipReason is what a skipped test logged, without go test's framing.
func skipReason(lines []string) string {
	var why []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		why = append(why, t)
	}
	if len(why) == 0 {
		return "(no reason given)"
	}
	return strings.Join(why, " ")
}

// isVerdict reports whether a package's line of output is go test's own
// verdict, which the report gives in its own words.
func isVerdict(line string) bool {
	l := strings.TrimSpace(line)
	return l == "PASS" || l == "FAIL" || strings.HasPrefix(l, "ok  \t") || strings.HasPrefix(l, "FAIL\t")
}

// short drops the module path from a package's import path.
func short(pkg string) string {
	if rest, ok := strings.CutPrefix(pkg, modulePath+"/"); ok {
		return rest
	}
	if pkg == modulePath {
		return "."
	}
	return pkg
}

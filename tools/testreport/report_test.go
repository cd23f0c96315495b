package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleRun runs the sample package's tests (testdata/sample: one test of
// each outcome) with go test -json and feeds them to a report.
func sampleRun(t *testing.T, allow allowList, env ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command("go", "test", "-json", "-count=1", "-timeout", "20s", ".")
	cmd.Dir = "testdata/sample"
	cmd.Env = append(os.Environ(), env...)
	events, _ := cmd.Output() // the sample fails on purpose
	if len(events) == 0 {
		t.Fatal("go test -json wrote no events for testdata/sample")
	}
	var out bytes.Buffer
	r := newReport(&out, allow)
	if err := r.read(bytes.NewReader(events)); err != nil {
		t.Fatal(err)
	}
	good := r.summary(time.Second)
	return out.String(), good
}

func mustParse(t *testing.T, list string) allowList {
	t.Helper()
	l, err := parseAllowList(strings.NewReader(list), "allow")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestReportShowsFailuresInFullAndEverySkipWithItsReason(t *testing.T) {
	out, good := sampleRun(t, nil)
	if good {
		t.Error("a run with a failing test and unexpected skips was judged good")
	}
	for _, want := range []string{
		"=== FAIL example.com/sample TestFails",
		"sample_test.go:13: the first line of the failure",
		"sample_test.go:14: the second line of the failure",
		"sample_test.go:15: the verdict",
		"--- SKIP example.com/sample TestSkipsUnexpectedly (NOT on the allow-list): sample_test.go:20: overlay is missing",
		"--- SKIP example.com/sample TestParent/skips (NOT on the allow-list): sample_test.go:24: a subtest's reason",
		"3 passed, 1 failed, 4 skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "a pass says nothing") {
		t.Errorf("the report shows a passing test's log:\n%s", out)
	}
}

func TestReportFailsOnlyOnSkipsTheListDoesNotName(t *testing.T) {
	allow := mustParse(t, `
# The sample's machine is not this one.
sample TestSkipsAllowed
sample TestParent/*   # subtests say why
sample TestHangs # only hangs when asked
`)
	out, _ := sampleRun(t, allow)
	if !strings.Contains(out, "TestSkipsAllowed (allowed)") || !strings.Contains(out, "TestParent/skips (allowed)") {
		t.Errorf("allowed skips are not shown as allowed:\n%s", out)
	}
	if !strings.Contains(out, "allowed (line 3: The sample's machine is not this one.)") {
		t.Errorf("the summary does not give the allow-list's reason:\n%s", out)
	}
	if !strings.Contains(out, "TestSkipsUnexpectedly: sample_test.go:20: overlay is missing\n      NOT ALLOWED") {
		t.Errorf("the unexpected skip is not called out:\n%s", out)
	}

	// The control: with every skip allowed, the only failure left is
	// the failing test's.
	allow = append(allow, mustParse(t, "sample TestSkipsUnexpectedly # the control")...)
	r := newReport(&bytes.Buffer{}, allow)
	r.handle(event{Action: "skip", Package: "example.com/sample", Test: "TestSkipsUnexpectedly"})
	r.handle(event{Action: "pass", Package: "example.com/sample"})
	if !r.summary(0) {
		t.Error("a run whose only skip is allowed was judged bad")
	}
}

func TestReportNamesTheTestAHangCutShort(t *testing.T) {
	out, good := sampleRun(t, nil, "SAMPLE_HANG=1")
	if good {
		t.Error("a run that timed out was judged good")
	}
	for _, want := range []string{
		"=== UNFINISHED example.com/sample TestHangs",
		"sample_test.go:31: before the hang",
		"panic: test timed out",
		"TestHangs (did not finish)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
}

func TestReportFailsARunCutShortBeforeAPackageEnds(t *testing.T) {
	r := newReport(&bytes.Buffer{}, nil)
	r.handle(event{Action: "start", Package: "example.com/sample"})
	r.handle(event{Action: "run", Package: "example.com/sample", Test: "TestPasses"})
	r.handle(event{Action: "pass", Package: "example.com/sample", Test: "TestPasses"})
	if r.summary(0) {
		t.Error("a package that never reported its result was judged good")
	}
}

func TestAllowListRefusesEntriesWithoutAReason(t *testing.T) {
	for _, bad := range []string{
		"internal/x TestY",
		"# a reason for something else\n\ninternal/x TestY",
		"internal/x # only a package",
		"internal/x TestY[ # a bad pattern",
	} {
		if _, err := parseAllowList(strings.NewReader(bad), "allow"); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
	l := mustParse(t, "# why\ninternal/x TestY\ninternal/z TestW/* # why not")
	if l.allows("github.com/m/internal/x", "TestY") == nil || l.allows("github.com/m/internal/x", "TestY/sub") != nil {
		t.Error("TestY matches subtests, or not itself")
	}
	if l.allows("github.com/m/internal/z", "TestW/sub") == nil || l.allows("github.com/m/internal/zz", "TestW/sub") != nil {
		t.Error("the package is not matched by its path's last elements")
	}
}

func TestTallyAddsUpRuns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tally")
	for _, c := range []counts{{pass: 3, fail: 1, skip: 2}, {pass: 10}} {
		r := newReport(&bytes.Buffer{}, nil)
		r.counts["p"] = &c
		r.summary(0)
		if err := addTally(file, r.total); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readTally(file)
	if err != nil || got != (counts{pass: 13, fail: 1, skip: 2}) {
		t.Errorf("tally %+v, %v; want 13 passed, 1 failed, 2 skipped", got, err)
	}
}

// Package sample is a test run for testreport's tests: one test of each
// outcome. It fails on purpose; nothing but testreport's tests runs it.
package sample

import (
	"os"
	"testing"
)

func TestPasses(t *testing.T) { t.Log("a pass says nothing") }

func TestFails(t *testing.T) {
	t.Log("the first line of the failure")
	t.Log("the second line of the failure")
	t.Error("the verdict")
}

func TestSkipsAllowed(t *testing.T) { t.Skip("needs a machine this is not") }

func TestSkipsUnexpectedly(t *testing.T) { t.Skip("overlay is missing") }

func TestParent(t *testing.T) {
	t.Run("runs", func(t *testing.T) {})
	t.Run("skips", func(t *testing.T) { t.Skip("a subtest's reason") })
}

func TestHangs(t *testing.T) {
	if os.Getenv("SAMPLE_HANG") == "" {
		t.Skip("set SAMPLE_HANG to hang")
	}
	t.Log("before the hang")
	<-make(chan struct{})
}

package hostscript

import (
	"encoding/base64"
	"testing"
	"time"
)

// BenchmarkProvision measures building a provision script (validation, key
// parsing, encoding, assembly) and reports it as a ratio to the floor of
// base64-encoding the same data block, both timed in the same loop.
func BenchmarkProvision(b *testing.B) {
	const batch = 16
	g := fixedGrant()
	data := []byte(decodeData(b, generated(b)["provision"]))
	var floor, subject time.Duration
	for b.Loop() {
		start := time.Now()
		for range batch {
			_ = base64.StdEncoding.EncodeToString(data)
		}
		mid := time.Now()
		for range batch {
			if _, err := Provision(g); err != nil {
				b.Fatal(err)
			}
		}
		floor += mid.Sub(start)
		subject += time.Since(mid)
	}
	b.ReportMetric(float64(subject)/float64(floor), "x-base64-floor")
}

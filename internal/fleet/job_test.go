package fleet

import (
	"strings"
	"testing"
	"time"
)

func TestJobValidation(t *testing.T) {
	ok := Job{Targets: []string{"i-0123456789abcdef0", "i-01234567", "mi-0123456789abcdef0"}, Script: "true"}
	tests := []struct {
		name  string
		edit  func(*Job)
		field string // the error must name it; empty means valid
	}{
		{"valid", func(*Job) {}, ""},
		{"no targets", func(j *Job) { j.Targets = nil }, "Targets"},
		{"upper-case hex", func(j *Job) { j.Targets = []string{"i-0123456789ABCDEF0"} }, "Targets[0]"},
		{"wrong length", func(j *Job) { j.Targets = []string{"i-0123456789abcdef"} }, "Targets[0]"},
		{"short mi", func(j *Job) { j.Targets = []string{"mi-01234567"} }, "Targets[0]"},
		{"name not id", func(j *Job) { j.Targets = []string{"web-1"} }, "Targets[0]"},
		{"trailing newline", func(j *Job) { j.Targets = []string{"i-01234567\n"} }, "Targets[0]"},
		{"duplicate", func(j *Job) { j.Targets = []string{"i-01234567", "i-89abcdef", "i-01234567"} }, "Targets[2]"},
		{"empty script", func(j *Job) { j.Script = "" }, "Script"},
		{"document name with a space", func(j *Job) { j.Document, j.Script = "My Doc", "" }, "Document"},
		{"own document with a script", func(j *Job) { j.Document = "Passport-Linux-Check" }, "Script"},
		{"own document version not a number", func(j *Job) { j.Document, j.Script, j.DocumentVersion = "Passport-Linux-Check", "", "$LATEST" }, "DocumentVersion"},
		{"own document hash in upper case", func(j *Job) {
			j.Document, j.Script, j.DocumentHash = "Passport-Linux-Check", "", strings.Repeat("AB", 32)
		}, "DocumentHash"},
		{"own document hash too short", func(j *Job) { j.Document, j.Script, j.DocumentHash = "Passport-Linux-Check", "", "abc" }, "DocumentHash"},
		{"own document with the timeout as a parameter", func(j *Job) {
			j.Document, j.Script, j.Parameters = "Passport-Linux-Check", "", map[string][]string{TimeoutParameter: {"5"}}
		}, "Parameters"},
		{"script document with parameters", func(j *Job) { j.Parameters = map[string][]string{"data": {"AAAA"}} }, "Parameters"},
		{"script document with a hash", func(j *Job) { j.DocumentHash = strings.Repeat("ab", 32) }, "DocumentVersion, DocumentHash"},
		{"long comment", func(j *Job) { j.Comment = strings.Repeat("x", 101) }, "Comment"},
		{"execution timeout too short", func(j *Job) { j.ExecutionTimeout = time.Millisecond }, "ExecutionTimeout"},
		{"execution timeout too long", func(j *Job) { j.ExecutionTimeout = 49 * time.Hour }, "ExecutionTimeout"},
		{"delivery timeout too short", func(j *Job) { j.DeliveryTimeout = 10 * time.Second }, "DeliveryTimeout"},
		{"negative delivery timeout", func(j *Job) { j.DeliveryTimeout = -time.Minute }, "DeliveryTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := ok
			j.Targets = append([]string(nil), ok.Targets...)
			tt.edit(&j)
			got, err := j.withDefaults()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("valid job refused: %v", err)
				}
				if got.Document != ShellScript || got.ExecutionTimeout != defaultTimeout || got.DeliveryTimeout != defaultTimeout {
					t.Errorf("defaults not filled in: %+v", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("invalid job accepted")
			}
			if !strings.HasPrefix(err.Error(), tt.field+":") {
				t.Errorf("error %q does not start with the field %q", err, tt.field)
			}
		})
	}
}

func TestSecondsRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]int64{time.Second: 1, 1500 * time.Millisecond: 2, time.Minute: 60} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%s) = %d, want %d", d, got, want)
		}
	}
}

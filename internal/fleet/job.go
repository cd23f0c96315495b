package fleet

import (
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"
)

// SSM documents a Job can run. Both take the script as their "commands"
// parameter and honour "executionTimeout".
const (
	ShellScript      = "AWS-RunShellScript"      // Linux and macOS
	PowerShellScript = "AWS-RunPowerShellScript" // Windows, and Linux with PowerShell
)

// Job is one script for a set of hosts.
type Job struct {
	// Targets are instance ids (i-… for EC2, mi-… for hybrid nodes), each at
	// most once.
	Targets []string
	// Document is ShellScript (the default) or PowerShellScript.
	Document string
	// Script is the program the document runs on every target.
	Script string
	// Comment shows in the SSM console and in CloudTrail; at most 100
	// characters.
	Comment string
	// ExecutionTimeout is how long the script may run on a host before the
	// agent kills it: 1s to 48h, default 2m.
	ExecutionTimeout time.Duration
	// DeliveryTimeout is how long SSM keeps trying to hand the script to a
	// host's agent: 30s to 30 days, default 2m. Hosts that are offline when
	// the job starts are never sent anything, so this only matters for hosts
	// that disconnect in between.
	DeliveryTimeout time.Duration
}

// Limits SSM enforces; checking them here turns a ValidationException for
// the whole batch into an error naming the field.
const (
	maxComment          = 100
	minExecutionTimeout = time.Second
	maxExecutionTimeout = 48 * time.Hour
	minDeliveryTimeout  = 30 * time.Second
	maxDeliveryTimeout  = 30 * 24 * time.Hour
	defaultTimeout      = 2 * time.Minute
)

// instanceID matches EC2 instance ids (8 or 17 hex digits) and the ids of
// hybrid managed nodes (mi-, 17 hex digits). AWS writes them in lower case.
var instanceID = regexp.MustCompile(`^(i-([0-9a-f]{8}|[0-9a-f]{17})|mi-[0-9a-f]{17})$`)

func checkInstanceID(field, id string) error {
	if !instanceID.MatchString(id) {
		return fmt.Errorf("%s: %q is not an instance id: write i- followed by 8 or 17 lower-case hex digits, or mi- followed by 17", field, id)
	}
	return nil
}

// checkTargets rejects empty lists, malformed ids and duplicates.
func checkTargets(field string, ids []string) error {
	if len(ids) == 0 {
		return fmt.Errorf("%s: no instances given", field)
	}
	seen := make(map[string]int, len(ids))
	for i, id := range ids {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := checkInstanceID(f, id); err != nil {
			return err
		}
		if j, dup := seen[id]; dup {
			return fmt.Errorf("%s: %s is already %s[%d]: list each instance once", f, id, field, j)
		}
		seen[id] = i
	}
	return nil
}

// withDefaults checks the job and fills in the defaults.
func (j Job) withDefaults() (Job, error) {
	if err := checkTargets("Targets", j.Targets); err != nil {
		return j, err
	}
	switch j.Document {
	case "":
		j.Document = ShellScript
	case ShellScript, PowerShellScript:
	default:
		return j, fmt.Errorf("Document: %q is not supported: use %s or %s", j.Document, ShellScript, PowerShellScript)
	}
	if j.Script == "" {
		return j, fmt.Errorf("Script: empty: there is nothing to run")
	}
	if n := utf8.RuneCountInString(j.Comment); n > maxComment {
		return j, fmt.Errorf("Comment: %d characters, SSM takes at most %d", n, maxComment)
	}
	if j.ExecutionTimeout == 0 {
		j.ExecutionTimeout = defaultTimeout
	}
	if j.ExecutionTimeout < minExecutionTimeout || j.ExecutionTimeout > maxExecutionTimeout {
		return j, fmt.Errorf("ExecutionTimeout: %s is outside %s to %s", j.ExecutionTimeout, minExecutionTimeout, maxExecutionTimeout)
	}
	if j.DeliveryTimeout == 0 {
		j.DeliveryTimeout = defaultTimeout
	}
	if j.DeliveryTimeout < minDeliveryTimeout || j.DeliveryTimeout > maxDeliveryTimeout {
		return j, fmt.Errorf("DeliveryTimeout: %s is outside %s to %s", j.DeliveryTimeout, minDeliveryTimeout, maxDeliveryTimeout)
	}
	return j, nil
}

// seconds rounds up, so that a timeout is never shorter than asked.
func seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

package fleet

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"
)

// AWS's script documents a Job can run. Both take the script as their
// "commands" parameter and honour "executionTimeout".
const (
	ShellScript      = "AWS-RunShellScript"      // Linux and macOS
	PowerShellScript = "AWS-RunPowerShellScript" // Windows, and Linux with PowerShell
)

// TimeoutParameter is the parameter every document a Job runs takes its
// execution timeout in: AWS's script documents declare it, and a Command
// document of one's own must too (a String of seconds), so that
// ExecutionTimeout bounds what runs on the hosts.
const TimeoutParameter = "executionTimeout"

// Job is one script, or one run of a Command document, for a set of hosts.
type Job struct {
	// Targets are instance ids (i-… for EC2, mi-… for hybrid nodes), each at
	// most once.
	Targets []string
	// Document is ShellScript (the default) or PowerShellScript, which run
	// Script; or the name of a Command document of the account's own,
	// which runs with Parameters. IAM can allow ssm:SendCommand on one's
	// own documents only, so that whoever sends them cannot send a script.
	Document string
	// Script is the program ShellScript or PowerShellScript runs on every
	// target; empty for a document of one's own.
	Script string
	// Parameters are the parameters of a document of one's own, except
	// TimeoutParameter, which comes from ExecutionTimeout.
	Parameters map[string][]string
	// DocumentVersion is the version of one's own document to run; empty
	// means its default version.
	DocumentVersion string
	// DocumentHash is the hex SHA-256 of that version of one's own
	// document, as SSM reports it: SSM refuses the command when the
	// document's content is no longer the one hashed. Empty sends no hash.
	DocumentHash string
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
	// OutputS3Bucket, when set, has each host's agent write the script's
	// whole stdout and stderr to that bucket with the instance's role,
	// under OutputS3KeyPrefix/<command>/<instance>/...: the way out for
	// output larger than Result's 24,000 characters (session recordings).
	OutputS3Bucket    string
	OutputS3KeyPrefix string
}

// scriptDocument reports whether the job runs one of AWS's script
// documents, which take Script.
func (j Job) scriptDocument() bool {
	return j.Document == ShellScript || j.Document == PowerShellScript
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

// InstanceIDPattern matches EC2 instance ids (8 or 17 hex digits) and the
// ids of hybrid managed nodes (mi-, 17 hex digits). AWS writes them in
// lower case. It is Passport's one rule for an instance id: the access
// core, the service and the provider's plan-time checks all use it.
var InstanceIDPattern = regexp.MustCompile(`^(i-([0-9a-f]{8}|[0-9a-f]{17})|mi-[0-9a-f]{17})$`)

// InstanceIDRule says how to write an instance id, for errors.
const InstanceIDRule = "write i- followed by 8 or 17 lower-case hex digits, or mi- followed by 17"

func checkInstanceID(field, id string) error {
	if !InstanceIDPattern.MatchString(id) {
		return fmt.Errorf("%s: %q is not an instance id: "+InstanceIDRule, field, id)
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
	if j.Document == "" {
		j.Document = ShellScript
	}
	if err := j.checkDocument(); err != nil {
		return j, err
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

// Limits of one's own documents, from the SSM service model.
var (
	documentName = regexp.MustCompile(`^[a-zA-Z0-9_\-.]{3,128}$`)
	versionNum   = regexp.MustCompile(`^[1-9][0-9]*$`)
	sha256Hex    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// checkDocument checks what the job runs: a script through AWS's script
// documents, or one's own document with its parameters.
func (j Job) checkDocument() error {
	if j.scriptDocument() {
		switch {
		case j.Script == "":
			return fmt.Errorf("Script: empty: there is nothing to run")
		case len(j.Parameters) > 0:
			return fmt.Errorf("Parameters: %s takes Script only; parameters are for documents of one's own", j.Document)
		case j.DocumentVersion != "" || j.DocumentHash != "":
			return fmt.Errorf("DocumentVersion, DocumentHash: %s is AWS's; they are for documents of one's own", j.Document)
		}
		return nil
	}
	switch {
	case !documentName.MatchString(j.Document):
		return fmt.Errorf("Document: %q is not a document name: 3 to 128 characters of a-z, A-Z, 0-9, '_', '-' and '.'", j.Document)
	case j.Script != "":
		return fmt.Errorf("Script: %s is a document of one's own and takes Parameters, not a script; scripts go through %s or %s", j.Document, ShellScript, PowerShellScript)
	case j.DocumentVersion != "" && !versionNum.MatchString(j.DocumentVersion):
		return fmt.Errorf("DocumentVersion: %q is not a version number (1, 2, ...); leave it empty for the default version", j.DocumentVersion)
	case j.DocumentHash != "" && !sha256Hex.MatchString(j.DocumentHash):
		return fmt.Errorf("DocumentHash: %q is not a SHA-256 in lower-case hex (64 digits), as SSM reports a document's Hash", j.DocumentHash)
	}
	if _, ok := j.Parameters[TimeoutParameter]; ok {
		return fmt.Errorf("Parameters: %s comes from ExecutionTimeout; leave it out", TimeoutParameter)
	}
	return nil
}

// parameters are what SendCommand carries for the job.
func (j Job) parameters() map[string][]string {
	timeout := strconv.FormatInt(seconds(j.ExecutionTimeout), 10)
	if j.scriptDocument() {
		return map[string][]string{"commands": {j.Script}, TimeoutParameter: {timeout}}
	}
	params := make(map[string][]string, len(j.Parameters)+1)
	for k, v := range j.Parameters {
		params[k] = v
	}
	params[TimeoutParameter] = []string{timeout}
	return params
}

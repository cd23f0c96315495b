package ssm

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

type sendCommandInput struct {
	DocumentName       *string
	DocumentVersion    *string
	DocumentHash       *string
	DocumentHashType   *string
	InstanceIds        []string
	Targets            []target
	Parameters         map[string][]string
	TimeoutSeconds     *int64
	Comment            *string
	MaxConcurrency     *string
	MaxErrors          *string
	OutputS3Region     *string
	OutputS3BucketName *string
	OutputS3KeyPrefix  *string
	ServiceRoleArn     *string
}

type sendCommandOutput struct {
	Command commandWire
}

// Defaults of SendCommand and of the AWS-Run*Script documents.
const (
	defaultTimeoutSeconds   = 3600
	defaultExecutionTimeout = 3600
	defaultMaxConcurrency   = "50"
	defaultMaxErrors        = "0"
)

// sendCommand validates like AWS in two layers. First the service model's
// constraints, all reported together as one ValidationException (which is
// also what a malformed instance id gets: the model gives InstanceIds a
// pattern). Then the service's own checks: the document (InvalidDocument,
// InvalidDocumentVersion, and InvalidDocument for a DocumentHash that is
// not the version's), its parameters against what the document declares
// (InvalidParameters), its size with them (MaxDocumentSizeExceeded), and the
// nodes: an unregistered one is InvalidInstanceId, one of the wrong
// platform UnsupportedPlatformType. Nodes picked by Targets are not
// checked up front: a wrong-platform node gets an InvalidPlatform
// invocation, and Targets that match nothing make a command that is
// Failed with NoInstancesInTag at once.
func (s *Service) sendCommand(_ context.Context, in *sendCommandInput) (*sendCommandOutput, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	if len(in.InstanceIds) == 0 && len(in.Targets) == 0 {
		return nil, awsjson.Errorf("ValidationException", "Either InstanceIds or Targets must be specified.")
	}
	if len(in.InstanceIds) > 0 && len(in.Targets) > 0 {
		return nil, awsjson.Errorf("ValidationException", "InstanceIds and Targets cannot be used together; specify one of them.")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	entry, dv, err := s.commandDocument(*in.DocumentName, in.DocumentVersion, in.DocumentHash, in.DocumentHashType)
	if err != nil {
		return nil, err
	}
	values, err := dv.spec.values(entry.name, in.Parameters)
	if err != nil {
		return nil, err
	}
	if n := runtimeSize(dv.content, in.Parameters); n > maxDocumentSize {
		return nil, awsjson.Errorf("MaxDocumentSizeExceeded", "Document %s with these parameters is %d bytes; Systems Manager runs at most 64 KB.", entry.name, n)
	}
	script := dv.spec.script(entry.name, values)
	doc := document{name: entry.name, plugin: dv.spec.step.name, action: dv.spec.step.action, platform: dv.spec.step.platform}
	var ids []string
	if len(in.InstanceIds) > 0 {
		ids, err = s.instancesFor(in.InstanceIds, doc)
	} else {
		ids, err = s.resolveTargets(in.Targets, doc)
	}
	if err != nil {
		return nil, err
	}

	now := s.now()
	s.forgetOldCommands(now)
	timeout := int64(defaultTimeoutSeconds)
	if in.TimeoutSeconds != nil {
		timeout = *in.TimeoutSeconds
	}
	s.seq++
	c := &command{
		id:          newCommandID(),
		seq:         s.seq,
		doc:         doc,
		version:     "$DEFAULT",
		parameters:  in.Parameters,
		script:      script,
		comment:     deref(in.Comment),
		instanceIDs: slices.Clone(in.InstanceIds),
		targets:     in.Targets,
		requested:   now,
		timeout:     int(timeout),
		deliverBy:   now.Add(time.Duration(timeout) * time.Second),
		concurrency: orDefault(in.MaxConcurrency, defaultMaxConcurrency),
		maxErrors:   orDefault(in.MaxErrors, defaultMaxErrors),
		outputS3:    outputS3{Region: deref(in.OutputS3Region), Bucket: deref(in.OutputS3BucketName), KeyPrefix: deref(in.OutputS3KeyPrefix)},
		wakeup:      make(chan struct{}, 1),
	}
	if in.DocumentVersion != nil {
		c.version = *in.DocumentVersion
	}
	if c.parameters == nil {
		c.parameters = map[string][]string{}
	}
	c.expires = c.deliverBy.Add(script.Timeout)
	c.runLimit = max(1, resolveLimit(c.concurrency, len(ids), true))
	c.errorLimit = resolveLimit(c.maxErrors, len(ids), false)
	for _, id := range ids {
		m := s.nodes[id]
		inv := &invocation{cmd: c, index: len(c.invocations), instanceID: id, instanceName: m.info.ComputerName, detail: detailPending, exitCode: -1}
		if m.info.PlatformType != doc.platform {
			// Only reachable through Targets: InstanceIds with the wrong
			// platform are refused up front.
			inv.detail = detailInvalidPlatform
		}
		c.invocations = append(c.invocations, inv)
	}
	s.commands[c.id] = c
	if len(ids) == 0 {
		c.finished = true
	} else {
		s.wg.Add(1)
		go s.dispatch(c)
	}
	return &sendCommandOutput{Command: s.commandWire(c)}, nil
}

// commandRetention is how long Run Command keeps a command's history.
const commandRetention = 30 * 24 * time.Hour

// forgetOldCommands drops finished commands sent more than 30 days ago, as
// AWS does; it also keeps a long-running lab's memory bounded. Callers
// hold s.mu.
func (s *Service) forgetOldCommands(now time.Time) {
	for id, c := range s.commands {
		if c.finished && now.Sub(c.requested) > commandRetention {
			delete(s.commands, id)
		}
	}
}

func (in *sendCommandInput) validate() error {
	var v violations
	v.required(in.DocumentName != nil, "documentName")
	if in.DocumentName != nil {
		v.pattern(*in.DocumentName, "documentName", documentNamePattern)
	}
	if in.DocumentVersion != nil {
		v.pattern(*in.DocumentVersion, "documentVersion", documentVersionPat)
	}
	if in.DocumentHash != nil {
		v.length(*in.DocumentHash, "documentHash", 0, 256)
	}
	if in.DocumentHashType != nil && *in.DocumentHashType != "Sha256" && *in.DocumentHashType != "Sha1" {
		v.add(*in.DocumentHashType, "documentHashType", "Member must satisfy enum value set: [Sha256, Sha1]")
	}
	v.instanceIDs(in.InstanceIds, "instanceIds")
	if len(in.Targets) > 5 {
		v.add(renderTargets(in.Targets), "targets", "Member must have length less than or equal to 5")
	}
	for i, t := range in.Targets {
		member := fmt.Sprintf("targets.%d.member.key", i+1)
		v.length(t.Key, member, 1, 163)
		v.pattern(t.Key, member, targetKeyPattern)
		if len(t.Values) > 50 {
			v.add(t.Values, fmt.Sprintf("targets.%d.member.values", i+1), "Member must have length less than or equal to 50")
		}
	}
	if in.TimeoutSeconds != nil {
		v.valueRange(*in.TimeoutSeconds, "timeoutSeconds", 30, 2592000)
	}
	if in.Comment != nil {
		v.length(*in.Comment, "comment", 0, 100)
	}
	if in.MaxConcurrency != nil {
		v.length(*in.MaxConcurrency, "maxConcurrency", 1, 7)
		v.pattern(*in.MaxConcurrency, "maxConcurrency", maxConcurrencyPat)
	}
	if in.MaxErrors != nil {
		v.length(*in.MaxErrors, "maxErrors", 1, 7)
		v.pattern(*in.MaxErrors, "maxErrors", maxErrorsPattern)
	}
	if in.OutputS3BucketName != nil {
		v.length(*in.OutputS3BucketName, "outputS3BucketName", 3, 63)
	}
	if in.OutputS3KeyPrefix != nil {
		v.length(*in.OutputS3KeyPrefix, "outputS3KeyPrefix", 0, 500)
	}
	if in.OutputS3Region != nil {
		v.length(*in.OutputS3Region, "outputS3Region", 3, 20)
	}
	return v.err()
}

// renderTargets writes targets as AWS's validation messages quote them:
// [Target(key=tag:a, values=[1]), ...].
func renderTargets(ts []target) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("Target(key=%s, values=[%s])", t.Key, strings.Join(t.Values, ", "))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// instancesFor checks InstanceIds: every node must be registered (online
// or not) and of the document's platform. Callers hold s.mu.
func (s *Service) instancesFor(requested []string, doc document) ([]string, error) {
	var ids, unknown, wrongPlatform []string
	seen := make(map[string]bool)
	for _, id := range requested {
		if seen[id] {
			continue
		}
		seen[id] = true
		m, ok := s.nodes[id]
		switch {
		case !ok:
			unknown = append(unknown, id)
		case m.info.PlatformType != doc.platform:
			wrongPlatform = append(wrongPlatform, id)
		}
		ids = append(ids, id)
	}
	if len(unknown) > 0 {
		return nil, awsjson.Errorf("InvalidInstanceId", "Instances [[%s]] not in a valid state for account %s", strings.Join(unknown, ", "), s.account)
	}
	if len(wrongPlatform) > 0 {
		return nil, awsjson.Errorf("UnsupportedPlatformType", "The document %s does not support the platform type of instances [%s]; it runs on %s only.",
			doc.name, strings.Join(wrongPlatform, ", "), doc.platform)
	}
	return ids, nil
}

// resolveTargets turns Targets into instance ids. A node must match every
// target (several targets narrow the selection); within one target any
// value matches. Supported keys are InstanceIds, tag:<key> and tag-key.
// Callers hold s.mu.
func (s *Service) resolveTargets(targets []target, doc document) ([]string, error) {
	for _, t := range targets {
		switch {
		case t.Key == "InstanceIds", t.Key == "tag-key", strings.HasPrefix(t.Key, "tag:") && len(t.Key) > 4:
		default:
			return nil, awsjson.Errorf("InvalidParameters", "Target key %q is not supported by the lab; use InstanceIds, tag:<key> or tag-key.", clip(t.Key))
		}
		if len(t.Values) == 0 {
			return nil, awsjson.Errorf("InvalidParameters", "Target %s has no values.", clip(t.Key))
		}
		if t.Key == "InstanceIds" {
			if _, err := s.instancesFor(t.Values, doc); err != nil {
				return nil, err
			}
		}
	}
	var ids []string
	for id, m := range s.nodes {
		if matchesTargets(id, m.info.Tags, targets) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

func matchesTargets(id string, tags map[string]string, targets []target) bool {
	for _, t := range targets {
		var ok bool
		switch {
		case t.Key == "InstanceIds":
			ok = slices.Contains(t.Values, id)
		case t.Key == "tag-key":
			for _, k := range t.Values {
				if _, has := tags[k]; has {
					ok = true
				}
			}
		default:
			v, has := tags[strings.TrimPrefix(t.Key, "tag:")]
			ok = has && slices.Contains(t.Values, v)
		}
		if !ok {
			return false
		}
	}
	return true
}

// resolveLimit turns MaxConcurrency or MaxErrors ("10" or "10%") into a
// count for n targets. Percentages of concurrency round up (a command
// always makes progress); percentages of errors round down (10% of 5
// targets allows no error).
func resolveLimit(spec string, n int, roundUp bool) int {
	if pct, ok := strings.CutSuffix(spec, "%"); ok {
		p, _ := strconv.Atoi(pct)
		f := float64(p) * float64(n) / 100
		if roundUp {
			return int(math.Ceil(f))
		}
		return int(math.Floor(f))
	}
	v, _ := strconv.Atoi(spec)
	return v
}

func newCommandID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func orDefault(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

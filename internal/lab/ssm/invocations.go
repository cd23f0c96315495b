package ssm

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

// Output limits of the Run Command API.
const (
	maxStdoutContent = 24000 // GetCommandInvocation StandardOutputContent
	maxStderrContent = 8000  // GetCommandInvocation StandardErrorContent
	// pluginOutputCapacity is what the SSM agent fits its combined
	// stdout/stderr report into; the API's CommandPlugin Output allows 2,500
	// characters, and the agent's report is always within that.
	pluginOutputCapacity = 2400
)

type notificationConfig struct {
	NotificationArn    string
	NotificationEvents []string
	NotificationType   string
}

type cloudWatchOutputConfig struct {
	CloudWatchLogGroupName  string
	CloudWatchOutputEnabled bool
}

type commandWire struct {
	CommandId              string
	DocumentName           string
	DocumentVersion        string
	Comment                string
	ExpiresAfter           *epoch
	Parameters             map[string][]string
	InstanceIds            []string
	Targets                []target
	RequestedDateTime      *epoch
	Status                 string
	StatusDetails          string
	OutputS3Region         string
	OutputS3BucketName     string
	OutputS3KeyPrefix      string
	MaxConcurrency         string
	MaxErrors              string
	TargetCount            int
	CompletedCount         int
	ErrorCount             int
	DeliveryTimedOutCount  int
	ServiceRole            string
	NotificationConfig     notificationConfig
	CloudWatchOutputConfig cloudWatchOutputConfig
	TimeoutSeconds         int
}

// commandWire renders a command. Callers hold s.mu.
func (s *Service) commandWire(c *command) commandWire {
	n := c.count()
	status, detail := c.status()
	w := commandWire{
		CommandId:             c.id,
		DocumentName:          c.doc.name,
		DocumentVersion:       c.version,
		Comment:               c.comment,
		ExpiresAfter:          epochPtr(c.expires),
		Parameters:            c.parameters,
		InstanceIds:           c.instanceIDs,
		Targets:               c.targets,
		RequestedDateTime:     epochPtr(c.requested),
		Status:                status,
		StatusDetails:         detail,
		OutputS3Region:        c.outputS3.Region,
		OutputS3BucketName:    c.outputS3.Bucket,
		OutputS3KeyPrefix:     c.outputS3.KeyPrefix,
		MaxConcurrency:        c.concurrency,
		MaxErrors:             c.maxErrors,
		TargetCount:           n.target,
		CompletedCount:        n.completed,
		ErrorCount:            n.errors,
		DeliveryTimedOutCount: n.deliveryTimedOut,
		NotificationConfig:    notificationConfig{NotificationEvents: []string{}},
		TimeoutSeconds:        c.timeout,
	}
	if w.InstanceIds == nil {
		w.InstanceIds = []string{}
	}
	if w.Targets == nil {
		w.Targets = []target{}
	}
	return w
}

type getCommandInvocationInput struct {
	CommandId  *string
	InstanceId *string
	PluginName *string
}

type getCommandInvocationOutput struct {
	CommandId              string
	InstanceId             string
	Comment                string
	DocumentName           string
	DocumentVersion        string
	PluginName             string
	ResponseCode           int
	ExecutionStartDateTime string
	ExecutionElapsedTime   string
	ExecutionEndDateTime   string
	Status                 string
	StatusDetails          string
	StandardOutputContent  string
	StandardOutputUrl      string
	StandardErrorContent   string
	StandardErrorUrl       string
	CloudWatchOutputConfig cloudWatchOutputConfig
}

func (s *Service) getCommandInvocation(_ context.Context, in *getCommandInvocationInput) (*getCommandInvocationOutput, error) {
	var v violations
	v.required(in.CommandId != nil, "commandId")
	v.required(in.InstanceId != nil, "instanceId")
	if in.CommandId != nil {
		v.length(*in.CommandId, "commandId", 36, 36)
	}
	if in.InstanceId != nil {
		v.pattern(*in.InstanceId, "instanceId", instanceIDPattern)
	}
	if in.PluginName != nil {
		v.length(*in.PluginName, "pluginName", 4, 0)
	}
	if err := v.err(); err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commands[*in.CommandId]
	var inv *invocation
	if ok && s.now().Sub(c.requested) >= s.invisibleFor {
		inv = c.invocation(*in.InstanceId)
	}
	if inv == nil {
		return nil, awsjson.Errorf("InvocationDoesNotExist", "Command %s has no invocation on instance %s.", *in.CommandId, *in.InstanceId)
	}
	if in.PluginName != nil && *in.PluginName != c.doc.plugin {
		return nil, awsjson.Errorf("InvalidPluginName", "Document %s has no step %q; its only step is %s.", c.doc.name, clip(*in.PluginName), c.doc.plugin)
	}

	out := &getCommandInvocationOutput{
		CommandId:              c.id,
		InstanceId:             inv.instanceID,
		Comment:                c.comment,
		DocumentName:           c.doc.name,
		DocumentVersion:        c.version,
		PluginName:             c.doc.plugin,
		ResponseCode:           inv.exitCode,
		ExecutionStartDateTime: isoTime(inv.start),
		ExecutionEndDateTime:   isoTime(inv.end),
		Status:                 invocationStatus(inv.detail),
		StatusDetails:          inv.detail,
	}
	switch {
	case !inv.end.IsZero():
		out.ExecutionElapsedTime = isoDuration(inv.end.Sub(inv.start))
	case !inv.start.IsZero():
		out.ExecutionElapsedTime = isoDuration(s.now().Sub(inv.start))
	}
	if terminal(inv.detail) {
		out.StandardOutputContent = truncate(inv.stdout, maxStdoutContent)
		out.StandardErrorContent = truncate(inv.stderr, maxStderrContent)
		out.StandardOutputUrl = inv.outputURL["stdout"]
		out.StandardErrorUrl = inv.outputURL["stderr"]
	}
	return out, nil
}

// invocation returns the command's invocation on instance id, or nil.
func (c *command) invocation(id string) *invocation {
	for _, inv := range c.invocations {
		if inv.instanceID == id {
			return inv
		}
	}
	return nil
}

type commandFilter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type listInput struct {
	CommandId  *string
	InstanceId *string
	MaxResults *int64
	NextToken  *string
	Filters    []commandFilter
	Details    bool
}

// check validates the input shared by ListCommands and
// ListCommandInvocations (op), and returns the page size and the filters.
func (in *listInput) check(op string) (int, []filter, error) {
	var v violations
	if in.CommandId != nil {
		v.length(*in.CommandId, "commandId", 36, 36)
	}
	if in.InstanceId != nil {
		v.pattern(*in.InstanceId, "instanceId", instanceIDPattern)
	}
	if in.MaxResults != nil {
		v.valueRange(*in.MaxResults, "maxResults", 1, 50)
	}
	if in.Filters != nil && (len(in.Filters) < 1 || len(in.Filters) > 5) {
		v.add(fmt.Sprint(in.Filters), "filters", "Member must have length between 1 and 5")
	}
	for i, f := range in.Filters {
		v.length(f.Value, fmt.Sprintf("filters.%d.member.value", i+1), 1, 128)
	}
	if err := v.err(); err != nil {
		return 0, nil, err
	}
	filters, err := parseFilters(op, in.Filters)
	if err != nil {
		return 0, nil, err
	}
	if in.InstanceId != nil && slices.ContainsFunc(in.Filters, func(f commandFilter) bool { return f.Key == "Status" && f.Value == "Pending" }) {
		// A pending command has not reached any node yet, so the service
		// refuses to look for one on a node.
		return 0, nil, awsjson.Errorf("ValidationException", "You can't specify a managed node ID in the same request that filters on Status Pending.")
	}
	size := 50
	if in.MaxResults != nil {
		size = int(*in.MaxResults)
	}
	return size, filters, nil
}

// filter is a parsed CommandFilter. status and detail are the command's
// (ListCommands) or the invocation's (ListCommandInvocations).
type filter func(c *command, inv *invocation, status, detail string) bool

// statusFilterValues are the Status filter values the API reference lists
// for each operation. A value matches a command or invocation whose Status
// or StatusDetails it is: "TimedOut" is a Status covering both timeouts,
// "DeliveryTimedOut" a detail. Values the lab never produces (AccessDenied,
// LimitExceeded, Delayed) are accepted and match nothing. The service
// model gives these operations no InvalidFilterValue, so a bad value is an
// InvalidFilterKey, as the lab has always answered.
var statusFilterValues = map[string][]string{
	"ListCommands": {"Pending", "InProgress", "Success", "Cancelled", "Failed", "TimedOut",
		"AccessDenied", "DeliveryTimedOut", "ExecutionTimedOut", "Incomplete", "NoInstancesInTag", "LimitExceeded"},
	"ListCommandInvocations": {"Pending", "InProgress", "Delayed", "Success", "Cancelled", "Failed", "TimedOut",
		"AccessDenied", "DeliveryTimedOut", "ExecutionTimedOut", "Undeliverable", "InvalidPlatform", "Terminated"},
}

func parseFilters(op string, fs []commandFilter) ([]filter, error) {
	var out []filter
	for _, f := range fs {
		value := f.Value
		switch f.Key {
		case "InvokedAfter", "InvokedBefore":
			in, err := awsjson.InvokedFilter(f.Key, value)
			if err != nil {
				return nil, err
			}
			out = append(out, func(c *command, _ *invocation, _, _ string) bool { return in(c.requested) })
		case "Status":
			valid := statusFilterValues[op]
			if !slices.Contains(valid, value) {
				return nil, awsjson.Errorf("InvalidFilterKey", "%s's Status filter takes one of %s, not %q.", op, strings.Join(valid, ", "), clip(value))
			}
			out = append(out, func(_ *command, _ *invocation, status, detail string) bool { return status == value || detail == value })
		case "DocumentName":
			out = append(out, func(c *command, _ *invocation, _, _ string) bool { return c.doc.name == value })
		case "ExecutionStage":
			if op != "ListCommands" {
				return nil, awsjson.Errorf("InvalidFilterKey", "The ExecutionStage filter can be used with ListCommands only, not with %s.", op)
			}
			if value != "Executing" && value != "Complete" {
				return nil, awsjson.Errorf("InvalidFilterKey", "Filter ExecutionStage takes Executing or Complete, not %q.", clip(value))
			}
			complete := value == "Complete"
			out = append(out, func(_ *command, _ *invocation, status, _ string) bool {
				done := status != "Pending" && status != "InProgress" && status != "Cancelling"
				return done == complete
			})
		default:
			keys := "InvokedAfter, InvokedBefore, Status, DocumentName"
			if op == "ListCommands" {
				keys += " or ExecutionStage"
			}
			return nil, awsjson.Errorf("InvalidFilterKey", "%q is not a %s filter key; use %s.", clip(f.Key), op, keys)
		}
	}
	return out, nil
}

func matchAll(fs []filter, c *command, inv *invocation, status, detail string) bool {
	for _, f := range fs {
		if !f(c, inv, status, detail) {
			return false
		}
	}
	return true
}

// commandsNewestFirst returns the commands to list. Callers hold s.mu.
func (s *Service) commandsNewestFirst(commandID *string) ([]*command, error) {
	if commandID != nil {
		c, ok := s.commands[*commandID]
		if !ok {
			return nil, awsjson.Errorf("InvalidCommandId", "Command %s does not exist.", *commandID)
		}
		return []*command{c}, nil
	}
	cs := make([]*command, 0, len(s.commands))
	for _, c := range s.commands {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *command) int { return b.seq - a.seq })
	return cs, nil
}

// commandKey sorts newest commands first in page tokens.
func commandKey(c *command) string { return fmt.Sprintf("%012d", 1_000_000_000_000-c.seq) }

type listCommandsOutput struct {
	Commands  []commandWire
	NextToken string `json:",omitempty"`
}

func (s *Service) listCommands(_ context.Context, in *listInput) (*listCommandsOutput, error) {
	size, filters, err := in.check("ListCommands")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, err := s.commandsNewestFirst(in.CommandId)
	if err != nil {
		return nil, err
	}
	var matched []*command
	for _, c := range cs {
		status, detail := c.status()
		if in.InstanceId != nil && c.invocation(*in.InstanceId) == nil {
			continue
		}
		if matchAll(filters, c, nil, status, detail) {
			matched = append(matched, c)
		}
	}
	pg, next, err := awsjson.Page(s.pages, "ListCommands", deref(in.NextToken), size, matched, commandKey)
	if err != nil {
		return nil, err
	}
	out := &listCommandsOutput{Commands: []commandWire{}, NextToken: next}
	for _, c := range pg {
		out.Commands = append(out.Commands, s.commandWire(c))
	}
	return out, nil
}

type pluginWire struct {
	Name                   string
	Status                 string
	StatusDetails          string
	ResponseCode           int
	ResponseStartDateTime  *epoch
	ResponseFinishDateTime *epoch
	Output                 string
	StandardOutputUrl      string
	StandardErrorUrl       string
	OutputS3Region         string
	OutputS3BucketName     string
	OutputS3KeyPrefix      string
}

type invocationWire struct {
	CommandId              string
	InstanceId             string
	InstanceName           string
	Comment                string
	DocumentName           string
	DocumentVersion        string
	RequestedDateTime      *epoch
	Status                 string
	StatusDetails          string
	TraceOutput            string
	StandardOutputUrl      string
	StandardErrorUrl       string
	CommandPlugins         []pluginWire
	ServiceRole            string
	NotificationConfig     notificationConfig
	CloudWatchOutputConfig cloudWatchOutputConfig
}

type listCommandInvocationsOutput struct {
	CommandInvocations []invocationWire
	NextToken          string `json:",omitempty"`
}

func (s *Service) listCommandInvocations(_ context.Context, in *listInput) (*listCommandInvocationsOutput, error) {
	size, filters, err := in.check("ListCommandInvocations")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, err := s.commandsNewestFirst(in.CommandId)
	if err != nil {
		return nil, err
	}
	var matched []*invocation
	for _, c := range cs {
		for _, inv := range c.invocations {
			if in.InstanceId != nil && inv.instanceID != *in.InstanceId {
				continue
			}
			if matchAll(filters, c, inv, invocationStatus(inv.detail), inv.detail) {
				matched = append(matched, inv)
			}
		}
	}
	key := func(inv *invocation) string {
		return commandKey(inv.cmd) + "/" + fmt.Sprintf("%06d", inv.index)
	}
	pg, next, err := awsjson.Page(s.pages, "ListCommandInvocations", deref(in.NextToken), size, matched, key)
	if err != nil {
		return nil, err
	}
	out := &listCommandInvocationsOutput{CommandInvocations: []invocationWire{}, NextToken: next}
	for _, inv := range pg {
		out.CommandInvocations = append(out.CommandInvocations, s.invocationWire(inv, in.Details))
	}
	return out, nil
}

// invocationWire renders an invocation. Callers hold s.mu.
func (s *Service) invocationWire(inv *invocation, details bool) invocationWire {
	c := inv.cmd
	w := invocationWire{
		CommandId:          c.id,
		InstanceId:         inv.instanceID,
		InstanceName:       inv.instanceName,
		Comment:            c.comment,
		DocumentName:       c.doc.name,
		DocumentVersion:    c.version,
		RequestedDateTime:  epochPtr(c.requested),
		Status:             invocationStatus(inv.detail),
		StatusDetails:      inv.detail,
		CommandPlugins:     []pluginWire{},
		NotificationConfig: notificationConfig{NotificationEvents: []string{}},
	}
	if details {
		p := pluginWire{
			Name:                   c.doc.plugin,
			Status:                 pluginStatus(inv.detail),
			StatusDetails:          inv.detail,
			ResponseCode:           inv.exitCode,
			ResponseStartDateTime:  epochPtr(inv.start),
			ResponseFinishDateTime: epochPtr(inv.end),
			OutputS3Region:         c.outputS3.Region,
			OutputS3BucketName:     c.outputS3.Bucket,
			OutputS3KeyPrefix:      c.outputS3.KeyPrefix,
		}
		if terminal(inv.detail) {
			p.Output = pluginOutput(truncate(inv.stdout, maxStdoutContent), truncate(inv.stderr, maxStderrContent), pluginOutputCapacity)
		}
		w.CommandPlugins = append(w.CommandPlugins, p)
	}
	return w
}

// pluginOutput combines stdout and stderr into one report of at most
// capacity bytes, in the SSM agent's format: stdout, then (when there is
// any) a "----------ERROR-------" title line and stderr. When the two do not
// fit, a stream longer than its share is cut and marked; a short stream
// keeps all of its text and leaves the rest to the other.
func pluginOutput(stdout, stderr string, capacity int) string {
	const (
		outMark   = "\n---Output truncated---"
		errMark   = "\n---Error truncated----"
		errorLine = "\n----------ERROR-------\n"
	)
	title := ""
	if stderr != "" {
		title = errorLine
	}
	space := capacity - len(title)
	if len(stdout)+len(stderr) < space {
		return stdout + title + stderr
	}
	half := space / 2
	switch {
	case len(stdout) > half && len(stderr) > half:
		keep := (space - len(outMark) - len(errMark)) / 2
		return cutBytes(stdout, keep) + outMark + title + cutBytes(stderr, keep) + errMark
	case len(stdout) <= half:
		return stdout + title + cutBytes(stderr, space-len(errMark)-len(stdout)) + errMark
	default:
		return cutBytes(stdout, space-len(outMark)-len(stderr)) + outMark + title + stderr
	}
}

// cutBytes shortens s to at most n bytes without splitting a UTF-8
// sequence.
func cutBytes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// truncate keeps the first n characters of s.
func truncate(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

type cancelCommandInput struct {
	CommandId   *string
	InstanceIds []string
}

type cancelCommandOutput struct{}

// cancelCommand asks every listed (or every) invocation to stop: pending
// ones end Cancelled at once, running ones are Cancelling until their
// node's Run returns. Invocations already finished are left as they are;
// like AWS, cancelling a finished command is not an error.
func (s *Service) cancelCommand(_ context.Context, in *cancelCommandInput) (*cancelCommandOutput, error) {
	var v violations
	v.required(in.CommandId != nil, "commandId")
	if in.CommandId != nil {
		v.length(*in.CommandId, "commandId", 36, 36)
	}
	v.instanceIDs(in.InstanceIds, "instanceIds")
	if err := v.err(); err != nil {
		return nil, err
	}
	for i, id := range in.InstanceIds {
		if slices.Contains(in.InstanceIds[:i], id) {
			return nil, awsjson.Errorf("DuplicateInstanceId", "Instance %s is listed more than once.", id)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commands[*in.CommandId]
	if !ok {
		return nil, awsjson.Errorf("InvalidCommandId", "Command %s does not exist.", *in.CommandId)
	}
	targets := c.invocations
	if len(in.InstanceIds) > 0 {
		targets = nil
		for _, id := range in.InstanceIds {
			inv := c.invocation(id)
			if inv == nil {
				return nil, awsjson.Errorf("InvalidInstanceId", "Command %s was not sent to instance %s.", c.id, id)
			}
			targets = append(targets, inv)
		}
	} else {
		c.cancelled = true
	}
	for _, inv := range targets {
		if terminal(inv.detail) {
			continue
		}
		inv.cancelRequested = true
		if inv.detail == detailInProgress {
			inv.detail = detailCancelling
			if inv.cancel != nil {
				inv.cancel()
			}
		}
	}
	c.wake()
	return &cancelCommandOutput{}, nil
}

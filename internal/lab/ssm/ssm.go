// Package ssm is the lab's AWS Systems Manager: Run Command
// (SendCommand, GetCommandInvocation, ListCommandInvocations, ListCommands,
// CancelCommand), Command documents (CreateDocument, UpdateDocument,
// UpdateDocumentDefaultVersion, GetDocument, DescribeDocument,
// ListDocuments, DeleteDocument), DescribeInstanceInformation and
// Parameter Store (Get/Put/Delete/DescribeParameters,
// GetParametersByPath), served over the JSON 1.1 protocol by package
// awsjson. Documents' steps run on the managed nodes registered with
// AddNode.
//
// Validation, error codes, status values, truncation and pagination follow
// the SSM service model and API reference, so that a client that works
// against the lab works against AWS.
package ssm

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// DefaultPollInterval is how often a command's dispatcher looks at node
// connectivity and the clock when nothing else wakes it.
const DefaultPollInterval = 20 * time.Millisecond

// Config configures a Service.
type Config struct {
	Region    string // used in ARNs; "us-east-1" when empty
	AccountID string // used in ARNs and error messages; "123456789012" when empty
	// Now is the clock for timestamps, delivery timeouts and command
	// expiry; time.Now when nil. Scripts' execution timeouts are enforced by
	// the nodes themselves, in real time.
	Now func() time.Time
	// PollInterval is how often dispatchers re-check offline nodes and the
	// clock; DefaultPollInterval when zero.
	PollInterval time.Duration
	// InvocationDelay is how long after SendCommand GetCommandInvocation
	// still answers InvocationDoesNotExist, as AWS does for a moment while
	// it creates the invocations; clients must retry through it. Zero (the
	// default) makes invocations visible at once.
	InvocationDelay time.Duration
	// Caller names the principal behind a request (its IAM ARN), for
	// LastModifiedUser; the account's root when nil.
	Caller func(ctx context.Context) string
	// PutOutput writes a command's whole output to S3, as the agent does
	// with the instance's role when a command names OutputS3BucketName;
	// nil where the lab serves no S3.
	PutOutput func(bucket, key string, data []byte) error
}

// Service is the lab's Systems Manager.
type Service struct {
	region, account string
	now             func() time.Time
	poll            time.Duration
	invisibleFor    time.Duration
	callerARN       func(ctx context.Context) string
	putOutput       func(bucket, key string, data []byte) error
	pages           *awsjson.Pager
	secureKey       []byte // seals SecureString values at rest

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	nodes      map[string]*managedNode
	commands   map[string]*command
	seq        int // commands sent so far; orders ListCommands
	parameters map[string][]parameterVersion
	docs       map[string]*docEntry // by name
}

// managedNode is a registered node and what DescribeInstanceInformation
// reports about its connectivity.
type managedNode struct {
	node     node.Node
	info     node.Info
	lastPing time.Time
}

// New returns a Service with no nodes.
func New(cfg Config) *Service {
	s := &Service{
		region:       cfg.Region,
		account:      cfg.AccountID,
		now:          cfg.Now,
		poll:         cfg.PollInterval,
		invisibleFor: cfg.InvocationDelay,
		callerARN:    cfg.Caller,
		putOutput:    cfg.PutOutput,
		nodes:        make(map[string]*managedNode),
		commands:     make(map[string]*command),
		parameters:   make(map[string][]parameterVersion),
		docs:         make(map[string]*docEntry),
	}
	s.seedDocuments()
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "123456789012"
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.poll <= 0 {
		s.poll = DefaultPollInterval
	}
	s.pages = awsjson.NewPager("InvalidNextToken", "The specified token is not valid.")
	s.secureKey = randomBytes(32)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// API returns the service's operations, to Register on an awsjson.Server.
func (s *Service) API() awsjson.Service {
	return awsjson.Service{
		TargetPrefix: "AmazonSSM",
		SigningName:  "ssm",
		Namespace:    "com.amazonaws.ssm",
		Resources:    s.Resources,
		Operations: map[string]awsjson.Operation{
			"SendCommand":                  operation(s.sendCommand),
			"GetCommandInvocation":         operation(s.getCommandInvocation),
			"ListCommandInvocations":       operation(s.listCommandInvocations),
			"ListCommands":                 operation(s.listCommands),
			"CancelCommand":                operation(s.cancelCommand),
			"DescribeInstanceInformation":  operation(s.describeInstanceInformation),
			"GetParameter":                 operation(s.getParameter),
			"GetParameters":                operation(s.getParameters),
			"GetParametersByPath":          operation(s.getParametersByPath),
			"PutParameter":                 operation(s.putParameter),
			"DeleteParameter":              operation(s.deleteParameter),
			"DeleteParameters":             operation(s.deleteParameters),
			"DescribeParameters":           operation(s.describeParameters),
			"CreateDocument":               operation(s.createDocument),
			"UpdateDocument":               operation(s.updateDocument),
			"UpdateDocumentDefaultVersion": operation(s.updateDocumentDefaultVersion),
			"GetDocument":                  operation(s.getDocument),
			"DescribeDocument":             operation(s.describeDocument),
			"ListDocuments":                operation(s.listDocuments),
			"DeleteDocument":               operation(s.deleteDocument),
		},
	}
}

// operation adapts a typed handler to awsjson.Operation.
func operation[In, Out any](f func(context.Context, *In) (*Out, error)) awsjson.Operation {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		in := new(In)
		if err := awsjson.Decode(raw, in); err != nil {
			return nil, err
		}
		return f(ctx, in)
	}
}

// AddNode registers a managed node, replacing any node with the same
// instance id (an agent that re-registers).
func (s *Service) AddNode(n node.Node) {
	info := n.Info()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[info.InstanceID] = &managedNode{node: n, info: info, lastPing: s.now()}
	s.wakeAll()
}

// RemoveNode deregisters a managed node. Invocations not yet delivered to
// it end Undeliverable; scripts already running on it finish normally.
func (s *Service) RemoveNode(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes, id)
	s.wakeAll()
}

// Node returns the registered node with instance id id, for operations
// served beside this package (Session Manager's StartSession) that must
// reach the same nodes.
func (s *Service) Node(id string) (node.Node, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.nodes[id]
	if !ok {
		return nil, false
	}
	return m.node, true
}

// Nodes returns every registered node.
func (s *Service) Nodes() []node.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]node.Node, 0, len(s.nodes))
	for _, m := range s.nodes {
		out = append(out, m.node)
	}
	return out
}

// Close stops every dispatcher and cancels every running script, and
// returns when their goroutines have ended.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// wakeAll nudges every unfinished command's dispatcher. Callers hold s.mu.
func (s *Service) wakeAll() {
	for _, c := range s.commands {
		if !c.finished {
			c.wake()
		}
	}
}

// online reports a node's connectivity and records the ping. Callers hold
// s.mu.
func (s *Service) online(m *managedNode) bool {
	if m.node.Online() {
		m.lastPing = s.now()
		return true
	}
	return false
}

// caller is the ARN of the principal that signed the request being served.
func (s *Service) caller(ctx context.Context) string {
	if s.callerARN != nil {
		if arn := s.callerARN(ctx); arn != "" {
			return arn
		}
	}
	return "arn:aws:iam::" + s.account + ":root"
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

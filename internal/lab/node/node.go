// Package node is the contract between the lab's Systems Manager service and
// the machines it manages. A node is what SSM calls a managed node: something
// with an instance id that an agent keeps connected, that reports its
// platform, and that runs the scripts Run Command delivers to it.
//
// Sandbox Linux hosts (package sandbox) and the lightweight model nodes in
// this package both satisfy Node, so the SSM service never knows which kind
// it is talking to.
package node

import (
	"context"
	"errors"
	"time"
)

// Platform types as DescribeInstanceInformation reports them.
const (
	Linux   = "Linux"
	Windows = "Windows"
)

// Info is what a node's agent reports about itself when it registers.
type Info struct {
	InstanceID      string            // "i-" followed by 17 hex digits
	ComputerName    string            // the node's hostname
	IPAddress       string            // the address its sshd (or RDP check) listens on
	PlatformType    string            // Linux or Windows
	PlatformName    string            // e.g. "Debian GNU/Linux"
	PlatformVersion string            // e.g. "12"
	AgentVersion    string            // the version string the agent reports
	Tags            map[string]string // instance tags, as EC2 would report them
}

// Script is one Run Command plugin invocation delivered to a node.
type Script struct {
	// Document is the SSM document's name, such as AWS-RunShellScript.
	Document string
	// Plugin is the step's plugin, aws:runShellScript or
	// aws:runPowerShellScript, which says how the agent runs Source. Empty
	// means the plugin of Document when that is one of AWS's two script
	// documents (see PluginName).
	Plugin string
	// Source is the script text: the step's runCommand lines, parameters
	// substituted, each ended by a newline, as the SSM agent writes them to
	// a file.
	Source string
	// WorkingDirectory is the step's workingDirectory; empty means the
	// agent's own per-command directory.
	WorkingDirectory string
	// Timeout is the step's timeoutSeconds (AWS's script documents fill it
	// from "executionTimeout"). A script still running when it passes is
	// killed and reported with TimedOut set.
	Timeout time.Duration
	// WholeStdout is set when the command's output goes to S3: the agent
	// then keeps all of stdout (up to MaxS3Output) for the upload, not
	// only what the API reports.
	WholeStdout bool
}

// MaxS3Output bounds the stdout an agent keeps for an S3 upload in the
// lab, which holds it in memory.
const MaxS3Output = 512 << 20

// PluginName returns s.Plugin, or the plugin AWS's script document
// s.Document runs, or "" when neither says.
func (s Script) PluginName() string {
	if s.Plugin != "" {
		return s.Plugin
	}
	switch s.Document {
	case "AWS-RunShellScript":
		return "aws:runShellScript"
	case "AWS-RunPowerShellScript":
		return "aws:runPowerShellScript"
	}
	return ""
}

// Result is what a node reports when a script has finished.
type Result struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	// TimedOut is set when the script was killed at its execution timeout.
	TimedOut bool
}

// ErrOffline is returned by Run when the node is not connected, or when it
// was stopped while the script ran. The SSM service turns the first into a
// pending delivery and the second into a failed invocation.
var ErrOffline = errors.New("node is not connected")

// Node is a managed node as the lab's SSM service sees it.
type Node interface {
	Info() Info
	// Online reports whether the node's agent is connected (PingStatus
	// Online); a stopped node reports ConnectionLost.
	Online() bool
	// Run executes one script and blocks until it ends, the context is
	// cancelled (CancelCommand) or the node goes offline.
	Run(ctx context.Context, s Script) (Result, error)
}

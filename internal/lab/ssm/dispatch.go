package ssm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// dispatch delivers a command's invocations to their nodes and drives them
// to terminal states. It runs in its own goroutine until every invocation
// is terminal or the service closes.
//
// Delivery follows Run Command:
//   - At most runLimit invocations run at once (MaxConcurrency); the rest
//     wait Pending, in target order.
//   - A node that is offline keeps its invocation Pending until it
//     reconnects. An invocation not started by requested+TimeoutSeconds
//     never runs: it ends DeliveryTimedOut.
//   - Once more invocations have failed than MaxErrors allows, invocations
//     not yet started end Terminated; running ones finish.
//   - An invocation still InProgress at ExpiresAfter (TimeoutSeconds plus
//     the execution timeout) ends DeliveryTimedOut, as AWS documents for
//     expired commands.
//   - A node deregistered before delivery makes its invocation
//     Undeliverable.
//   - A node that drops off while its script runs (Run returns
//     node.ErrOffline) leaves the invocation InProgress, as AWS shows it
//     while the agent is unreachable; it ends Failed, with ResponseCode -1,
//     when the node reconnects (the agent reports the interrupted script)
//     or when the execution timeout has passed since the script started.
func (s *Service) dispatch(c *command) {
	defer s.wg.Done()
	ticker := time.NewTicker(s.poll)
	defer ticker.Stop()
	for {
		s.mu.Lock()
		done := s.step(c)
		if done {
			c.finished = true
		}
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-s.ctx.Done():
			s.mu.Lock()
			for _, inv := range c.invocations {
				if inv.cancel != nil {
					inv.cancel()
				}
			}
			s.mu.Unlock()
			return
		case <-c.wakeup:
		case <-ticker.C:
		}
	}
}

// step advances every invocation of c that can move and reports whether
// all are terminal with no script still running. Callers hold s.mu.
func (s *Service) step(c *command) bool {
	now := s.now()
	n := c.count()
	stopSending := n.errors > c.errorLimit
	running := n.running
	allDone := true
	for _, inv := range c.invocations {
		switch inv.detail {
		case detailPending:
			m := s.nodes[inv.instanceID]
			switch {
			case inv.cancelRequested:
				inv.finish(detailCancelled, now)
			case m == nil:
				inv.finish(detailUndeliverable, now)
			case !now.Before(c.deliverBy):
				inv.finish(detailDeliveryTimedOut, now)
			case stopSending:
				inv.finish(detailTerminated, now)
			case running < c.runLimit && s.online(m):
				s.start(c, inv, m.node, now)
				running++
			}
		case detailInProgress, detailCancelling:
			switch {
			case inv.interrupted && s.interruptionOver(c, inv, now):
				detail := detailFailed
				if inv.cancelRequested {
					detail = detailCancelled
				}
				inv.finish(detail, now)
			case !now.Before(c.expires):
				if inv.cancel != nil {
					inv.cancel()
					inv.cancel = nil
				}
				inv.finish(detailDeliveryTimedOut, now)
			}
		}
		if !terminal(inv.detail) || inv.cancel != nil {
			allDone = false
		}
	}
	return allDone
}

// interruptionOver reports whether an invocation whose node dropped off
// mid-run can be ended: it was cancelled, the node is back (or gone for
// good), or the script would have hit its execution timeout by now.
// Callers hold s.mu.
func (s *Service) interruptionOver(c *command, inv *invocation, now time.Time) bool {
	m := s.nodes[inv.instanceID]
	return inv.cancelRequested || m == nil || s.online(m) || !now.Before(inv.start.Add(c.script.Timeout))
}

// start hands an invocation to its node. Callers hold s.mu.
func (s *Service) start(c *command, inv *invocation, n node.Node, now time.Time) {
	ctx, cancel := context.WithCancel(s.ctx)
	inv.detail, inv.start, inv.cancel = detailInProgress, now, cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sc := c.script
		sc.WholeStdout = c.outputS3.Bucket != ""
		res, err := run(ctx, n, sc)
		s.mu.Lock()
		defer s.mu.Unlock()
		cancelled := ctx.Err() != nil
		cancel()
		if inv.cancel == nil {
			return // already ended (expired) while the script ran
		}
		inv.cancel = nil
		end := s.now()
		switch {
		case cancelled && inv.cancelRequested:
			inv.finish(detailCancelled, end)
		case cancelled:
			// The service is closing; leave the invocation as it is.
		case errors.Is(err, node.ErrOffline):
			inv.interrupted = true
		case err != nil:
			inv.stderr = err.Error()
			inv.finish(detailFailed, end)
		case res.TimedOut:
			inv.record(res, s.putOutput, s.region)
			inv.finish(detailExecutionTimedOut, end)
		default:
			inv.record(res, s.putOutput, s.region)
			detail := detailSuccess
			if res.ExitCode != 0 {
				detail = detailFailed
			}
			inv.finish(detail, end)
		}
		c.wake()
	}()
}

// run calls the node, turning a panic in a node implementation into a
// failed invocation rather than a crashed lab.
func run(ctx context.Context, n node.Node, sc node.Script) (res node.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = node.Result{}, fmt.Errorf("the node's agent failed: %v", p)
		}
	}()
	return n.Run(ctx, sc)
}

// record keeps what the API can ever report of a result: the output is
// cut to the GetCommandInvocation limits here, so a chatty script cannot
// grow the lab's memory.
//
// A command that names an output bucket has its whole stdout and stderr
// written there first, before it reports a status, as the agent does:
// under <prefix>/<command>/<instance>/<action without its colon>/<step>/,
// the objects stdout and stderr (only those not empty). An upload that
// fails is reported at the end of stderr; the status is the script's.
func (inv *invocation) record(res node.Result, put func(bucket, key string, data []byte) error, region string) {
	inv.exitCode = res.ExitCode
	if o := inv.cmd.outputS3; o.Bucket != "" && put != nil {
		// The agent names a step's folder after the step, and a schema 1.2
		// document's only plugin (AWS-RunShellScript's aws:runShellScript)
		// 0.<plugin without its colon>.
		action := strings.ReplaceAll(inv.cmd.doc.action, ":", "")
		step := inv.cmd.doc.plugin
		if step == inv.cmd.doc.action {
			step = "0." + action
		}
		dir := inv.cmd.id + "/" + inv.instanceID + "/" + action + "/" + step + "/"
		if o.KeyPrefix != "" {
			dir = strings.TrimSuffix(o.KeyPrefix, "/") + "/" + dir
		}
		for _, stream := range []struct {
			name string
			data []byte
		}{{"stdout", res.Stdout}, {"stderr", res.Stderr}} {
			if len(stream.data) == 0 {
				continue
			}
			if err := put(o.Bucket, dir+stream.name, stream.data); err != nil {
				res.Stderr = append(res.Stderr, fmt.Sprintf("\nfailed to upload %s to s3://%s/%s%s: %v\n", stream.name, o.Bucket, dir, stream.name, err)...)
			} else {
				if inv.outputURL == nil {
					inv.outputURL = map[string]string{}
				}
				inv.outputURL[stream.name] = "https://s3." + region + ".amazonaws.com/" + o.Bucket + "/" + dir + stream.name
			}
		}
	}
	inv.stdout = truncate(string(res.Stdout), maxStdoutContent)
	inv.stderr = truncate(string(res.Stderr), maxStderrContent)
}

func (inv *invocation) finish(detail string, now time.Time) {
	inv.detail = detail
	if !inv.start.IsZero() {
		inv.end = now
	}
}

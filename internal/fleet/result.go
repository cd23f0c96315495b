package fleet

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// result turns a settled invocation into a Result.
func (r *Runner) result(ctx context.Context, job Job, commandID string, inv types.CommandInvocation) Result {
	host := aws.ToString(inv.InstanceId)
	res := Result{InstanceID: host, CommandID: commandID, ExitCode: -1}
	var plugin types.CommandPlugin
	if len(inv.CommandPlugins) > 0 {
		plugin = inv.CommandPlugins[0]
	}
	stdout, stderr, whole := splitOutput(aws.ToString(plugin.Output))
	if !whole {
		stdout, stderr = r.fullOutput(ctx, commandID, host, plugin, stdout, stderr)
	}
	res.Stdout, res.Stderr = stdout, stderr

	// StatusDetails says more than Status; AWS documents it with spaces
	// ("Delivery Timed Out") and some implementations write it without.
	details := strings.ToLower(strings.ReplaceAll(aws.ToString(inv.StatusDetails), " ", ""))
	switch {
	case inv.Status == types.CommandInvocationStatusSuccess:
		res.Outcome, res.ExitCode = Success, int(plugin.ResponseCode)
		res.Reason = host + ": the script succeeded"
	case details == "deliverytimedout" && plugin.ResponseStartDateTime == nil:
		// SSM also ends a command that outlives its delivery plus execution
		// timeouts as DeliveryTimedOut, even on a host where the script
		// started; only one that never started is certain not to have run.
		res.Outcome = DeliveryTimedOut
		res.Reason = fmt.Sprintf("%s: the SSM agent did not pick the script up within %s; check that the instance is running and its agent connected", host, job.DeliveryTimeout)
	case details == "deliverytimedout":
		res.Outcome = TimedOut
		res.Reason = fmt.Sprintf("%s: the script started but SSM gave up on it when the command expired (delivery timeout %s plus execution timeout %s); the host may be half-done", host, job.DeliveryTimeout, job.ExecutionTimeout)
	case inv.Status == types.CommandInvocationStatusTimedOut:
		res.Outcome = TimedOut
		res.Reason = fmt.Sprintf("%s: the script was still running after its execution timeout of %s and was stopped; the host may be half-done", host, job.ExecutionTimeout)
	case details == "undeliverable":
		res.Outcome = Undeliverable
		res.Reason = host + ": SSM could not deliver the script; the instance may have been stopped, terminated or deregistered"
	case details == "invalidplatform":
		res.Outcome = Undeliverable
		res.Reason = fmt.Sprintf("%s: %s does not run on this platform", host, job.Document)
	case details == "accessdenied":
		res.Outcome = Undeliverable
		res.Reason = host + ": SSM was denied running the script; check the instance's IAM role and any SSM service role"
	case details == "terminated" || inv.Status == types.CommandInvocationStatusCancelled:
		res.Outcome = Cancelled
		res.Reason = host + ": the command was cancelled before the script finished; the host may be half-done"
	default:
		res.Outcome, res.ExitCode = Failed, int(plugin.ResponseCode)
		res.Reason = failure(host, res.ExitCode, stdout, stderr)
	}
	return res
}

func failure(host string, code int, stdout, stderr string) string {
	why := detail(stderr)
	if why == "" {
		why = detail(stdout)
	}
	if code < 0 {
		// No exit code: the script was cut off, not ended by its own hand.
		if why != "" {
			why = ": " + why
		}
		return fmt.Sprintf("%s: the script did not run to its end; the agent lost its connection or the host restarted, and the host may be half-done%s", host, why)
	}
	if why == "" {
		return fmt.Sprintf("%s: the script exited %d without saying why", host, code)
	}
	return fmt.Sprintf("%s: the script exited %d: %s", host, code, why)
}

// fullOutput asks for a host's output when ListCommandInvocations had only
// a cut or ambiguous copy. On failure it keeps what it had: the outcome is
// known either way, and the cut copy still explains most failures.
func (r *Runner) fullOutput(ctx context.Context, commandID, host string, plugin types.CommandPlugin, stdout, stderr string) (string, string) {
	var out *ssm.GetCommandInvocationOutput
	err := r.call(ctx, true, func(ctx context.Context) (err error) {
		out, err = r.ssm.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{
			CommandId:  aws.String(commandID),
			InstanceId: aws.String(host),
			PluginName: plugin.Name,
		})
		return err
	})
	if err != nil {
		return stdout, stderr
	}
	return aws.ToString(out.StandardOutputContent), aws.ToString(out.StandardErrorContent)
}

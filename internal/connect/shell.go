package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// Shell documents: the default shell is StartSession without a document
// (SSM-SessionManagerRunShell, with the account's Session Manager
// preferences); a command runs on a terminal, or without one with its
// stdout, stderr and exit code kept apart.
const (
	InteractiveCommandDocument    = "AWS-StartInteractiveCommand"
	NonInteractiveCommandDocument = "AWS-StartNonInteractiveCommand"
)

// ShellSpec says what a shell session runs and where its bytes go.
type ShellSpec struct {
	// Command runs with sh -c on the target; empty opens a shell.
	Command string
	// Terminal is set when the person is at a terminal: the command then
	// runs on the target's terminal too (InteractiveCommands). Without
	// one it runs with pipes (NonInteractiveCommands), and the exit code
	// comes back.
	Terminal bool
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
	// Sizes brings the local terminal's size, the first at once and then
	// every change; nil when there is no terminal.
	Sizes <-chan [2]int
}

// Shell runs a shell session on target until the agent ends it (the
// shell or command exited) or ctx ends, which terminates it. It returns
// the command's exit code when the session reported one.
func (c Connector) Shell(ctx context.Context, target string, spec ShellSpec) (code int, known bool, err error) {
	in := &ssm.StartSessionInput{Target: aws.String(target), Reason: aws.String("passport shell")}
	switch {
	case spec.Command == "":
	case spec.Terminal:
		in.DocumentName = aws.String(InteractiveCommandDocument)
		in.Parameters = map[string][]string{"command": {spec.Command}}
	default:
		in.DocumentName = aws.String(NonInteractiveCommandDocument)
		in.Parameters = map[string][]string{"command": {spec.Command}, "separateOutputStream": {"true"}}
	}
	s, err := c.start(ctx, in)
	if err != nil {
		return 0, false, err
	}
	defer s.End()
	sh, err := s.Shell()
	if err != nil {
		return 0, false, err
	}
	if spec.Sizes != nil {
		go func() {
			for {
				select {
				case size := <-spec.Sizes:
					sh.Resize(size[0], size[1])
				case <-s.Done():
					return
				}
			}
		}()
	}
	if spec.Stdin != nil {
		// Input stops with the session; a read still waiting on the
		// person's stdin then writes nowhere.
		go io.Copy(sh, spec.Stdin)
	}
	var copies sync.WaitGroup
	copies.Add(2)
	go func() { defer copies.Done(); io.Copy(spec.Stdout, sh) }()
	go func() { defer copies.Done(); io.Copy(spec.Stderr, sh.Stderr()) }()
	done := make(chan struct{})
	go func() { copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	// The agent ends a session whose shell exited with an empty
	// ChannelClosed; anything it says there is why it could not go on.
	var closed *ssmsession.ClosedError
	switch serr := s.Err(); {
	case errors.As(serr, &closed) && closed.Output == "":
	case errors.As(serr, &closed):
		return 0, false, fmt.Errorf("session %s to %s ended: %s", s.ID, target, closed.Output)
	case serr != nil && !errors.Is(serr, ssmsession.ErrClosed):
		return 0, false, fmt.Errorf("session %s to %s: %w", s.ID, target, serr)
	}
	code, known = sh.ExitCode()
	return code, known, nil
}

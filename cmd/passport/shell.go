package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

func newShellCommand() *cobra.Command {
	var f connectFlags
	cmd := &cobra.Command{
		Use:   "shell <target> [-- command...]",
		Short: "Open a shell, or run a command, on a target through Session Manager",
		Long: `shell opens a Session Manager shell session on the target: sh on a
terminal, as the user your account's Session Manager preferences say
(ssm-user unless Run As is on), with your terminal's size kept in step.
Leave the shell with exit.

With a command, it runs the command there instead: on a terminal when you
are at one (AWS-StartInteractiveCommand), otherwise with its stdout and
stderr apart (AWS-StartNonInteractiveCommand), and passport exits with the
command's exit code.

    passport shell i-0123456789abcdef0
    passport shell web-1 -- systemctl status nginx

The target is an instance id, or the name of a target of a request you
hold. A dropped websocket is resumed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, _, err := resolveTarget(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// Shells are Session Manager's own, as the account's
			// preferences say, never through the Passport service: they
			// take the person's own AWS credentials.
			api, err := f.sessions(ctx, nil)
			if err != nil {
				return err
			}
			command := args[1:]
			if len(command) > 0 && command[0] == "--" {
				command = command[1:]
			}
			spec := connect.ShellSpec{
				Command: strings.Join(command, " "),
				Stdin:   cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
			}
			if in, out, ok := terminal(cmd); ok {
				restore, err := rawTerminal(in)
				if err != nil {
					return err
				}
				defer restore()
				spec.Terminal = true
				spec.Sizes = terminalSizes(out)
			}
			code, known, err := connect.Connector{API: api}.Shell(ctx, target, spec)
			if err != nil {
				return err
			}
			if known && code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	// Everything after the target is the command, dashes and all.
	cmd.Flags().SetInterspersed(false)
	f.register(cmd)
	return cmd
}

// terminal reports whether the command's stdin and stdout are both a
// terminal, and their file descriptors.
func terminal(cmd *cobra.Command) (in, out int, ok bool) {
	i, iok := cmd.InOrStdin().(*os.File)
	o, ook := cmd.OutOrStdout().(*os.File)
	if !iok || !ook || !term.IsTerminal(int(i.Fd())) || !term.IsTerminal(int(o.Fd())) {
		return 0, 0, false
	}
	return int(i.Fd()), int(o.Fd()), true
}

// rawTerminal puts the terminal in raw mode, so that every key (Ctrl-C
// too) goes to the target, and returns what puts it back.
func rawTerminal(fd int) (func(), error) {
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("setting the terminal to raw mode: %w", err)
	}
	return func() { term.Restore(fd, old) }, nil
}

// terminalSizes sends the terminal's size now and after every SIGWINCH.
func terminalSizes(fd int) <-chan [2]int {
	sizes := make(chan [2]int, 1)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		for {
			if cols, rows, err := term.GetSize(fd); err == nil {
				select {
				case sizes <- [2]int{cols, rows}:
				default: // the previous size is still unsent; the next wins
				}
			}
			<-winch
		}
	}()
	return sizes
}

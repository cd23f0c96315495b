// Command passport is Passport's command line: for people who need access
// (login, ssh, rdp, tunnel, ssh-config, audit) and for operators (reconcile,
// lab).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		fmt.Fprintln(os.Stderr, "passport:", err)
		os.Exit(1)
	}
}

// exitError ends passport with a command's own exit code, saying nothing:
// the command has said what it had to.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "passport",
		Short: "Time-boxed, audited access to servers in private AWS networks",
		Long: `Passport grants a person time-boxed access to servers through AWS Systems
Manager: a short-lived user on each server, an SSH certificate or a
generated password valid for the request's window, and a Session Manager
tunnel to connect. When the window ends the user is removed.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newLabCommand())
	root.AddCommand(newReconcileCommand())
	root.AddCommand(newServeCommand())
	root.AddCommand(newLedgerCommand())
	root.AddCommand(newDocumentsCommand())
	root.AddCommand(newAuditCommand())
	root.AddCommand(newSessionsCommand())
	root.AddCommand(newPolicyCommand())
	root.AddCommand(newApproveCommand())
	root.AddCommand(newDenyCommand())
	root.AddCommand(newReviewCommand())
	root.AddCommand(newRequestCommand())
	root.AddCommand(newSSHCommand())
	root.AddCommand(newProxyCommand())
	root.AddCommand(newShellCommand())
	root.AddCommand(newTunnelCommand())
	root.AddCommand(newRDPCommand())
	root.AddCommand(newSSHConfigCommand())
	root.AddCommand(newLoginCommand())
	root.AddCommand(newWhoamiCommand())
	root.AddCommand(newLogoutCommand())
	return root
}

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

const requestsHelp = `Passport keeps the access requests you hold in its config directory
(PASSPORT_CONFIG_DIR, by default ~/.config/passport), one directory per
request under requests/: the user name, expiry and targets, the
certificate, and the private key (mode 0600) when Passport generated it.
'passport request create' fills it, and so does 'passport request import'
after terraform apply. A request made through a Passport service opens its
sessions through that service, with your sign-in.`

func newProxyCommand() *cobra.Command {
	var f connectFlags
	cmd := &cobra.Command{
		Use:   "proxy <target> [port]",
		Short: "Carry stdin and stdout to a target's port through Session Manager (for ProxyCommand)",
		Long: `proxy opens a Session Manager session to a port of the target (22 by
default: AWS-StartSSHSession; any other port: AWS-StartPortForwardingSession)
and joins it to stdin and stdout, for OpenSSH's ProxyCommand:

    ssh -o ProxyCommand='passport proxy %h %p' user@i-0123456789abcdef0

The target is an instance id, or the name of a target of a request you
hold. A dropped websocket is resumed; the session is terminated when OpenSSH
is done, on Ctrl-C, or on SIGHUP.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			port := 22
			if len(args) == 2 {
				var err error
				if port, err = parsePort(args[1]); err != nil {
					return err
				}
			}
			target, req, err := resolveTarget(args[0])
			if err != nil {
				return err
			}
			// OpenSSH ends its ProxyCommand with SIGHUP; the session must
			// still be terminated.
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGHUP)
			defer stop()
			// ssh hands its ProxyCommand's stderr to the person's terminal:
			// the proxy, which lives as long as the login, says when the
			// window is about to end.
			warnExpiry(ctx, cmd.ErrOrStderr(), req, realClock)
			api, err := f.sessions(ctx, req)
			if err != nil {
				return err
			}
			doc := connect.PortForwardDocument
			if port == 22 {
				doc = connect.SSHDocument
			}
			s, err := connect.Connector{API: api}.Start(ctx, target, port, doc)
			if err != nil {
				return err
			}
			defer s.End()
			conn, err := s.Conn()
			if err != nil {
				return err
			}
			if err := connect.Pipe(ctx, conn, cmd.InOrStdin(), cmd.OutOrStdout()); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("session %s to %s: %w", s.ID, target, err)
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// resolveTarget resolves a target argument to an instance id and the live
// request held for it: a name must be held; an instance id that is not
// held is used as it is, with no request (the person's own AWS access).
func resolveTarget(arg string) (string, *connect.Request, error) {
	_, req, t, err := heldTarget(arg)
	switch {
	case err == nil:
		return t.InstanceID, &req, nil
	case connect.IsInstanceID(arg):
		return arg, nil, nil
	}
	return "", nil, err
}

func newSSHCommand() *cobra.Command {
	var f connectFlags
	var identity string
	cmd := &cobra.Command{
		Use:   "ssh <target> [ssh arguments or remote command]",
		Short: "Log in to a target with OpenSSH through Session Manager",
		Long: `ssh runs OpenSSH's ssh as the short-lived user of your live access request
for the target, with the request's key and certificate, through a Session
Manager tunnel ('passport proxy' as ProxyCommand). Host keys are kept in
Passport's own known_hosts, by instance id: the first login to a host
accepts its key, a changed key is refused.

Everything after the target goes to ssh: options, or a remote command.

    passport ssh i-0123456789abcdef0
    passport ssh web-1 -- sudo journalctl -u nginx

` + requestsHelp,
		Example: "  passport ssh -i ~/.ssh/id_ed25519 i-0123456789abcdef0 uptime",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, req, target, err := heldTarget(args[0])
			if err != nil {
				return err
			}
			osh, err := f.openSSH(store, identity)
			if err != nil {
				return err
			}
			opts, err := osh.Options(req)
			if err != nil {
				return err
			}
			ssh, err := exec.LookPath("ssh")
			if err != nil {
				return errors.New("OpenSSH's ssh is not installed (or not on PATH): install the openssh-client package")
			}
			if err := os.MkdirAll(filepath.Dir(store.KnownHostsFile()), 0o700); err != nil {
				return err
			}
			argv := append([]string{"ssh"}, connect.Args(opts)...)
			argv = append(argv, target.InstanceID)
			argv = append(argv, args[1:]...)
			// ssh takes over the terminal and its signals; the proxy it
			// starts terminates the session.
			return syscall.Exec(ssh, argv, os.Environ())
		},
	}
	// Everything after the target belongs to ssh, dashes and all.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&identity, "identity", "i", "", "your private key, when the request was issued for your own public key")
	f.register(cmd)
	return cmd
}

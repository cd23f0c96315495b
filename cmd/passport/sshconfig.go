package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

func newSSHConfigCommand() *cobra.Command {
	var f connectFlags
	var identity, output string
	cmd := &cobra.Command{
		Use:   "ssh-config",
		Short: "Print an ssh_config for every target of your live access requests",
		Long: `ssh-config prints an ssh_config with a Host entry per target of your live
access requests: the instance id and the computer name as aliases, the
short-lived user, the request's key and certificate, and 'passport proxy'
as ProxyCommand. With it, ssh, scp, rsync and Ansible reach the targets
through Session Manager:

    passport ssh-config -o ~/.ssh/passport.config
    scp -F ~/.ssh/passport.config notes.txt web-1:
    rsync -e 'ssh -F ~/.ssh/passport.config' -a site/ web-1:site/

Or add 'Include ~/.ssh/passport.config' at the top of ~/.ssh/config. Run it
again after each new request: entries stop working when a request expires.

` + requestsHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := requestStore()
			if err != nil {
				return err
			}
			now := time.Now()
			live, err := store.Live(now)
			if err != nil {
				return err
			}
			if len(live) == 0 {
				return fmt.Errorf("you hold no live access request in %s: ask for one with `passport request create`, or import Terraform's with `passport request import`", store.Dir)
			}
			osh, err := f.openSSH(store, identity)
			if err != nil {
				return err
			}
			text, err := osh.SSHConfig(live, now)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(store.KnownHostsFile()), 0o700); err != nil {
				return err
			}
			if output == "" {
				_, err = fmt.Fprint(cmd.OutOrStdout(), text)
				return err
			}
			// OpenSSH refuses a config that others may write; an older
			// file keeps its mode through WriteFile, hence the Chmod.
			if err := os.WriteFile(output, []byte(text), 0o600); err != nil {
				return err
			}
			return os.Chmod(output, 0o600)
		},
	}
	cmd.Flags().StringVarP(&identity, "identity", "i", "", "your private key, for requests issued for your own public key")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the config to this file instead of stdout")
	f.register(cmd)
	return cmd
}

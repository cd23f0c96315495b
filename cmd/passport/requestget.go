package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

func newRequestGetCommand() *cobra.Command {
	var (
		srv      serverFlags
		identity string
	)
	cmd := &cobra.Command{
		Use:   "get ID [--identity FILE]",
		Short: "Fetch an active request from the Passport service and keep it for ssh, tunnel and ssh-config",
		Long: `get reads access request ID from the Passport service and, when it is
active, keeps it here like one passport request create made: the
certificate the service signed for your public key, the short-lived user
and the targets. Use it for a request you made in the Passport portal, or
one that waited for approval and has since been granted.

The service never had your private key: --identity names it (the file
whose .pub you gave), or passport looks for the key among ~/.ssh/id_* by
the public key the request was made for. The connect commands then use it.

This talks to the Passport service (--server or PASSPORT_SERVER), signed
in as passport login --server left you.

` + requestsHelp,
		Example: `  passport request get ar-0123456789abcdef --server https://passport.example.com --identity ~/.ssh/id_ed25519
  passport ssh web-1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := requestID(args[0])
			if err != nil {
				return err
			}
			if !srv.on() {
				return errors.New("request get reads a request from the Passport service: give --server https://passport.example.com (or set PASSPORT_SERVER); a request made in direct mode is already kept here")
			}
			c, err := srv.signedIn(cmd.Context(), nil)
			if err != nil {
				return err
			}
			r, err := c.Get(cmd.Context(), id)
			if err != nil {
				return serviceError(srv.server(), err)
			}
			switch {
			case r.State == "pending" && r.Approval != nil:
				return fmt.Errorf("access request %s waits for %s until %s: run this again once it is granted", r.ID, approvers(r.Approval), r.Approval.Deadline.UTC().Format(time.RFC3339))
			case r.State != string(access.Active) || !time.Now().Before(r.ExpiresAt):
				return fmt.Errorf("access request %s is %s: there is nothing to connect to; ask again (passport request create, or the portal)", r.ID, r.State)
			}
			key, err := identityFor(identity, r.PublicKey)
			if err != nil {
				return fmt.Errorf("access request %s: %w", r.ID, err)
			}
			names := map[string]string{}
			if found, err := c.Targets(cmd.Context(), client.TargetFilter{}); err == nil {
				for _, in := range found {
					if connect.ValidName(in.ComputerName) {
						names[in.InstanceID] = in.ComputerName
					}
				}
			}
			ca, err := absPath(srv.ca)
			if err != nil {
				return fmt.Errorf("--server-ca: %w", err)
			}
			store, err := requestStore()
			if err != nil {
				return err
			}
			held := heldRequest(r, names, srv.server(), ca)
			held.IdentityFile = key
			if err := store.Save(held, connect.Credential{Certificate: r.Certificate}); err != nil {
				return fmt.Errorf("access request %s could not be kept here: %w", r.ID, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Access request %s of %s kept here, with your key %s.\n", r.ID, r.Requester, key)
			printRequest(out, r, names)
			for _, t := range held.Targets {
				if t.Windows {
					fmt.Fprintf(cmd.ErrOrStderr(), "passport: warning: no password for Windows target %s is kept here: it went, sealed, to the call that provisioned it\n", t.InstanceID)
				}
			}
			if len(held.Targets) > 0 {
				fmt.Fprintf(out, "Connect with: passport %s %s\n", connectVerb(held.Targets[0]), targetName(held.Targets[0]))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&identity, "identity", "i", "", "your private key, whose public half the request was made for (default: the one of ~/.ssh/id_* that matches)")
	srv.register(cmd)
	return cmd
}

// identityFor finds the private key of pub: the file named, checked
// against its .pub (or the key itself, when it has no passphrase), or
// else the ~/.ssh/id_* key whose .pub is pub.
func identityFor(named, pub string) (string, error) {
	if named != "" {
		path, err := filepath.Abs(named)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("--identity: %w", err)
		}
		got, known := publicOf(path)
		if known && !sameKey(got, pub) {
			return "", fmt.Errorf("--identity %s is not the key the request was made for (its certificate is for %s): name the private key of that public key", path, keyFingerprint(pub))
		}
		return path, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("name your private key with --identity (no home directory to look in: %w)", err)
	}
	pubs, _ := filepath.Glob(filepath.Join(home, ".ssh", "id_*.pub"))
	for _, p := range pubs {
		if b, err := os.ReadFile(p); err == nil && sameKey(string(b), pub) {
			key := strings.TrimSuffix(p, ".pub")
			if _, err := os.Stat(key); err == nil {
				return key, nil
			}
		}
	}
	return "", fmt.Errorf("none of your ~/.ssh/id_* keys is the one the request was made for (%s): name its private key with --identity", keyFingerprint(pub))
}

// publicOf is the public key of the private key at path, from its .pub,
// or from the key itself when it is not encrypted; known is false when
// neither says.
func publicOf(path string) (string, bool) {
	if b, err := os.ReadFile(path + ".pub"); err == nil {
		return string(b), true
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	signer, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) && missing.PublicKey != nil {
		return string(ssh.MarshalAuthorizedKey(missing.PublicKey)), true
	}
	if err != nil {
		return "", false
	}
	return string(ssh.MarshalAuthorizedKey(signer.PublicKey())), true
}

// keyFingerprint names a public key as ssh-keygen -l does.
func keyFingerprint(pub string) string {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		return "a key this client cannot read"
	}
	return ssh.FingerprintSHA256(k)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/identity"
)

// samlFlags are the settings login and whoami share. Each has an
// environment variable so a team can set them once in a shell profile.
type samlFlags struct {
	metadata        string
	spEntityID      string
	groupsAttribute string
	session         string
	allowSHA1       bool
}

func (f *samlFlags) register(cmd *cobra.Command, withSAML bool) {
	if withSAML {
		cmd.Flags().StringVar(&f.metadata, "metadata", os.Getenv("PASSPORT_SAML_METADATA"), "IdP metadata, a file or an http(s) URL (env PASSPORT_SAML_METADATA)")
		cmd.Flags().StringVar(&f.spEntityID, "sp-entity-id", envOr("PASSPORT_SAML_SP_ENTITY_ID", "passport"), "Passport's entity ID at the IdP (env PASSPORT_SAML_SP_ENTITY_ID)")
		cmd.Flags().StringVar(&f.groupsAttribute, "groups-attribute", envOr("PASSPORT_SAML_GROUPS_ATTRIBUTE", identity.DefaultGroupsAttribute), "Name of the SAML attribute listing your groups (env PASSPORT_SAML_GROUPS_ATTRIBUTE)")
		cmd.Flags().BoolVar(&f.allowSHA1, "insecure-allow-sha1", os.Getenv("PASSPORT_SAML_INSECURE_ALLOW_SHA1") == "true",
			"INSECURE: accept responses the IdP signs with SHA-1, which is broken; only until the IdP signs with SHA-256 (env PASSPORT_SAML_INSECURE_ALLOW_SHA1=true)")
	}
	cmd.Flags().StringVar(&f.session, "session", os.Getenv("PASSPORT_SESSION"), "session file (env PASSPORT_SESSION; default passport/session.json in your config directory)")
}

func (f *samlFlags) sessionPath() (string, error) {
	if f.session != "" {
		return f.session, nil
	}
	return identity.DefaultSessionPath()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newLoginCommand() *cobra.Command {
	var f samlFlags
	var srv serverFlags
	var noBrowser bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in with your identity provider (SAML) and keep the session",
		Long: `Login signs you in with your organisation's identity provider over SAML 2.0.

With --server (or PASSPORT_SERVER) you sign in to that Passport service: it
opens your browser at the service, which sends you to the IdP; once you
are signed in the service hands this command a one-time code on a random
127.0.0.1 port, and the command trades it (with a secret only it holds)
for a service token kept in your config directory, readable by you alone,
until your IdP session ends or you run passport logout --server. The token
never appears in a URL.

Without a server (direct mode) it opens your browser at the IdP, receives
the signed response on a random 127.0.0.1 port, verifies it against the
IdP metadata and keeps it in your config directory until the IdP's session
ends. The Passport provider verifies that session again on every run.`,
		Example: "  passport login --server https://passport.example.com\n  passport login --metadata https://idp.example.com/metadata",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if at, err := srv.chosen(cmd, "metadata", "session", "sp-entity-id", "groups-attribute"); at || err != nil {
				if err != nil {
					return err
				}
				return loginAtService(cmd, &srv, noBrowser, timeout)
			}
			if f.metadata == "" {
				return errors.New("--metadata is required: the IdP metadata file or URL (or set PASSPORT_SAML_METADATA)")
			}
			path, err := f.sessionPath()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			md, err := identity.LoadMetadata(ctx, f.metadata)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			s, err := identity.Login(ctx, identity.LoginConfig{
				Metadata: md, MetadataSource: f.metadata,
				SPEntityID: f.spEntityID, GroupsAttribute: f.groupsAttribute, InsecureAllowSHA1: f.allowSHA1,
				Open: func(url string) error { return openBrowser(out, cmd.ErrOrStderr(), url, noBrowser) },
			})
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("no sign-in within %s; run passport login again", timeout)
			}
			if err != nil {
				return err
			}
			if err := identity.SaveSession(path, s); err != nil {
				return err
			}
			fmt.Fprintf(out, "Signed in as %s%s until %s.\n", s.Subject, groupsSuffix(s.Groups), s.Expires.Local().Format(time.RFC1123))
			return nil
		},
	}
	f.register(cmd, true)
	srv.register(cmd)
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "print the sign-in URL instead of opening a browser")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the sign-in")
	return cmd
}

// openBrowser starts the desktop's browser, or prints the URL when asked
// to or when there is none. The URL goes to out alone: it carries nothing
// secret, but scripts read it from there.
func openBrowser(out, errOut io.Writer, url string, noBrowser bool) error {
	opener := "xdg-open"
	if runtime.GOOS == "darwin" {
		opener = "open"
	}
	if !noBrowser {
		if bin, err := exec.LookPath(opener); err == nil {
			c := exec.Command(bin, url)
			if err := c.Start(); err == nil {
				go c.Wait()
				fmt.Fprintf(errOut, "Opened your browser to sign in; waiting for the identity provider.\nIf no browser appeared, open this URL:\n\n%s\n\n", url)
				return nil
			}
		}
		fmt.Fprintf(errOut, "Cannot open a browser (%s); open the URL below yourself.\n", opener)
	}
	fmt.Fprintf(out, "Open this URL in your browser to sign in:\n\n%s\n\n", url)
	return nil
}

func groupsSuffix(groups []string) string {
	if len(groups) == 0 {
		return " (no groups)"
	}
	return " (groups: " + strings.Join(groups, ", ") + ")"
}

func newWhoamiCommand() *cobra.Command {
	var f samlFlags
	var srv serverFlags
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who your SAML session says you are",
		Long: `Whoami verifies the stored response again, exactly as the provider does,
and prints the subject, groups and expiry it vouches for. It verifies
against --metadata (or PASSPORT_SAML_METADATA), else against the IdP
metadata recorded at login; a session Passport would now refuse is
refused here too.

With --server (or PASSPORT_SERVER) it asks that Passport service instead
who your token stands for.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if at, err := srv.chosen(cmd, "metadata", "session", "sp-entity-id", "groups-attribute"); at || err != nil {
				if err != nil {
					return err
				}
				return whoamiAtService(cmd, &srv)
			}
			path, err := f.sessionPath()
			if err != nil {
				return err
			}
			s, err := identity.LoadSession(path)
			if err != nil {
				return err
			}
			if !time.Now().Before(s.Expires) {
				return fmt.Errorf("the session for %s expired at %s; run passport login", s.Subject, s.Expires.Local().Format(time.RFC1123))
			}
			source := f.metadata
			if source == "" {
				source = s.Metadata
			}
			if source == "" {
				return fmt.Errorf("the session %s does not say which IdP metadata it was made with; give --metadata (or PASSPORT_SAML_METADATA)", path)
			}
			md, err := identity.LoadMetadata(cmd.Context(), source)
			if err != nil {
				return err
			}
			c, err := s.Verify(identity.Options{Metadata: md, SPEntityID: f.spEntityID, GroupsAttribute: f.groupsAttribute, InsecureAllowSHA1: f.allowSHA1})
			if err != nil {
				return fmt.Errorf("the stored session is not accepted: %w; run passport login", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "subject: %s\n", c.Subject)
			fmt.Fprintf(w, "groups:  %s\n", strings.Join(c.Groups, ", "))
			left := strings.TrimSuffix(time.Until(c.Expires).Round(time.Minute).String(), "0s")
			fmt.Fprintf(w, "expires: %s (in %s)\n", c.Expires.Local().Format(time.RFC1123), left)
			return nil
		},
	}
	f.register(cmd, true)
	srv.register(cmd)
	return cmd
}

func newLogoutCommand() *cobra.Command {
	var f samlFlags
	var srv serverFlags
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Forget your SAML session",
		Long: `Logout removes the session passport login stored. It does not end your
session at the identity provider, nor access already granted.

With --server (or PASSPORT_SERVER) it revokes your token at that Passport
service, on every replica at once, and then removes it from your config
directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if at, err := srv.chosen(cmd, "session"); at || err != nil {
				if err != nil {
					return err
				}
				return logoutAtService(cmd, &srv)
			}
			path, err := f.sessionPath()
			if err != nil {
				return err
			}
			if _, err := identity.LoadSession(path); errors.Is(err, identity.ErrNoSession) {
				fmt.Fprintln(cmd.OutOrStdout(), "Not signed in.")
				return nil
			}
			if err := identity.RemoveSession(path); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Signed out.")
			return nil
		},
	}
	f.register(cmd, false)
	srv.register(cmd)
	return cmd
}

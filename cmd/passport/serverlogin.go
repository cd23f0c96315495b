package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/identity"
)

// callbackPath is where the service sends the browser back to the CLI.
const callbackPath = "/passport/callback"

// loginAtService signs a person in to the service in their browser: the
// service is the SAML service provider, and hands the CLI a one-time code
// through a redirect to a listener on 127.0.0.1. The CLI trades the code,
// with the verifier only it knows, for a token, so the token itself never
// appears in a URL, the browser's history or a log.
func loginAtService(cmd *cobra.Command, f *serverFlags, noBrowser bool, timeout time.Duration) error {
	c, err := f.anonymous()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening on 127.0.0.1 for the sign-in to come back: %w", err)
	}
	defer ln.Close()
	verifier, state := randomText(), randomText()
	sum := sha256.Sum256([]byte(verifier))
	start := c.URL().JoinPath(api.PathLoginCLI)
	start.RawQuery = url.Values{
		"redirect_uri":          {"http://" + ln.Addr().String() + callbackPath},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"state":                 {state},
	}.Encode()

	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	done := make(chan signedIn, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: callback(ctx, c, verifier, state, done)}
	go srv.Serve(ln)
	defer func() {
		// Shutdown, not Close: the browser's last page must be delivered
		// before the listener goes.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()

	out := cmd.OutOrStdout()
	if err := openBrowser(out, cmd.ErrOrStderr(), start.String(), noBrowser); err != nil {
		return err
	}
	var got signedIn
	select {
	case got = <-done:
	case <-ctx.Done():
		if cmd.Context().Err() != nil {
			return cmd.Context().Err()
		}
		return fmt.Errorf("no sign-in within %s; run passport login --server %s again", timeout, f.server())
	}
	if got.err != nil {
		return serviceError(f.server(), got.err)
	}
	if err := client.SaveToken(f.server(), got.token); err != nil {
		return fmt.Errorf("keeping the service token: %w", err)
	}
	p := got.token.Principal
	fmt.Fprintf(out, "Signed in to %s as %s%s until %s.\n", f.server(), p.Name, groupsSuffix(p.Groups), got.token.ExpiresAt.Local().Format(time.RFC1123))
	return nil
}

// signedIn is what the callback learnt: a token, or why there is none.
type signedIn struct {
	token api.Token
	err   error
}

// callback answers the browser's return from the service: a matching
// state and a code it trades for a token. Anything else (a stale tab, a
// page on this machine guessing at the port) is turned away and the CLI
// keeps waiting; only the real return ends the wait.
func callback(ctx context.Context, c *client.Client, verifier, state string, done chan<- signedIn) http.Handler {
	var once bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+callbackPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if once || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 || q.Get("code") == "" {
			identity.ResultPage(w, http.StatusBadRequest, "This is not the sign-in passport login is waiting for. Close this tab and use the one passport login opened.")
			return
		}
		once = true
		tok, err := c.ExchangeCode(ctx, q.Get("code"), verifier)
		if err != nil {
			identity.ResultPage(w, http.StatusForbidden, "Sign-in failed: "+err.Error()+". See the terminal.")
			done <- signedIn{err: err}
			return
		}
		identity.ResultPage(w, http.StatusOK, "Signed in to Passport as "+tok.Principal.Name+". You can close this tab and return to the terminal.")
		done <- signedIn{token: tok}
	})
	// One request at a time: the flag above needs no lock, and a second
	// return of the same sign-in is turned away.
	var serial = make(chan struct{}, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serial <- struct{}{}
		defer func() { <-serial }()
		mux.ServeHTTP(w, r)
	})
}

// randomText is 32 random bytes, base64url: a PKCE verifier (43
// characters, RFC 7636) or a state.
func randomText() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// whoamiAtService prints who the service says the caller is: the person
// signed in here, else the machine the AWS credentials at hand make it.
func whoamiAtService(cmd *cobra.Command, f *serverFlags) error {
	c, err := f.signedIn(cmd.Context(), &awsconfig.Settings{})
	if err != nil {
		return err
	}
	p, err := c.WhoAmI(cmd.Context())
	if err != nil {
		return serviceError(f.server(), err)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "server:  %s\n", f.server())
	fmt.Fprintf(w, "subject: %s\n", p.Name)
	fmt.Fprintf(w, "kind:    %s\n", p.Kind)
	fmt.Fprintf(w, "groups:  %s\n", strings.Join(p.Groups, ", "))
	left := strings.TrimSuffix(time.Until(p.ExpiresAt).Round(time.Minute).String(), "0s")
	fmt.Fprintf(w, "expires: %s (in %s)\n", p.ExpiresAt.Local().Format(time.RFC1123), left)
	return nil
}

// logoutAtService revokes the person's token at the service, then forgets
// it. A token the service no longer knows is forgotten too; one that could
// not be revoked (the service unreachable) is kept, so that logout can be
// run again rather than leave a live token nobody can find.
func logoutAtService(cmd *cobra.Command, f *serverFlags) error {
	server := f.server()
	out := cmd.OutOrStdout()
	if _, err := client.LoadToken(server, time.Now()); errors.Is(err, client.ErrNoToken) && !errors.Is(err, client.ErrTokenExpired) {
		fmt.Fprintf(out, "Not signed in to %s.\n", server)
		return nil
	}
	c, err := f.signedIn(cmd.Context(), nil)
	if err == nil {
		err = c.Logout(cmd.Context())
	}
	if err != nil && !errors.Is(err, client.ErrNoToken) && client.CodeOf(err) != api.CodeUnauthenticated {
		return fmt.Errorf("the token could not be revoked at %s, so it is kept: run passport logout --server %s again: %w", server, server, err)
	}
	if err := client.RemoveToken(server); err != nil {
		return err
	}
	fmt.Fprintf(out, "Signed out of %s.\n", server)
	return nil
}

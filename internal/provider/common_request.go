package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// sudoWarning is what both access request kinds say of sudo: what
// revocation cannot undo once a person has been root.
const sudoWarning = "**Revocation cannot undo what an administrator does.** When the request ends, Passport removes the user, every process it runs or started from its logins (sudo shells included), " +
	"what its UID owns, its sudoers entry and its certificate; but with root or Administrators the user could have made things that belong to no one Passport can find: " +
	"another account or SSH key, a service, timer, cron job or scheduled task running as root or SYSTEM (a service manager starts them outside the user's logins), " +
	"a setuid program, changed configuration or binaries (Passport's own files included), files given to other users, copies of the host's secrets. " +
	"Grant it only to people trusted with the host beyond the window; after a grant you doubt, rebuild the host from its image."

// breakGlassHelp is what both access request kinds say of break_glass.
const breakGlassHelp = "In an emergency, ask for access at once where policy lets you break the glass (policy sees `context.break_glass`): granted without waiting for approvers, " +
	"announced to everyone at once, and owing a review by someone else afterwards (`passport review`). Where policy would only hold the request for approval, it is refused: leave it out to wait for approvers. " +
	"Through the Passport service only (`server`). Default false."

// requestInputs are what a person writes to ask for access, in the managed
// passport_access_request and in its ephemeral twin alike, so both check
// and build a request the same way.
type requestInputs struct {
	Reason               types.String
	Targets              types.Set
	CertificateAuthority types.String
	Duration             types.String
	PublicKey            types.String
	Sudo                 types.Bool
	BreakGlass           types.Bool
}

// validate refuses, naming the attribute, the mistakes that can be seen
// without AWS or the service, with the access core's own rules, which
// check every request again at apply time. Unknown values wait for apply.
// What depends on the provider's mode is checkMode's.
func (in requestInputs) validate(diags *diag.Diagnostics) {
	if known(in.Reason) {
		if err := access.CheckReason(in.Reason.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("reason"), "Invalid reason", err.Error())
		}
	}
	if known(in.Duration) {
		if _, err := parseDuration(in.Duration.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("duration"), "Invalid duration", err.Error())
		}
	}
	if known(in.PublicKey) {
		if _, _, err := sshca.ParseUserPublicKey(in.PublicKey.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("public_key"), "Invalid public key", err.Error())
		}
	}
	if ca := in.CertificateAuthority; known(ca) && sshca.IsRef(ca.ValueString()) {
		if err := sshca.CheckRef(ca.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("certificate_authority"), "Invalid certificate authority",
				"certificate_authority must be the signer attribute of a passport_certificate_authority: "+err.Error())
		}
	}
}

// checkMode refuses, once the provider is configured, what its mode rules
// out. Direct mode signs with a passport_certificate_authority's signer,
// so it needs one. Service mode names one of the service's CAs, or none
// for its default, and never sends a signer, which may be a private key.
func (in requestInputs) checkMode(data *providerData, diags *diag.Diagnostics) {
	ca := in.CertificateAuthority
	attr := path.Root("certificate_authority")
	if data.service == nil && in.BreakGlass.ValueBool() {
		diags.AddAttributeError(path.Root("break_glass"), "Break-glass needs the Passport service",
			"break_glass = true is for the Passport service (set server, or PASSPORT_SERVER): only the service announces break-glass access and follows up the review it owes. "+
				"In direct mode your own AWS credentials already reach the hosts; leave break_glass out.")
	}
	switch {
	case data.service != nil:
		if known(ca) && sshca.IsRef(ca.ValueString()) {
			diags.AddAttributeError(attr, errSignerToService.summary, errSignerToService.err.Error())
		}
	case ca.IsNull():
		diags.AddAttributeError(attr, "Missing certificate authority",
			"certificate_authority is required without server: set it to the signer attribute of a passport_certificate_authority. "+
				"(With server, the Passport service's default CA signs when it is left out.)")
	case known(ca):
		if err := sshca.CheckRef(ca.ValueString()); err != nil {
			diags.AddAttributeError(attr, "Invalid certificate authority",
				"certificate_authority must be the signer attribute of a passport_certificate_authority: "+err.Error())
		}
	}
}

// warnIgnoredOnWindows warns, naming them, when Windows targets come with
// settings only Linux uses: a Windows user signs in with the password its
// server makes, so public_key (and the certificate made from it) is not
// used there. platforms maps instance ids to their platform; an unknown
// one says nothing.
func (in requestInputs) warnIgnoredOnWindows(ctx context.Context, platforms map[string]string, diags *diag.Diagnostics) {
	if !known(in.PublicKey) || in.PublicKey.ValueString() == "" || in.Targets.IsUnknown() {
		return
	}
	var targets, windows []string
	in.Targets.ElementsAs(ctx, &targets, false)
	for _, id := range targets {
		if platforms[id] == access.Windows {
			windows = append(windows, id)
		}
	}
	if len(windows) == 0 {
		return
	}
	slices.Sort(windows)
	diags.AddAttributeWarning(path.Root("public_key"), "public_key is not used on Windows targets",
		fmt.Sprintf("%s %s Windows: its user signs in with the password the server generates (in `passwords`), not with an SSH key. "+
			"public_key and the certificate apply to the Linux targets only; on a request with Windows targets alone they are unused.",
			strings.Join(windows, ", "), map[bool]string{true: "is", false: "are"}[len(windows) == 1]))
}

// ask is what a person asks for, as both modes take it.
type ask struct {
	reason    string
	targets   []string
	ca        string // a signer in direct mode, a CA's name in service mode
	duration  time.Duration
	publicKey string
	sudo      bool
	// breakGlass asks for access at once where policy lets the caller
	// break the glass (service mode only; checkMode refuses it direct).
	breakGlass bool
}

// ask reads the inputs. It returns false when diags got an error.
func (in requestInputs) ask(ctx context.Context, diags *diag.Diagnostics) (ask, bool) {
	a := ask{reason: in.Reason.ValueString(), ca: in.CertificateAuthority.ValueString(), publicKey: in.PublicKey.ValueString(), sudo: in.Sudo.ValueBool(), breakGlass: in.BreakGlass.ValueBool()}
	diags.Append(in.Targets.ElementsAs(ctx, &a.targets, false)...)
	if diags.HasError() {
		return a, false
	}
	slices.Sort(a.targets)
	if known(in.Duration) {
		d, err := parseDuration(in.Duration.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root("duration"), "Invalid duration", err.Error())
			return a, false
		}
		a.duration = d
	}
	return a, true
}

// grantor is what both kinds of passport_access_request run on: the
// access core in this process (direct mode), or the Passport service
// (service mode). Both answer in the access core's grants, so the
// resources map one shape onto the state whatever the mode. As with the
// access core, a call that fails after touching hosts returns the grant
// as it now stands beside the error.
type grantor interface {
	grant(ctx context.Context, a ask) (*access.Grant, error)
	// extend and setTargets take the certificate_authority attribute, which
	// direct mode opens to sign with; the service signs with the CA that
	// signed the request.
	extend(ctx context.Context, g *access.Grant, ca string, d time.Duration) (*access.Grant, error)
	setTargets(ctx context.Context, g *access.Grant, ca string, targets []string) (*access.Grant, error)
	revoke(ctx context.Context, g *access.Grant) error
	check(ctx context.Context, g *access.Grant) (standing, error)
	// platforms says which platform each target is, as Systems Manager
	// knows it, for warnings at plan time; it changes nothing.
	platforms(ctx context.Context, targets []string) (map[string]string, error)
}

// standing is what a check of a request found: the hosts' health, or,
// through the service, that the request was ended there (ended names the
// state it ended in, statuses each target's).
type standing struct {
	access.Health
	ended    string
	statuses map[string]string
}

// newGrantor is the grantor of the provider's mode.
func newGrantor(data *providerData, diags *diag.Diagnostics) grantor {
	if data.service != nil {
		return serviceGrantor{conn: data.service}
	}
	gate := &requestGate{data: data}
	core, err := access.New(access.Config{
		Authorizer:     gate,
		Fleet:          fleet.New(data.aws.SSM, data.fleet),
		Now:            data.now,
		UsernamePrefix: data.usernamePrefix,
		Ledger:         data.ledger,
	})
	if err != nil {
		diags.AddError("Invalid provider configuration", err.Error())
		return nil
	}
	return &directGrantor{data: data, core: core, gate: gate}
}

// directGrantor runs the access core in this process, with the AWS
// credentials at hand.
type directGrantor struct {
	data *providerData
	core *access.Service
	gate *requestGate
}

func (d *directGrantor) openCA(ctx context.Context, ref string) (*sshca.CA, error) {
	ca, err := sshca.OpenRef(ctx, d.data.aws.KMS, ref)
	if err != nil {
		return nil, &failure{summary: "Cannot use the certificate authority", attr: "certificate_authority", err: err}
	}
	return ca, nil
}

func (d *directGrantor) grant(ctx context.Context, a ask) (*access.Grant, error) {
	ca, err := d.openCA(ctx, a.ca)
	if err != nil {
		return nil, err
	}
	req := access.Request{Reason: a.reason, Targets: a.targets, CA: ca, Duration: a.duration, PublicKey: a.publicKey, Sudo: a.sudo}
	if req.Requester, req.Groups, err = d.gate.who(ctx); err != nil {
		return nil, &failure{summary: "Cannot tell who is asking", err: err}
	}
	return d.core.Grant(ctx, req)
}

func (d *directGrantor) extend(ctx context.Context, g *access.Grant, ref string, duration time.Duration) (*access.Grant, error) {
	ca, err := d.openCA(ctx, ref)
	if err != nil {
		return nil, err
	}
	return d.core.Extend(ctx, g.Requester, g, ca, duration)
}

func (d *directGrantor) setTargets(ctx context.Context, g *access.Grant, ref string, targets []string) (*access.Grant, error) {
	ca, err := d.openCA(ctx, ref)
	if err != nil {
		return nil, err
	}
	return d.core.SetTargets(ctx, g.Requester, g, ca, targets)
}

func (d *directGrantor) revoke(ctx context.Context, g *access.Grant) error {
	return d.core.Revoke(ctx, g.Requester, g)
}

func (d *directGrantor) check(ctx context.Context, g *access.Grant) (standing, error) {
	h, err := d.core.Check(ctx, g)
	return standing{Health: h}, err
}

func (d *directGrantor) platforms(ctx context.Context, targets []string) (map[string]string, error) {
	return d.core.Platforms(ctx, targets)
}

// failure is an error the provider reports under a summary of its own,
// on attr when one attribute is at fault.
type failure struct {
	summary string
	attr    string
	err     error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// inputAttributes are the attributes of an access request that an error's
// field may name: the access core's and the service's fields carry the
// same names.
var inputAttributes = map[string]bool{"reason": true, "targets": true, "duration": true, "public_key": true, "certificate_authority": true, "sudo": true}

// addFailure reports err under summary. Errors are told apart by their
// class, never their text: the access core's class (access.ClassOf) or the
// service's code (*api.Error). An invalid input the person fixes in one
// attribute is put on it; anything else (denied by policy, failed on a
// host, the service unavailable) is an error carrying the core's or the
// service's message as it came.
func addFailure(diags *diag.Diagnostics, summary string, err error) {
	var f *failure
	if errors.As(err, &f) {
		if f.attr != "" {
			diags.AddAttributeError(path.Root(f.attr), f.summary, err.Error())
		} else {
			diags.AddError(f.summary, err.Error())
		}
		return
	}
	var field string
	var invalid bool
	if ae := (*api.Error)(nil); errors.As(err, &ae) {
		field, invalid = ae.Field, ae.Code == api.CodeInvalid
	} else {
		field, invalid = access.FieldOf(err), access.ClassOf(err) == access.Invalid
	}
	if invalid && inputAttributes[field] {
		diags.AddAttributeError(path.Root(field), summary, err.Error())
		return
	}
	diags.AddError(summary, err.Error())
}

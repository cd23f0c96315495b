package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passport-access/terraform-provider-passport/internal/access"
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
}

// validate refuses, naming the attribute, the mistakes that can be seen
// without AWS, with the access core's own rules, which check every request
// again at apply time. Unknown values wait for apply.
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
	if known(in.CertificateAuthority) {
		if err := sshca.CheckRef(in.CertificateAuthority.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("certificate_authority"), "Invalid certificate authority",
				"certificate_authority must be the signer attribute of a passport_certificate_authority: "+err.Error())
		}
	}
}

// request builds the access core's request: the inputs, the signer opened
// through KMS when it lives there, and who is asking with their groups. It
// returns false when diags got an error.
func (in requestInputs) request(ctx context.Context, data *providerData, gate *requestGate, diags *diag.Diagnostics) (access.Request, bool) {
	req := access.Request{Reason: in.Reason.ValueString(), PublicKey: in.PublicKey.ValueString(), Sudo: in.Sudo.ValueBool()}
	diags.Append(in.Targets.ElementsAs(ctx, &req.Targets, false)...)
	if diags.HasError() {
		return req, false
	}
	slices.Sort(req.Targets)
	var err error
	if known(in.Duration) {
		if req.Duration, err = parseDuration(in.Duration.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("duration"), "Invalid duration", err.Error())
			return req, false
		}
	}
	if req.CA, err = sshca.OpenRef(ctx, data.aws.KMS, in.CertificateAuthority.ValueString()); err != nil {
		diags.AddAttributeError(path.Root("certificate_authority"), "Cannot use the certificate authority", err.Error())
		return req, false
	}
	if req.Requester, req.Groups, err = gate.who(ctx); err != nil {
		diags.AddError("Cannot tell who is asking", err.Error())
		return req, false
	}
	return req, true
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

// accessService is the access core both access request kinds run on, with
// the gate that asks policy (and knows who is asking) for this run.
func accessService(data *providerData, diags *diag.Diagnostics) (*access.Service, *requestGate) {
	gate := &requestGate{data: data}
	svc, err := access.New(access.Config{
		Authorizer:     gate,
		Fleet:          fleet.New(data.aws.SSM, data.fleet),
		Now:            data.now,
		UsernamePrefix: data.usernamePrefix,
		Ledger:         data.ledger,
	})
	if err != nil {
		diags.AddError("Invalid provider configuration", err.Error())
		return nil, nil
	}
	return svc, gate
}

package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
)

var (
	_ ephemeral.EphemeralResource                   = (*ephemeralAccessRequest)(nil)
	_ ephemeral.EphemeralResourceWithConfigure      = (*ephemeralAccessRequest)(nil)
	_ ephemeral.EphemeralResourceWithClose          = (*ephemeralAccessRequest)(nil)
	_ ephemeral.EphemeralResourceWithValidateConfig = (*ephemeralAccessRequest)(nil)
)

// grantKey is the private-data key under which Open hands Close the grant
// to revoke. It holds no secret: Close needs the user, the targets and the
// certificate's serial, never a key or a password.
const grantKey = "grant"

func newEphemeralAccessRequest() ephemeral.EphemeralResource { return &ephemeralAccessRequest{} }

// ephemeralAccessRequest is access for the length of one Terraform run:
// Open grants it, Close revokes it, and no credential ever reaches the
// state or the plan. It is for runs that configure servers themselves
// (a provisioner's connection block, another provider's configuration).
type ephemeralAccessRequest struct {
	data   *providerData
	grants grantor
}

type ephemeralAccessRequestModel struct {
	Reason               types.String `tfsdk:"reason"`
	Targets              types.Set    `tfsdk:"targets"`
	CertificateAuthority types.String `tfsdk:"certificate_authority"`
	Duration             types.String `tfsdk:"duration"`
	PublicKey            types.String `tfsdk:"public_key"`
	Sudo                 types.Bool   `tfsdk:"sudo"`
	BreakGlass           types.Bool   `tfsdk:"break_glass"`

	ID           types.String `tfsdk:"id"`
	Username     types.String `tfsdk:"username"`
	ExpiresAt    types.String `tfsdk:"expires_at"`
	Certificate  types.String `tfsdk:"certificate"`
	PrivateKey   types.String `tfsdk:"private_key"`
	Passwords    types.Map    `tfsdk:"passwords"`
	TargetStatus types.Map    `tfsdk:"target_status"`
}

func (m ephemeralAccessRequestModel) inputs() requestInputs {
	return requestInputs{Reason: m.Reason, Targets: m.Targets, CertificateAuthority: m.CertificateAuthority, Duration: m.Duration, PublicKey: m.PublicKey, Sudo: m.Sudo, BreakGlass: m.BreakGlass}
}

func (e *ephemeralAccessRequest) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_access_request"
}

func (e *ephemeralAccessRequest) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Access for the length of one Terraform run (Terraform 1.10 and later): opening it grants access exactly as passport_access_request does " +
			"(policy, ledger, audit trail, a user on every target), and Terraform closing it at the end of the run revokes it. " +
			"The certificate, generated key and Windows passwords are never written to the state or the plan. Use it where the run itself connects to " +
			"the servers, such as a provisioner's connection block; for access a person uses after apply, use the passport_access_request resource.",
		Attributes: map[string]schema.Attribute{
			"reason": schema.StringAttribute{
				Required:    true,
				Description: "Why access is needed, for the audit trail: 10 to 256 printable characters on one line.",
				Validators:  []validator.String{stringvalidator.LengthBetween(10, 256)},
			},
			"targets": schema.SetAttribute{
				ElementType: types.StringType,
				Required:    true,
				Description: fmt.Sprintf("Instance ids of the servers (1 to %d), Linux or Windows.", access.MaxTargets),
				Validators: []validator.Set{
					setvalidator.SizeBetween(1, access.MaxTargets),
					setvalidator.ValueStringsAre(stringvalidator.RegexMatches(fleet.InstanceIDPattern, "must be an instance id: "+fleet.InstanceIDRule)),
				},
			},
			"certificate_authority": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				Description: "Who signs the certificate. Without `server` (direct mode): the `signer` attribute of a passport_certificate_authority; required. " +
					"With `server`: the name of one of the Passport service's certificate authorities, or left out for the service's default.",
			},
			"duration": schema.StringAttribute{
				Optional:    true,
				Description: "Upper bound of the window, as a Go duration; default `1h`. Access ends when the run closes the resource, or at the end of the window if the run dies first.",
			},
			"public_key": schema.StringAttribute{
				Optional:    true,
				Description: "Your SSH public key in authorized_keys form; when absent, Passport generates a key pair and returns the private key in `private_key`.",
			},
			"sudo": schema.BoolAttribute{
				Optional:    true,
				Description: "Passwordless sudo on Linux targets, Administrators on Windows targets. Default false. " + sudoWarning,
			},
			"break_glass": schema.BoolAttribute{
				Optional:    true,
				Description: breakGlassHelp,
			},
			"id":          schema.StringAttribute{Computed: true, Description: "The request's id: `ar-` and 16 hex digits."},
			"username":    schema.StringAttribute{Computed: true, Description: "The short-lived user, the same on every target."},
			"expires_at":  schema.StringAttribute{Computed: true, Description: "End of the window (RFC 3339)."},
			"certificate": schema.StringAttribute{Computed: true, Description: "The SSH certificate in authorized_keys form."},
			"private_key": schema.StringAttribute{Computed: true, Sensitive: true, Description: "The generated private key (OpenSSH PEM) when `public_key` is not set; null otherwise."},
			"passwords": schema.MapAttribute{
				ElementType: types.StringType, Computed: true, Sensitive: true,
				Description: "Per Windows target: the generated password of the user on that server.",
			},
			"target_status": schema.MapAttribute{
				ElementType: types.StringType, Computed: true,
				Description: "Per instance id: `active`, or `failed` when provisioning failed there and was undone.",
			},
		},
	}
}

func (e *ephemeralAccessRequest) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	e.data = configuredData(req.ProviderData, &resp.Diagnostics)
	if e.data != nil {
		e.grants = newGrantor(e.data, &resp.Diagnostics)
	}
}

func (e *ephemeralAccessRequest) ValidateConfig(ctx context.Context, req ephemeral.ValidateConfigRequest, resp *ephemeral.ValidateConfigResponse) {
	var m ephemeralAccessRequestModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if !resp.Diagnostics.HasError() {
		m.inputs().validate(&resp.Diagnostics)
	}
	if !resp.Diagnostics.HasError() && e.data != nil {
		m.inputs().checkMode(e.data, &resp.Diagnostics)
	}
}

func (e *ephemeralAccessRequest) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m ephemeralAccessRequestModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, defaultCreateTimeout)
	defer cancel()
	m.inputs().checkMode(e.data, &resp.Diagnostics)
	a, ok := m.inputs().ask(ctx, &resp.Diagnostics)
	if !ok || resp.Diagnostics.HasError() {
		return
	}
	grant, err := e.grants.grant(ctx, a)
	if grant != nil {
		// Even a failed grant may have left a user where the undo could
		// not reach: Close must still revoke it.
		resp.Diagnostics.Append(e.handOver(ctx, resp, grant)...)
	}
	if err != nil {
		addFailure(&resp.Diagnostics, "Access was not granted", err)
		return
	}
	platforms := map[string]string{}
	for _, t := range grant.Targets {
		platforms[t.InstanceID] = t.Platform
	}
	m.inputs().warnIgnoredOnWindows(ctx, platforms, &resp.Diagnostics)
	m.ID = types.StringValue(grant.ID)
	m.Username = types.StringValue(grant.Username)
	m.ExpiresAt = types.StringValue(grant.ExpiresAt.UTC().Format(time.RFC3339))
	m.Certificate = types.StringValue(grant.Certificate)
	m.PrivateKey = types.StringNull()
	if grant.PrivateKey != "" {
		m.PrivateKey = types.StringValue(grant.PrivateKey)
	}
	status := map[string]string{}
	for _, t := range grant.Targets {
		status[t.InstanceID] = string(t.Status)
	}
	m.TargetStatus = stringMap(status)
	m.Passwords = stringMap(grant.Passwords)
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}

// handOver gives Close what it needs to revoke g, without its secrets.
func (e *ephemeralAccessRequest) handOver(ctx context.Context, resp *ephemeral.OpenResponse, g *access.Grant) diag.Diagnostics {
	kept := *g
	kept.PrivateKey, kept.Passwords = "", nil
	b, err := json.Marshal(kept)
	if err != nil {
		var diags diag.Diagnostics
		diags.AddError("Cannot hand the grant to Close", "Access request "+g.ID+" could not be recorded for revocation at the end of the run ("+err.Error()+"); the reconciler revokes it when its window ends.")
		return diags
	}
	return resp.Private.SetKey(ctx, grantKey, b)
}

func (e *ephemeralAccessRequest) Close(ctx context.Context, req ephemeral.CloseRequest, resp *ephemeral.CloseResponse) {
	b, diags := req.Private.GetKey(ctx, grantKey)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() || len(b) == 0 {
		return
	}
	var g access.Grant
	if err := json.Unmarshal(b, &g); err != nil {
		resp.Diagnostics.AddError("Cannot revoke the ephemeral access request", "Its record from Open is unreadable ("+err.Error()+"); the reconciler revokes it when its window ends.")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, defaultDeleteTimeout)
	defer cancel()
	if err := e.grants.revoke(ctx, &g); err != nil {
		resp.Diagnostics.AddError("Ephemeral access request "+g.ID+" was not revoked everywhere",
			err.Error()+"\nThe ledger keeps it open: the reconciler revokes it, at the latest when its window ends at "+g.ExpiresAt.UTC().Format(time.RFC3339)+".")
	}
}

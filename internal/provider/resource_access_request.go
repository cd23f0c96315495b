package provider

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/connect"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
)

var (
	_ resource.Resource                   = (*accessRequestResource)(nil)
	_ resource.ResourceWithConfigure      = (*accessRequestResource)(nil)
	_ resource.ResourceWithValidateConfig = (*accessRequestResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*accessRequestResource)(nil)
	_ resource.ResourceWithImportState    = (*accessRequestResource)(nil)
)

// Default timeouts: one fan-out to every target, plus a revoke of what
// was done when part of it fails.
const (
	defaultCreateTimeout = 10 * time.Minute
	defaultUpdateTimeout = 10 * time.Minute
	defaultDeleteTimeout = 10 * time.Minute
	defaultReadTimeout   = 5 * time.Minute
)

// targetMissing is the target_status of a host where Read found the user
// or its grant record gone. The access core never reports it; it exists
// only to say, in the state, why the request must be replaced.
const targetMissing = "missing"

func newAccessRequestResource() resource.Resource { return &accessRequestResource{} }

type accessRequestResource struct {
	data   *providerData
	grants grantor
}

type accessRequestModel struct {
	// Inputs.
	Reason               types.String   `tfsdk:"reason"`
	Targets              types.Set      `tfsdk:"targets"`
	CertificateAuthority types.String   `tfsdk:"certificate_authority"`
	Duration             types.String   `tfsdk:"duration"`
	PublicKey            types.String   `tfsdk:"public_key"`
	Sudo                 types.Bool     `tfsdk:"sudo"`
	BreakGlass           types.Bool     `tfsdk:"break_glass"`
	Timeouts             timeouts.Value `tfsdk:"timeouts"`
	// Computed.
	ID              types.String `tfsdk:"id"`
	Username        types.String `tfsdk:"username"`
	Requester       types.String `tfsdk:"requester"`
	RequesterGroups types.List   `tfsdk:"requester_groups"`
	IssuedAt        types.String `tfsdk:"issued_at"`
	ExpiresAt       types.String `tfsdk:"expires_at"`
	Certificate     types.String `tfsdk:"certificate"`
	PrivateKey      types.String `tfsdk:"private_key"`
	Serial          types.String `tfsdk:"serial"`
	TargetStatus    types.Map    `tfsdk:"target_status"`
	TargetAddresses types.Map    `tfsdk:"target_addresses"`
	TargetPlatforms types.Map    `tfsdk:"target_platforms"`
	Passwords       types.Map    `tfsdk:"passwords"`
	SSHCommands     types.Map    `tfsdk:"ssh_commands"`
	TunnelCommands  types.Map    `tfsdk:"passport_commands"`
	SSHConfig       types.String `tfsdk:"ssh_config"`
	Active          types.Bool   `tfsdk:"active"`
}

// breakGlassReplaces replaces a request whose break_glass changes, but
// not one from a state written before break_glass existed (null there)
// that leaves it false: upgrading the provider must not replace requests.
var breakGlassReplaces = boolplanmodifier.RequiresReplaceIf(func(_ context.Context, req planmodifier.BoolRequest, resp *boolplanmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !req.StateValue.IsNull() || req.PlanValue.ValueBool()
}, "Changing break_glass replaces the request.", "Changing `break_glass` replaces the request.")

func (m accessRequestModel) inputs() requestInputs {
	return requestInputs{Reason: m.Reason, Targets: m.Targets, CertificateAuthority: m.CertificateAuthority, Duration: m.Duration, PublicKey: m.PublicKey, Sudo: m.Sudo, BreakGlass: m.BreakGlass}
}

func (r *accessRequestResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_access_request"
}

func (r *accessRequestResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		Description: "Time-boxed access to Linux and Windows servers: a short-lived user on every target, with an SSH certificate that lets exactly that user log in to the Linux ones " +
			"and a generated password per Windows one, until the window ends. Destroying the resource removes the user, its home and its processes from every target, revokes the certificate, and the passwords die with the users. " +
			"When the window has ended, or the user has vanished from a target, the next plan replaces the request and says why.",
		Attributes: map[string]schema.Attribute{
			// Required.
			"reason": schema.StringAttribute{
				Required:      true,
				Description:   "Why access is needed, for the audit trail: 10 to 256 printable characters on one line. Changing it replaces the request.",
				Validators:    []validator.String{stringvalidator.LengthBetween(10, 256)},
				PlanModifiers: replace,
			},
			"targets": schema.SetAttribute{
				ElementType: types.StringType,
				Required:    true,
				Description: fmt.Sprintf("Instance ids of the servers (1 to %d). Adding or removing one updates the request in place: the user is created on added servers and removed from removed ones.", access.MaxTargets),
				Validators: []validator.Set{
					setvalidator.SizeBetween(1, access.MaxTargets),
					setvalidator.ValueStringsAre(stringvalidator.RegexMatches(fleet.InstanceIDPattern, "must be an instance id: "+fleet.InstanceIDRule)),
				},
			},
			"certificate_authority": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				Description: "Who signs the certificate. Without `server` (direct mode): the `signer` attribute of a passport_certificate_authority; required. " +
					"With `server`: the name of one of the Passport service's certificate authorities, or left out for the service's default. Changing it replaces the request.",
				PlanModifiers: replace,
			},
			// Optional.
			"duration": schema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString(formatDuration(access.DefaultDuration)),
				Description: fmt.Sprintf("Length of the access window from issued_at, as a Go duration (`90m`, `2h30m`): at least 1m, at most %s. Default `1h`. "+
					"Changing it extends or shortens the window in place with a new certificate.", formatDuration(access.MaxDuration)),
			},
			"public_key": schema.StringAttribute{
				Optional: true,
				Description: "Your SSH public key in authorized_keys form (the content of `id_ed25519.pub`). Recommended: the private key then never leaves your machine. " +
					"When absent, Passport generates a key pair and returns the private key in `private_key`, which then lives in the state. Changing it replaces the request. " +
					"Linux targets only: a Windows target's user signs in with the password its server generates, and the plan warns when Windows targets come with a key.",
				PlanModifiers: replace,
			},
			"sudo": schema.BoolAttribute{
				Optional:      true,
				Computed:      true,
				Default:       booldefault.StaticBool(false),
				Description:   "Grant passwordless sudo on every Linux target and membership of Administrators on every Windows target. Default false. Changing it replaces the request. " + sudoWarning,
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.RequiresReplace()},
			},
			"break_glass": schema.BoolAttribute{
				Optional:      true,
				Computed:      true,
				Default:       booldefault.StaticBool(false),
				Description:   breakGlassHelp + " Changing it replaces the request.",
				PlanModifiers: []planmodifier.Bool{breakGlassReplaces},
			},
			// Computed, fixed for the request's life.
			"id": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				Description: "The request's id: `ar-` and 16 hex digits. The certificate's key id names it, so sshd's logs do too.",
			},
			"username": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				Description: "The short-lived user, the same on every target, never reused.",
			},
			"requester": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				Description: "Who asked: the signed-in person's SAML subject when the provider has a `saml` block, else the ARN of the AWS credentials Terraform ran with (STS GetCallerIdentity). " +
					"It is in the certificate's key id, each host's grant record, the ledger and the audit trail.",
			},
			"requester_groups": schema.ListAttribute{
				ElementType: types.StringType,
				Computed:    true, PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
				Description: "The signed-in person's groups from the identity store when the request was made, as policy saw them (null without SAML). " +
					"They are in the certificate's key id and the ledger, where the reconciler re-checks the grant against policy with them.",
			},
			"issued_at": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				Description: "Start of the window (RFC 3339). The certificate is valid from a minute earlier, for clock skew.",
			},
			"private_key": schema.StringAttribute{
				Computed: true, Sensitive: true, PlanModifiers: keep,
				Description: "The generated private key (OpenSSH PEM) when `public_key` is not set; null otherwise.",
			},
			// Computed, changed by an update.
			"expires_at": schema.StringAttribute{
				Computed:    true,
				Description: "End of the window (RFC 3339): the certificate stops working and each host removes the user.",
			},
			"certificate": schema.StringAttribute{
				Computed:    true,
				Description: "The SSH certificate in authorized_keys form. Write it next to the private key as `<key>-cert.pub`, or pass it with `-o CertificateFile=`.",
			},
			"serial": schema.StringAttribute{
				Computed:    true,
				Description: "The certificate's serial, in decimal as `ssh-keygen -L` prints it. Revocation adds it to each host's revoked keys.",
			},
			"target_status": schema.MapAttribute{
				ElementType: types.StringType,
				Computed:    true,
				Description: "Per instance id: `active` (the user is there), `failed` (provisioning failed and was undone), `revoked` (the user was removed), or `missing` (the user vanished from the host; the next plan replaces the request).",
			},
			"target_addresses": schema.MapAttribute{
				ElementType: types.StringType,
				Computed:    true,
				Description: "Per instance id: the server's IP address as Systems Manager reports it.",
			},
			"target_platforms": schema.MapAttribute{
				ElementType: types.StringType,
				Computed:    true,
				Description: "Per instance id: `Linux` or `Windows`, as Systems Manager reports it. Linux targets take the certificate over SSH, Windows targets a password over Remote Desktop.",
			},
			"passwords": schema.MapAttribute{
				ElementType: types.StringType,
				Computed:    true,
				Sensitive:   true,
				Description: "Per active Windows target: the generated password of the user on that server, its own (at least 24 characters, Windows complexity rules, no characters that trouble RDP clients). " +
					"It is generated on the server and travels to Passport encrypted, so it appears in no Run Command history; it stops working when the window ends. " +
					"It lives in the state like `private_key`; the ephemeral passport_access_request keeps it out of the state altogether.",
			},
			"ssh_commands": schema.MapAttribute{
				ElementType: types.StringType,
				Computed:    true,
				Description: "Per active Linux instance id: a command that logs in, `ssh -i <id>.key -o CertificateFile=<id>-cert.pub <username>@<address>`, " +
					"for the private key saved as `<id>.key` and the certificate as `<id>-cert.pub` (id being this request's id). " +
					"The address is private: run it from inside the network, or through a Session Manager tunnel (`passport ssh`).",
			},
			"passport_commands": schema.MapAttribute{
				ElementType: types.StringType,
				Computed:    true,
				Description: "Per active instance id: `passport ssh <instance-id>` for Linux, `passport rdp <instance-id>` for Windows, which connect through a Session Manager tunnel, with no route to the server needed. " +
					"Run `passport request import` after apply first: it stores this request's certificate (and generated key) for the CLI.",
			},
			"ssh_config": schema.StringAttribute{
				Computed: true,
				Description: "An ssh_config snippet with a Host entry per active Linux target, connecting through `passport proxy`, so that `ssh -F`, scp, rsync and Ansible work " +
					"once `passport request import` has stored the request's certificate (and generated key) under `~/.config/passport/requests`.",
			},
			"active": schema.BoolAttribute{
				Computed: true,
				Description: "Whether the access stands: false once the window has ended or the user has vanished from a target. " +
					"A request that is no longer active is replaced by the next apply, with a warning that says why.",
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Read: true, Update: true, Delete: true}),
		},
	}
}

func (r *accessRequestResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = configuredData(req.ProviderData, &resp.Diagnostics)
	if r.data != nil {
		r.grants = newGrantor(r.data, &resp.Diagnostics)
	}
}

// ValidateConfig refuses at plan time, naming the attribute, the mistakes
// that can be seen without AWS, with the access core's own rules, which
// check every request again at apply time.
func (r *accessRequestResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m accessRequestModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	m.inputs().validate(&resp.Diagnostics)
	if r.data != nil {
		m.inputs().checkMode(r.data, &resp.Diagnostics)
	}
}

func known(v types.String) bool { return !v.IsNull() && !v.IsUnknown() }

// ModifyPlan replaces a request that Read found no longer active, the way
// terraform-provider-tls replaces a certificate that is ready for renewal:
// the plan says "replace" and a warning says why; it is never a silent
// re-create, and never an error that blocks the rest of the plan.
//
// It also refuses what the provider's mode rules out (direct mode needs a
// signer, service mode never sends one), which validation cannot see
// before the provider is configured.
func (r *accessRequestResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	if r.data != nil {
		var config accessRequestModel
		resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
		if resp.Diagnostics.HasError() {
			return
		}
		config.inputs().checkMode(r.data, &resp.Diagnostics)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	r.warnIgnored(ctx, req.Plan, &resp.Diagnostics)
	if req.State.Raw.IsNull() {
		return
	}
	var state accessRequestModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || state.Active.IsNull() || state.Active.ValueBool() {
		return
	}
	// Terraform replaces only for a path whose value changes, so the plan
	// must not promise "still inactive".
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("active"), types.BoolUnknown())...)
	resp.RequiresReplace = append(resp.RequiresReplace, path.Root("active"))
	resp.Diagnostics.AddWarning("Access request "+state.ID.ValueString()+" will be replaced",
		inactiveReason(ctx, state, r.now())+
			" Applying this plan makes a new request: a new user and a new certificate, for a new window.")
}

// warnIgnored warns at plan time about settings the planned targets ignore
// (requestInputs.warnIgnoredOnWindows). The platforms come from Systems
// Manager; when it cannot be asked the plan goes on without the warning,
// and apply checks every target anyway.
func (r *accessRequestResource) warnIgnored(ctx context.Context, plan tfsdk.Plan, diags *diag.Diagnostics) {
	var m accessRequestModel
	if r.grants == nil || plan.Get(ctx, &m).HasError() || !known(m.PublicKey) || m.Targets.IsUnknown() {
		return
	}
	var targets []string
	if m.Targets.ElementsAs(ctx, &targets, false).HasError() {
		return
	}
	platforms, err := r.grants.platforms(ctx, targets)
	if err != nil {
		return
	}
	m.inputs().warnIgnoredOnWindows(ctx, platforms, diags)
}

// inactiveReason says in a sentence why a request is no longer active.
func inactiveReason(ctx context.Context, m accessRequestModel, now time.Time) string {
	statuses := map[string]string{}
	m.TargetStatus.ElementsAs(ctx, &statuses, false)
	var missing []string
	for id, status := range statuses {
		if status == targetMissing {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		return fmt.Sprintf("User %s is gone from %s, so the access it granted no longer stands.", m.Username.ValueString(), strings.Join(missing, ", "))
	}
	if end, err := time.Parse(time.RFC3339, m.ExpiresAt.ValueString()); err == nil && !now.Before(end) {
		return fmt.Sprintf("The access window ended at %s.", m.ExpiresAt.ValueString())
	}
	ended := len(statuses) > 0
	for _, status := range statuses {
		ended = ended && status == string(access.Revoked)
	}
	if ended {
		return "The request was ended outside this configuration (at the Passport service, by an administrator, its requester or its reconciler), and its user removed from every target."
	}
	return "The access no longer stands."
}

func (r *accessRequestResource) now() time.Time {
	if r.data != nil && r.data.now != nil {
		return r.data.now()
	}
	return time.Now()
}

func (r *accessRequestResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan accessRequestModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	a, ok := plan.inputs().ask(ctx, &resp.Diagnostics)
	if !ok {
		return
	}
	grant, err := r.grants.grant(ctx, a)
	if grant != nil {
		// Even a failed grant can leave a user on a host that could not be
		// cleaned: keep it in the state so that destroy revokes it.
		r.setGrant(ctx, &plan, grant, &resp.Diagnostics)
		if err != nil {
			plan.Targets = activeTargets(grant)
		}
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	}
	if err != nil {
		addFailure(&resp.Diagnostics, "Access was not granted", err)
	}
}

func (r *accessRequestResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state accessRequestModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !state.Active.ValueBool() {
		return
	}
	ctx, cancel, grant := begin(ctx, state, state.Timeouts.Read, defaultReadTimeout, &resp.Diagnostics)
	defer cancel()
	if grant == nil {
		return
	}
	health, err := r.grants.check(ctx, grant)
	if err != nil {
		// Not being able to look is not evidence that access is gone: keep
		// the state and say so.
		resp.Diagnostics.AddWarning("Cannot check access request "+state.ID.ValueString(), err.Error())
		return
	}
	if health.ended != "" {
		state.Active = types.BoolValue(false)
		state.TargetStatus = stringMap(health.statuses)
		resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
		return
	}
	if len(health.Unreachable) > 0 {
		resp.Diagnostics.AddWarning("Cannot check access request "+state.ID.ValueString()+" on every target",
			fmt.Sprintf("%s did not answer, so whether user %s is still there is unknown; the state keeps it as it was.", strings.Join(health.Unreachable, ", "), grant.Username))
	}
	if !health.Expired && len(health.Missing) == 0 {
		return
	}
	state.Active = types.BoolValue(false)
	if len(health.Missing) > 0 {
		statuses := map[string]string{}
		resp.Diagnostics.Append(state.TargetStatus.ElementsAs(ctx, &statuses, false)...)
		for _, id := range health.Missing {
			statuses[id] = targetMissing
		}
		state.TargetStatus = stringMap(statuses)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *accessRequestResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state accessRequestModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel, grant := begin(ctx, state, plan.Timeouts.Update, defaultUpdateTimeout, &resp.Diagnostics)
	defer cancel()
	if grant == nil {
		return
	}
	var targets []string
	resp.Diagnostics.Append(plan.Targets.ElementsAs(ctx, &targets, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	slices.Sort(targets)
	duration, err := parseDuration(plan.Duration.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("duration"), "Invalid duration", err.Error())
		return
	}
	durationChanged := !plan.Duration.Equal(state.Duration)
	targetsChanged := !plan.Targets.Equal(state.Targets)

	ca := plan.CertificateAuthority.ValueString()
	// What is applied is what the state records, even when a step fails
	// half-way: the inputs that did not take keep their old values, so the
	// next plan tries them again.
	next := plan
	next.Duration, next.Targets = state.Duration, state.Targets
	// Targets this update does not provision keep the passwords they have.
	next.Passwords = state.Passwords
	fail := func(summary string, err error) {
		r.setGrant(ctx, &next, grant, &resp.Diagnostics)
		resp.Diagnostics.Append(resp.State.Set(ctx, &next)...)
		addFailure(&resp.Diagnostics, summary, err)
	}
	if durationChanged {
		extended, err := r.grants.extend(ctx, grant, ca, duration)
		if extended != nil {
			grant = extended
		}
		if err != nil {
			fail("The access window was not moved everywhere", err)
			return
		}
		next.Duration = plan.Duration
	}
	if targetsChanged {
		changed, err := r.grants.setTargets(ctx, grant, ca, targets)
		if changed != nil {
			grant = changed
		}
		if err != nil {
			next.Targets = activeTargets(grant)
			fail("The targets did not all change", err)
			return
		}
		next.Targets = plan.Targets
	}
	r.setGrant(ctx, &next, grant, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &next)...)
}

func (r *accessRequestResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state accessRequestModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel, grant := begin(ctx, state, state.Timeouts.Delete, defaultDeleteTimeout, &resp.Diagnostics)
	defer cancel()
	if grant == nil {
		return
	}
	// A user Read found missing may still be on the host in part: revoke
	// is harmless on a clean host, so it runs there too.
	for i := range grant.Targets {
		if grant.Targets[i].Status == targetMissing {
			grant.Targets[i].Status = access.Active
		}
	}
	if err := r.grants.revoke(ctx, grant); err != nil {
		// The resource stays in the state, so destroy can be run again.
		addFailure(&resp.Diagnostics, "Access was not revoked everywhere", err)
	}
}

// ImportState refuses: the ledger records the grant but, by design, none of
// its secrets; a generated private key and the Windows passwords exist only
// in the state, so an imported request could not be used.
func (r *accessRequestResource) ImportState(_ context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.AddError("Cannot import an access request",
		fmt.Sprintf("Access request %q cannot be imported: its generated private key and Windows passwords exist only in the Terraform state that created it, and Passport's ledger keeps no secrets. "+
			"Make a new request instead; the old user is removed from each host when its window ends.", req.ID))
}

// begin starts an operation on an existing request: ctx bounded by the
// timeouts block, and the grant rebuilt from the state. The grant is nil
// when diags got an error; cancel is never nil.
func begin(ctx context.Context, state accessRequestModel, timeout func(context.Context, time.Duration) (time.Duration, diag.Diagnostics),
	fallback time.Duration, diags *diag.Diagnostics) (context.Context, context.CancelFunc, *access.Grant) {
	d, tdiags := timeout(ctx, fallback)
	diags.Append(tdiags...)
	if diags.HasError() {
		return ctx, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	grant, err := grantFromState(ctx, state)
	if err != nil {
		diags.AddError("Cannot read access request "+state.ID.ValueString()+" from the state", err.Error())
		return ctx, cancel, nil
	}
	return ctx, cancel, grant
}

// setGrant writes what the access core returned into m's computed
// attributes.
func (r *accessRequestResource) setGrant(ctx context.Context, m *accessRequestModel, g *access.Grant, diags *diag.Diagnostics) {
	m.ID = types.StringValue(g.ID)
	m.Username = types.StringValue(g.Username)
	m.Requester = types.StringValue(g.Requester)
	// Null, not empty, without groups: a state from before groups were kept
	// plans null, and apply must return what was planned.
	m.RequesterGroups = types.ListNull(types.StringType)
	if len(g.Groups) > 0 {
		var d diag.Diagnostics
		m.RequesterGroups, d = types.ListValueFrom(ctx, types.StringType, g.Groups)
		diags.Append(d...)
	}
	m.IssuedAt = types.StringValue(g.IssuedAt.UTC().Format(time.RFC3339))
	m.ExpiresAt = types.StringValue(g.ExpiresAt.UTC().Format(time.RFC3339))
	m.Certificate = types.StringValue(g.Certificate)
	m.Serial = types.StringValue(strconv.FormatUint(g.Serial, 10))
	m.PrivateKey = types.StringNull()
	if g.PrivateKey != "" {
		m.PrivateKey = types.StringValue(g.PrivateKey)
	}
	status, addresses, platforms, commands := map[string]string{}, map[string]string{}, map[string]string{}, map[string]string{}
	// Passwords come from this run when it provisioned a Windows target,
	// and from the state for the ones it did not touch.
	passwords := map[string]string{}
	if !m.Passwords.IsUnknown() && !m.Passwords.IsNull() {
		diags.Append(m.Passwords.ElementsAs(ctx, &passwords, false)...)
	}
	anyActive := false
	for _, t := range g.Targets {
		status[t.InstanceID] = string(t.Status)
		addresses[t.InstanceID] = t.Address
		platforms[t.InstanceID] = cmp.Or(t.Platform, access.Linux)
		if pw, ok := g.Passwords[t.InstanceID]; ok {
			passwords[t.InstanceID] = pw
		}
		if t.Status != access.Active || t.Platform != access.Windows {
			delete(passwords, t.InstanceID)
		}
		if t.Status == access.Active {
			anyActive = true
			if t.Platform != access.Windows {
				commands[t.InstanceID] = sshCommand(g.ID, g.Username, t.Address)
			}
		}
	}
	for id := range passwords {
		if _, ok := status[id]; !ok {
			delete(passwords, id)
		}
	}
	m.TargetStatus, m.TargetAddresses, m.TargetPlatforms, m.SSHCommands = stringMap(status), stringMap(addresses), stringMap(platforms), stringMap(commands)
	m.Passwords = stringMap(passwords)
	m.TunnelCommands, m.SSHConfig = tunnelHints(g, diags)
	m.Active = types.BoolValue(anyActive && r.now().Before(g.ExpiresAt))
}

// tunnelHints are the ways in through Session Manager, for the CLI's
// request store (`passport request import`): one `passport ssh` command per
// active target and an ssh_config snippet. The snippet is the CLI's own
// rendering, without its timestamped header, so the state does not change
// on every read.
func tunnelHints(g *access.Grant, diags *diag.Diagnostics) (types.Map, types.String) {
	commands := map[string]string{}
	req := connect.Request{ID: g.ID, Username: g.Username, ExpiresAt: g.ExpiresAt, HasKey: g.PrivateKey != ""}
	for _, t := range g.Targets {
		switch {
		case t.Status != access.Active:
		case t.Platform == access.Windows:
			commands[t.InstanceID] = "passport rdp " + t.InstanceID
		default:
			commands[t.InstanceID] = "passport ssh " + t.InstanceID
			req.Targets = append(req.Targets, connect.Target{InstanceID: t.InstanceID, Address: t.Address})
		}
	}
	if len(req.Targets) == 0 {
		return stringMap(commands), types.StringValue("")
	}
	config, err := connect.OpenSSH{
		Store: connect.Store{Dir: "~/.config/passport/requests"},
		Proxy: []string{"passport", "proxy"},
	}.Hosts([]connect.Request{req})
	if err != nil {
		diags.AddWarning("No ssh_config snippet for access request "+g.ID, err.Error())
	}
	return stringMap(commands), types.StringValue(strings.TrimPrefix(config, "\n"))
}

// sshCommand is the login command for one target, with the key files
// named after the request so that several requests can sit side by side.
func sshCommand(id, user, address string) string {
	return fmt.Sprintf("ssh -i %[1]s.key -o CertificateFile=%[1]s-cert.pub %[2]s@%[3]s", id, user, address)
}

// grantFromState rebuilds the access core's grant from the state. The user
// key, the serial and the CA key all come from the certificate, so the
// state holds each fact once.
func grantFromState(ctx context.Context, m accessRequestModel) (*access.Grant, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(m.Certificate.ValueString()))
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, errors.New("certificate is a plain public key, not a certificate")
	}
	issued, err := time.Parse(time.RFC3339, m.IssuedAt.ValueString())
	if err != nil {
		return nil, fmt.Errorf("issued_at: %w", err)
	}
	expires, err := time.Parse(time.RFC3339, m.ExpiresAt.ValueString())
	if err != nil {
		return nil, fmt.Errorf("expires_at: %w", err)
	}
	g := &access.Grant{
		ID:          m.ID.ValueString(),
		Username:    m.Username.ValueString(),
		Requester:   m.Requester.ValueString(),
		Reason:      m.Reason.ValueString(),
		Sudo:        m.Sudo.ValueBool(),
		IssuedAt:    issued,
		ExpiresAt:   expires,
		PublicKey:   strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(cert.Key)), "\n"),
		PrivateKey:  m.PrivateKey.ValueString(),
		Certificate: m.Certificate.ValueString(),
		Serial:      cert.Serial,
		CAPublicKey: strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(cert.SignatureKey)), "\n"),
	}
	status, addresses, platforms := map[string]string{}, map[string]string{}, map[string]string{}
	var diags diag.Diagnostics
	if !m.RequesterGroups.IsNull() && !m.RequesterGroups.IsUnknown() {
		diags.Append(m.RequesterGroups.ElementsAs(ctx, &g.Groups, false)...)
	}
	diags.Append(m.TargetStatus.ElementsAs(ctx, &status, false)...)
	diags.Append(m.TargetAddresses.ElementsAs(ctx, &addresses, false)...)
	// A state written before Windows targets has no target_platforms: all
	// of its targets are Linux.
	diags.Append(m.TargetPlatforms.ElementsAs(ctx, &platforms, false)...)
	if diags.HasError() {
		return nil, errors.New("requester_groups is not a list of strings, or target_status, target_addresses or target_platforms is not a map of strings")
	}
	ids := make([]string, 0, len(status))
	for id := range status {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		g.Targets = append(g.Targets, access.Target{InstanceID: id, Platform: cmp.Or(platforms[id], access.Linux), Status: access.TargetStatus(status[id]), Address: addresses[id]})
	}
	return g, nil
}

// activeTargets is the targets attribute that matches where g's user is.
func activeTargets(g *access.Grant) types.Set {
	var ids []attr.Value
	for _, t := range g.Targets {
		if t.Status == access.Active {
			ids = append(ids, types.StringValue(t.InstanceID))
		}
	}
	return types.SetValueMust(types.StringType, ids)
}

func stringMap(m map[string]string) types.Map {
	values := make(map[string]attr.Value, len(m))
	for k, v := range m {
		values[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, values)
}

// parseDuration reads the duration attribute: a Go duration string within
// the access core's bounds.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q is not a duration: write it like 45m, 2h or 1h30m", s)
	}
	if d == 0 {
		return 0, fmt.Errorf("duration %q is zero: give at least 1m", s)
	}
	return d, access.CheckDuration(d)
}

// formatDuration writes whole hours as "12h" rather than "12h0m0s".
func formatDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

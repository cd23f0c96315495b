// Package provider is Passport's Terraform surface: schemas, plan modifiers
// and CRUD functions that map Terraform values onto the packages below it.
// Logic that a reconciler, CLI or test would also need does not live here.
package provider

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/identity"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// Address is the provider's registry address.
const Address = "registry.terraform.io/passport-access/passport"

var (
	_ provider.Provider                       = (*passportProvider)(nil)
	_ provider.ProviderWithEphemeralResources = (*passportProvider)(nil)
)

// New returns a constructor for the provider, as providerserver.Serve and
// terraform-plugin-testing expect it.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &passportProvider{version: version, now: time.Now} }
}

type passportProvider struct {
	version string
	// now is the clock access windows are measured with; tests move it.
	now func() time.Time
	// fleet tunes Run Command polling; the zero value suits AWS, tests on
	// the lab poll faster.
	fleet fleet.Options
}

type providerModel struct {
	Server         types.String    `tfsdk:"server"`
	ServerCAFile   types.String    `tfsdk:"server_ca_file"`
	Region         types.String    `tfsdk:"region"`
	Profile        types.String    `tfsdk:"profile"`
	UsernamePrefix types.String    `tfsdk:"username_prefix"`
	Ledger         types.String    `tfsdk:"ledger"`
	PolicySource   types.String    `tfsdk:"policy_source"`
	Endpoints      *endpointsModel `tfsdk:"endpoints"`
	SAML           *samlModel      `tfsdk:"saml"`
}

type endpointsModel struct {
	SSM         types.String `tfsdk:"ssm"`
	KMS         types.String `tfsdk:"kms"`
	STS         types.String `tfsdk:"sts"`
	SSMMessages types.String `tfsdk:"ssmmessages"`
	DynamoDB    types.String `tfsdk:"dynamodb"`
	EC2         types.String `tfsdk:"ec2"`
}

// providerData is what Configure hands to every resource and data source.
// In service mode only now and service are set: everything else is the
// service's.
type providerData struct {
	// service is the Passport service the provider is a client of, or nil
	// in direct mode.
	service *serviceConn

	aws            *awsconfig.Clients
	now            func() time.Time
	fleet          fleet.Options
	usernamePrefix string
	// ledger records every grant before any host is touched, and the
	// audit trail.
	ledger *ledger.Ledger
	// policySource is where the administrators' Cedar policy is read.
	policySource string
	// samlRequired is set when the configuration has a saml block: the
	// requester is then the person signed in, never the AWS credentials.
	samlRequired bool
	// identity finds and verifies the person behind the run.
	identity identity.Source
}

func (p *passportProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "passport"
	resp.Version = p.version
}

func (p *passportProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	endpoint := func(service, env string) schema.StringAttribute {
		return schema.StringAttribute{
			Optional:    true,
			Description: "URL of the " + service + " endpoint. Overrides " + env + " and the AWS default.",
		}
	}
	resp.Schema = schema.Schema{
		Description: "Passport grants time-boxed, audited access to servers in private AWS networks through Systems Manager.",
		Attributes: map[string]schema.Attribute{
			"server": schema.StringAttribute{
				Optional: true,
				Description: "URL of the Passport service (`https://passport.example.com`). Defaults to PASSPORT_SERVER. " +
					"With it the provider is a client of the service (service mode): the service alone touches servers, signs certificates with its own certificate authorities, " +
					"asks the administrators' policy and writes the ledger, so the provider needs no AWS permission at all. It signs in as the person who ran " +
					"`passport login --server <URL>` (or PASSPORT_TOKEN), else, where the service lets machines in, with the AWS identity at hand (a signed sts:GetCallerIdentity). " +
					"`ledger`, `policy_source`, `username_prefix`, `endpoints` and `saml` are the service's then, and refused here. Without it, the provider does everything itself with your AWS credentials (direct mode).",
			},
			"server_ca_file": schema.StringAttribute{
				Optional:    true,
				Description: "PEM bundle the Passport service's TLS certificate must chain to, for a private CA (a company's, the lab's). Defaults to PASSPORT_SERVER_CA, else the system's roots.",
			},
			"region": schema.StringAttribute{
				Optional:    true,
				Description: "AWS region. Defaults to AWS_REGION or the profile's region. In service mode only a machine sign-in reads AWS settings, and the service names the region.",
			},
			"profile": schema.StringAttribute{
				Optional:    true,
				Description: "Named profile from the shared AWS config and credentials files. Defaults to AWS_PROFILE or the default chain. In service mode, the credentials a machine signs in with.",
			},
			"ledger": schema.StringAttribute{
				Optional: true,
				Description: "Where grants and the audit trail are recorded, before any host is touched: `sqlite:///path/to/ledger.db` for one machine, " +
					"or `dynamodb://table` for a team and its reconcilers. Defaults to PASSPORT_LEDGER, else `~/.local/state/passport/ledger.db`.",
			},
			"policy_source": schema.StringAttribute{
				Optional: true,
				Description: "Where the administrators' Cedar policy is read, before every grant, extension and added target: `ssm:///<parameter name>` " +
					"or `file:///<absolute path>`. Defaults to PASSPORT_POLICY, else `" + policy.DefaultSource + "`. No policy means every request is denied. " +
					"The policy is the administrators', never the requester's: keep the parameter writable by them alone.",
			},
			"username_prefix": schema.StringAttribute{
				Optional:    true,
				Description: "Start of every short-lived user's name, so operators recognise Passport users on a host: 1 to 10 characters of a-z, 0-9 and `-`, starting with a letter. Default `pp-`.",
			},
		},
		Blocks: map[string]schema.Block{
			"endpoints": schema.SingleNestedBlock{
				Description: "Custom service endpoints, as in the AWS provider: for VPC endpoints, FIPS endpoints or the Passport lab.",
				Attributes: map[string]schema.Attribute{
					"ssm":         endpoint("Systems Manager", "AWS_ENDPOINT_URL_SSM"),
					"kms":         endpoint("KMS", "AWS_ENDPOINT_URL_KMS"),
					"sts":         endpoint("STS", "AWS_ENDPOINT_URL_STS"),
					"ssmmessages": endpoint("Session Manager message gateway", "AWS_ENDPOINT_URL_SSMMESSAGES"),
					"dynamodb":    endpoint("DynamoDB", "AWS_ENDPOINT_URL_DYNAMODB"),
					"ec2":         endpoint("EC2 (instance tags, for policy)", "AWS_ENDPOINT_URL_EC2"),
				},
			},
			"saml": samlBlock(),
		},
	}
}

func (p *passportProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// Values that are unknown until apply (computed from other resources)
	// cannot configure clients during plan.
	for _, v := range []struct {
		name  string
		value types.String
	}{{"server", cfg.Server}, {"server_ca_file", cfg.ServerCAFile}, {"region", cfg.Region}, {"profile", cfg.Profile}, {"ledger", cfg.Ledger}} {
		if v.value.IsUnknown() {
			resp.Diagnostics.AddAttributeError(path.Root(v.name), "Provider configuration is unknown",
				v.name+" must be known at plan time; use literal values or variables, not attributes of resources.")
			return
		}
	}
	var data *providerData
	if server := cmp.Or(cfg.Server.ValueString(), os.Getenv(client.EnvServer)); server != "" {
		data = p.configureService(ctx, cfg, server, &resp.Diagnostics)
	} else {
		data = p.configureDirect(ctx, cfg, &resp.Diagnostics)
	}
	if data == nil {
		return
	}
	resp.DataSourceData = data
	resp.ResourceData = data
	resp.EphemeralResourceData = data
}

// configureDirect sets the provider up to do everything itself, with the
// AWS credentials at hand.
func (p *passportProvider) configureDirect(ctx context.Context, cfg providerModel, diags *diag.Diagnostics) *providerData {
	settings := awsconfig.Settings{
		Region:  cfg.Region.ValueString(),
		Profile: cfg.Profile.ValueString(),
	}
	if e := cfg.Endpoints; e != nil {
		settings.Endpoints = awsconfig.Endpoints{
			SSM:         e.SSM.ValueString(),
			KMS:         e.KMS.ValueString(),
			STS:         e.STS.ValueString(),
			SSMMessages: e.SSMMessages.ValueString(),
			DynamoDB:    e.DynamoDB.ValueString(),
			EC2:         e.EC2.ValueString(),
		}
	}
	clients, err := awsconfig.Load(ctx, settings)
	if err != nil {
		diags.AddError("Cannot configure AWS clients", err.Error())
		return nil
	}
	book, err := openLedger(ctx, cfg.Ledger.ValueString(), clients)
	if err != nil {
		diags.AddAttributeError(path.Root("ledger"), "Cannot open the ledger", err.Error())
		return nil
	}
	source := cfg.PolicySource.ValueString()
	if source == "" {
		source = os.Getenv("PASSPORT_POLICY")
	}
	if source == "" {
		source = policy.DefaultSource
	}
	return &providerData{aws: clients, now: p.now, fleet: p.fleet, usernamePrefix: cfg.UsernamePrefix.ValueString(), ledger: book, policySource: source, samlRequired: cfg.SAML != nil, identity: identitySource(cfg.SAML, p.now)}
}

// configureService sets the provider up as a client of the Passport
// service at server. What the service decides for itself is refused here
// rather than ignored, so that nobody believes their policy_source or
// ledger is in force when it is not.
func (p *passportProvider) configureService(_ context.Context, cfg providerModel, server string, diags *diag.Diagnostics) *providerData {
	owned := func(attr string, set bool, what string) {
		if set {
			diags.AddAttributeError(path.Root(attr), "Not used with server",
				fmt.Sprintf("%s is the Passport service's own %s when the provider has a server (%s): remove it from the provider block, or remove server (and PASSPORT_SERVER) for direct mode.", attr, what, server))
		}
	}
	owned("ledger", !cfg.Ledger.IsNull(), "ledger")
	owned("policy_source", !cfg.PolicySource.IsNull(), "policy, which its administrators keep")
	owned("username_prefix", !cfg.UsernamePrefix.IsNull(), "setting")
	owned("endpoints", cfg.Endpoints != nil, "business: it calls AWS with its own identity")
	owned("saml", cfg.SAML != nil, "business: people sign in at the service with passport login --server")
	if diags.HasError() {
		return nil
	}
	settings := client.SignIn{
		Options: client.Options{CAFile: cmp.Or(cfg.ServerCAFile.ValueString(), os.Getenv(client.EnvServerCA))},
		// A machine signs in with the AWS credentials at hand, read only
		// when nobody has signed in as a person.
		Machine: func(ctx context.Context) (aws.Config, error) {
			return awsconfig.LoadConfig(ctx, awsconfig.Settings{Region: cfg.Region.ValueString(), Profile: cfg.Profile.ValueString()})
		},
		Now: p.now,
	}
	conn, err := newServiceConn(server, settings)
	if err != nil {
		diags.AddAttributeError(path.Root("server"), "Invalid Passport service", err.Error())
		return nil
	}
	return &providerData{now: p.now, service: conn}
}

func (p *passportProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newCertificateAuthorityResource,
		newAccessRequestResource,
	}
}

func (p *passportProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newTargetsDataSource,
		newIdentityDataSource,
	}
}

// EphemeralResources are for credentials that must never reach the state
// (Terraform 1.10 and later).
func (p *passportProvider) EphemeralResources(context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{
		newEphemeralAccessRequest,
	}
}

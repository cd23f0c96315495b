package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

var (
	_ datasource.DataSource              = (*identityDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*identityDataSource)(nil)
)

func newIdentityDataSource() datasource.DataSource { return &identityDataSource{} }

type identityDataSource struct {
	data *providerData
}

type identityModel struct {
	ID        types.String `tfsdk:"id"`
	Kind      types.String `tfsdk:"kind"`
	Subject   types.String `tfsdk:"subject"`
	Groups    types.List   `tfsdk:"groups"`
	Issuer    types.String `tfsdk:"issuer"`
	ExpiresAt types.String `tfsdk:"expires_at"`
}

func (d *identityDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_identity"
}

func (d *identityDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Who is running Terraform. Without `server`: the SAML session `passport login` stored, verified again against the IdP metadata in the provider's saml block on every read; an expired one fails with \"run passport login\". " +
			"With `server`: whoever the Passport service says the provider signed in as (`passport login --server`, or a machine's AWS identity), the principal its policy decides for.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:    true,
				Description: "The subject, for Terraform's bookkeeping.",
			},
			"kind": schema.StringAttribute{
				Computed:    true,
				Description: "`person`, signed in with SAML, or `machine`, signed in to the Passport service with its AWS identity (service mode only). Policy names them Passport::User and Passport::Machine.",
			},
			"subject": schema.StringAttribute{
				Computed:    true,
				Description: "Who policy decides for: the signed assertion's NameID for a person, the ARN (an assumed role's session as its role) for a machine.",
			},
			"groups": schema.ListAttribute{
				ElementType: types.StringType,
				Computed:    true,
				Description: "The person's groups from the identity store, in the IdP's order; empty for a machine.",
			},
			"issuer": schema.StringAttribute{
				Computed:    true,
				Description: "Who vouches for the sign-in: the IdP's entity ID without `server`, the Passport service's URL with it.",
			},
			"expires_at": schema.StringAttribute{
				Computed:    true,
				Description: "When the session ends (RFC 3339): the SAML session, or the Passport service's sign-in.",
			},
		},
	}
}

func (d *identityDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

func (d *identityDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	m, err := d.who(ctx)
	if err != nil {
		summary := "No valid SAML session"
		if d.data.service != nil {
			summary = "Cannot ask the Passport service who you are"
		}
		addFailure(&resp.Diagnostics, summary, err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// who asks the SAML session, or in service mode the service.
func (d *identityDataSource) who(ctx context.Context) (identityModel, error) {
	var m identityModel
	var subject, kind, issuer string
	var groups []string
	var expires time.Time
	if svc := d.data.service; svc != nil {
		c, err := svc.client(ctx)
		if err != nil {
			return m, err
		}
		p, err := c.WhoAmI(ctx)
		if err != nil {
			return m, svc.explain(err)
		}
		subject, kind, groups, issuer, expires = p.Name, p.Kind, p.Groups, svc.url, p.ExpiresAt
	} else {
		c, err := d.data.identity.Claims(ctx)
		if err != nil {
			return m, err
		}
		subject, kind, groups, issuer, expires = c.Subject, string(policy.Person), c.Groups, c.Issuer, c.Expires
	}
	list, diags := types.ListValueFrom(ctx, types.StringType, append([]string{}, groups...))
	if diags.HasError() {
		return m, fmt.Errorf("groups: %v", diags)
	}
	return identityModel{
		ID:        types.StringValue(subject),
		Kind:      types.StringValue(kind),
		Subject:   types.StringValue(subject),
		Groups:    list,
		Issuer:    types.StringValue(issuer),
		ExpiresAt: types.StringValue(expires.UTC().Format(time.RFC3339)),
	}, nil
}

package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
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
		Description: "Who the SAML session says is running Terraform: the session is verified again against the IdP metadata in the provider's saml block on every read, and an expired one fails with \"run passport login\".",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:    true,
				Description: "The subject, for Terraform's bookkeeping.",
			},
			"subject": schema.StringAttribute{
				Computed:    true,
				Description: "The signed assertion's NameID: the person policy decides for.",
			},
			"groups": schema.ListAttribute{
				ElementType: types.StringType,
				Computed:    true,
				Description: "The person's groups, from the saml block's groups attribute, in the IdP's order.",
			},
			"issuer": schema.StringAttribute{
				Computed:    true,
				Description: "The IdP's entity ID.",
			},
			"expires_at": schema.StringAttribute{
				Computed:    true,
				Description: "When the session ends (RFC 3339).",
			},
		},
	}
}

func (d *identityDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

func (d *identityDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	c, err := d.data.identity.Claims(ctx)
	if err != nil {
		resp.Diagnostics.AddError("No valid SAML session", err.Error())
		return
	}
	groups, diags := types.ListValueFrom(ctx, types.StringType, c.Groups)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &identityModel{
		ID:        types.StringValue(c.Subject),
		Subject:   types.StringValue(c.Subject),
		Groups:    groups,
		Issuer:    types.StringValue(c.Issuer),
		ExpiresAt: types.StringValue(c.Expires.UTC().Format(time.RFC3339)),
	})...)
}

package provider

import (
	"context"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/targets"
)

var (
	_ datasource.DataSource              = (*targetsDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*targetsDataSource)(nil)
)

func newTargetsDataSource() datasource.DataSource { return &targetsDataSource{} }

type targetsDataSource struct {
	data *providerData
}

type targetsModel struct {
	ID         types.String   `tfsdk:"id"`
	Tags       types.Map      `tfsdk:"tags"`
	Platform   types.String   `tfsdk:"platform"`
	PingStatus types.String   `tfsdk:"ping_status"`
	IDs        types.List     `tfsdk:"ids"`
	Instances  []instanceInfo `tfsdk:"instances"`
}

type instanceInfo struct {
	InstanceID   types.String `tfsdk:"instance_id"`
	ComputerName types.String `tfsdk:"computer_name"`
	IPAddress    types.String `tfsdk:"ip_address"`
	PlatformType types.String `tfsdk:"platform_type"`
	PlatformName types.String `tfsdk:"platform_name"`
	PingStatus   types.String `tfsdk:"ping_status"`
}

func (d *targetsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_targets"
}

func (d *targetsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Managed instances that Systems Manager knows, filtered by tags, platform and connection status: the servers an access request can name. " +
			"With the provider's `server`, the Passport service lists them with its own AWS identity.",
		Attributes: map[string]schema.Attribute{
			// Optional inputs.
			"tags": schema.MapAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Description: "Tags every instance must carry, with these values.",
			},
			"platform": schema.StringAttribute{
				Optional:    true,
				Description: "Only instances of this platform: " + strings.Join(targets.Platforms, ", ") + ".",
				Validators:  []validator.String{stringvalidator.OneOf(targets.Platforms...)},
			},
			"ping_status": schema.StringAttribute{
				Optional:    true,
				Description: "Only instances whose SSM agent is in this state: " + strings.Join(targets.PingStatuses, ", ") + ".",
				Validators:  []validator.String{stringvalidator.OneOf(targets.PingStatuses...)},
			},
			// Computed.
			"id": schema.StringAttribute{
				Computed:    true,
				Description: "A digest of the filter, for Terraform's bookkeeping.",
			},
			"ids": schema.ListAttribute{
				ElementType: types.StringType,
				Computed:    true,
				Description: "Instance ids of the matching instances, sorted.",
			},
			"instances": schema.ListNestedAttribute{
				Computed:    true,
				Description: "The matching instances, sorted by instance id.",
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"instance_id":   schema.StringAttribute{Computed: true},
						"computer_name": schema.StringAttribute{Computed: true},
						"ip_address":    schema.StringAttribute{Computed: true},
						"platform_type": schema.StringAttribute{Computed: true},
						"platform_name": schema.StringAttribute{Computed: true},
						"ping_status":   schema.StringAttribute{Computed: true},
					},
				},
			},
		},
	}
}

func (d *targetsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configuredData(req.ProviderData, &resp.Diagnostics)
}

func (d *targetsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m targetsModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	f := targets.Filter{Platform: m.Platform.ValueString(), PingStatus: m.PingStatus.ValueString()}
	if !m.Tags.IsNull() {
		resp.Diagnostics.Append(m.Tags.ElementsAs(ctx, &f.Tags, false)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	found, err := d.find(ctx, f)
	if err != nil {
		addFailure(&resp.Diagnostics, "Cannot list targets", err)
		return
	}
	ids := make([]attr.Value, 0, len(found))
	m.Instances = make([]instanceInfo, 0, len(found))
	for _, i := range found {
		ids = append(ids, types.StringValue(i.InstanceID))
		m.Instances = append(m.Instances, instanceInfo{
			InstanceID:   types.StringValue(i.InstanceID),
			ComputerName: types.StringValue(i.ComputerName),
			IPAddress:    types.StringValue(i.IPAddress),
			PlatformType: types.StringValue(i.PlatformType),
			PlatformName: types.StringValue(i.PlatformName),
			PingStatus:   types.StringValue(i.PingStatus),
		})
	}
	m.IDs = types.ListValueMust(types.StringType, ids)
	m.ID = types.StringValue(f.Digest())
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// find lists the instances f selects: from Systems Manager with the AWS
// credentials at hand, or in service mode from the service, which asks
// Systems Manager with its own.
func (d *targetsDataSource) find(ctx context.Context, f targets.Filter) ([]targets.Instance, error) {
	if d.data.service == nil {
		return targets.Find(ctx, d.data.aws.SSM, f)
	}
	c, err := d.data.service.client(ctx)
	if err != nil {
		return nil, err
	}
	listed, err := c.Targets(ctx, client.TargetFilter{Tags: f.Tags, Platform: f.Platform, PingStatus: f.PingStatus})
	if err != nil {
		return nil, d.data.service.explain(err)
	}
	found := make([]targets.Instance, 0, len(listed))
	for _, in := range listed {
		found = append(found, targets.Instance{InstanceID: in.InstanceID, ComputerName: in.ComputerName, IPAddress: in.Address,
			PlatformType: in.Platform, PlatformName: in.PlatformName, PingStatus: in.PingStatus})
	}
	slices.SortFunc(found, func(a, b targets.Instance) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return found, nil
}

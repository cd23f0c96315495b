package provider

import (
	"os"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passport-access/terraform-provider-passport/internal/identity"
)

// samlModel is the provider's saml block.
type samlModel struct {
	IdPMetadata     types.String `tfsdk:"idp_metadata"`
	SPEntityID      types.String `tfsdk:"sp_entity_id"`
	GroupsAttribute types.String `tfsdk:"groups_attribute"`
	SessionFile     types.String `tfsdk:"session_file"`
	Response        types.String `tfsdk:"response"`
	ACSURL          types.String `tfsdk:"acs_url"`
	AllowSHA1       types.Bool   `tfsdk:"insecure_allow_sha1"`
}

func samlBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		Description: "Who is asking: the SAML session `passport login` stored (verified again on every run), or a response given directly. " +
			"With this block, access requests name the signed-in person as their requester and policy sees the person's groups; an expired session fails with \"run passport login\". " +
			"Without it, the requester is the ARN of the AWS credentials in use, with no groups.",
		Attributes: map[string]schema.Attribute{
			"idp_metadata": schema.StringAttribute{
				Optional:    true,
				Description: "IdP metadata: a file or an https URL. The only trusted issuer and signing keys. Defaults to PASSPORT_SAML_METADATA.",
			},
			"sp_entity_id": schema.StringAttribute{
				Optional:    true,
				Description: "Passport's entity ID at the IdP, the audience every response must name. Defaults to PASSPORT_SAML_SP_ENTITY_ID or `passport`.",
			},
			"groups_attribute": schema.StringAttribute{
				Optional:    true,
				Description: "Name of the SAML attribute that lists the person's groups (its Name, not its FriendlyName: a display label proves nothing). Defaults to PASSPORT_SAML_GROUPS_ATTRIBUTE or `groups`.",
			},
			"session_file": schema.StringAttribute{
				Optional:    true,
				Description: "Session `passport login` wrote. Defaults to PASSPORT_SESSION or passport/session.json in the user's config directory.",
			},
			"response": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "A base64 SAML response given directly instead of the session file, for runs where nobody can open a browser. Defaults to PASSPORT_SAML_RESPONSE.",
			},
			"acs_url": schema.StringAttribute{
				Optional:    true,
				Description: "Where `response` was delivered (its Recipient). Required with `response`. Defaults to PASSPORT_SAML_ACS_URL.",
			},
			"insecure_allow_sha1": schema.BoolAttribute{
				Optional: true,
				Description: "INSECURE. Accept responses the IdP signs or digests with SHA-1. SHA-1 is broken (practical collisions since 2017), so Passport refuses it: " +
					"signatures and digests must be SHA-256 or stronger. Set this only while an IdP that cannot sign with SHA-256 is being reconfigured. " +
					"Defaults to PASSPORT_SAML_INSECURE_ALLOW_SHA1 (`true`) or false.",
			},
		},
	}
}

// identitySource maps the saml block, with environment fallbacks, onto
// identity.Source. Nothing is read or verified here: only resources that
// need to know who is asking do that, on every run.
func identitySource(m *samlModel, now func() time.Time) identity.Source {
	if m == nil {
		m = &samlModel{}
	}
	pick := func(v types.String, env string) string {
		if s := v.ValueString(); s != "" {
			return s
		}
		return os.Getenv(env)
	}
	return identity.Source{
		Metadata:        pick(m.IdPMetadata, "PASSPORT_SAML_METADATA"),
		SPEntityID:      pick(m.SPEntityID, "PASSPORT_SAML_SP_ENTITY_ID"),
		GroupsAttribute: pick(m.GroupsAttribute, "PASSPORT_SAML_GROUPS_ATTRIBUTE"),
		SessionFile:     pick(m.SessionFile, "PASSPORT_SESSION"),
		Response:        pick(m.Response, "PASSPORT_SAML_RESPONSE"),
		ACSURL:          pick(m.ACSURL, "PASSPORT_SAML_ACS_URL"),
		Now:             now,
		InsecureAllowSHA1: m.AllowSHA1.ValueBool() ||
			(m.AllowSHA1.IsNull() && os.Getenv("PASSPORT_SAML_INSECURE_ALLOW_SHA1") == "true"),
	}
}

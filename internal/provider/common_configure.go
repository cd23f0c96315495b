package provider

import (
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
)

// configuredData extracts the provider's data in a resource's or data
// source's Configure. It returns nil without error while the provider is not
// configured yet (Terraform calls Configure early during validation).
func configuredData(in any, diags *diag.Diagnostics) *providerData {
	if in == nil {
		return nil
	}
	d, ok := in.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("expected *providerData, got %T: this is a bug in the provider, please report it", in))
		return nil
	}
	return d
}

package connect

import (
	"io"
	"strings"
	"testing"
	"time"
)

// show is a trimmed `terraform show -json` with one request in the root
// module and one in a child module.
const show = `{"format_version":"1.0","terraform_version":"1.11.4","values":{"root_module":{"resources":[
 {"address":"passport_certificate_authority.ca","mode":"managed","type":"passport_certificate_authority","name":"ca","values":{"id":"ca"}},
 {"address":"data.passport_targets.web","mode":"data","type":"passport_access_request","name":"web","values":{"id":"ar-00000000000000d0"}},
 {"address":"passport_access_request.web","mode":"managed","type":"passport_access_request","name":"web","values":{
  "id":"ar-00000000000000a1","username":"pp-7f3k2m9q","expires_at":"2026-11-24T13:00:00Z",
  "certificate":"` + testCert + `","private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
  "target_status":{"i-00000000000000002":"active","i-00000000000000001":"active","i-00000000000000003":"failed"},
  "target_addresses":{"i-00000000000000001":"10.0.1.5","i-00000000000000002":"10.0.1.6","i-00000000000000003":"10.0.1.7"}}}],
 "child_modules":[{"address":"module.db","resources":[
  {"address":"module.db.passport_access_request.db","mode":"managed","type":"passport_access_request","name":"db","values":{
   "id":"ar-00000000000000a2","username":"pp-2b","expires_at":"2026-11-24T14:00:00+01:00",
   "certificate":"` + testCert + `","private_key":null,
   "target_status":{"i-00000000000000009":"active"},"target_addresses":{}}},
  {"address":"module.db.passport_access_request.planned","mode":"managed","type":"passport_access_request","name":"planned","values":{"id":null}}]}]}}}`

func TestParseTerraformShow(t *testing.T) {
	got, err := ParseTerraformShow(strings.NewReader(show))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d requests, want the two created ones", len(got))
	}
	web, db := got[0], got[1]
	if web.Request.ID != "ar-00000000000000a1" || web.Request.Username != "pp-7f3k2m9q" || !web.Request.ExpiresAt.Equal(time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)) {
		t.Errorf("web request: %+v", web.Request)
	}
	if ts := web.Request.Targets; len(ts) != 2 || ts[0].InstanceID != "i-00000000000000001" || ts[0].Address != "10.0.1.5" || ts[1].InstanceID != "i-00000000000000002" {
		t.Errorf("web targets are %+v, want the two active ones in order", ts)
	}
	if !strings.Contains(web.Credential.PrivateKey, "PRIVATE KEY") || web.Credential.Certificate != testCert {
		t.Error("web credential was not read")
	}
	if db.Credential.PrivateKey != "" || !db.Request.ExpiresAt.Equal(time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)) {
		t.Errorf("db request: %+v, key %q", db.Request, db.Credential.PrivateKey)
	}
}

func TestParseTerraformShowRefusesBadInput(t *testing.T) {
	resource := func(values string) string {
		return `{"values":{"root_module":{"resources":[{"address":"passport_access_request.x","mode":"managed","type":"passport_access_request","values":` + values + `}]}}}`
	}
	for _, c := range []struct{ name, in, want string }{
		{"not JSON", "Error: No state file was found!", "not the output of `terraform show -json`"},
		{"a plan's values as a list", `{"values":[]}`, "not the output"},
		{"values not an object", resource(`"x"`), "passport_access_request.x: its values are not an access request"},
		{"bad expiry", resource(`{"id":"ar-00000000000000a1","username":"pp-a","expires_at":"tomorrow"}`), `expires_at "tomorrow"`},
		{"id escaping the store", resource(`{"id":"../ar-00000000000000a1","username":"pp-a","expires_at":"2026-11-24T13:00:00Z"}`), "not ar-"},
		{"username with a newline", resource(`{"id":"ar-00000000000000a1","username":"pp-a\nHost *","expires_at":"2026-11-24T13:00:00Z"}`), "username"},
		{"target with a space", resource(`{"id":"ar-00000000000000a1","username":"pp-a","expires_at":"2026-11-24T13:00:00Z","target_status":{"i-1 -oProxyCommand=x":"active"}}`), "not an instance id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseTerraformShow(strings.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
	endless := io.MultiReader(strings.NewReader(`{"values":`), spaces{})
	if _, err := ParseTerraformShow(endless); err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Errorf("an endless state: %v", err)
	}
	got, err := ParseTerraformShow(strings.NewReader(`{"format_version":"1.0"}`))
	if err != nil || len(got) != 0 {
		t.Errorf("an empty state: %v %v, want nothing and no error", got, err)
	}
}

type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// FuzzParseTerraformShow: whatever a state holds, what comes out is safe
// to write as files and ssh_config lines.
func FuzzParseTerraformShow(f *testing.F) {
	f.Add(show)
	f.Add(`{"values":{"root_module":{"child_modules":[{"child_modules":[{}]}]}}}`)
	f.Add(`{"values":{"root_module":{"resources":[{"mode":"managed","type":"passport_access_request","values":{"id":"ar-0000000000000000","username":"a","expires_at":"2026-01-01T00:00:00Z","target_status":{"mi-0123456789":"active"}}}]}}}`)
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseTerraformShow(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, imp := range got {
			if err := imp.Request.check(); err != nil {
				t.Fatalf("parsed a request that fails its own check: %v", err)
			}
		}
	})
}

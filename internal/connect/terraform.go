package connect

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Imported is one access request read from Terraform, with its secret half.
type Imported struct {
	Request    Request
	Credential Credential
}

// tfState is the part of `terraform show -json` this package reads. The
// command prints sensitive values (the private key) in the clear, which
// is why a person runs it on their own machine and pipes it straight in.
type tfState struct {
	Values *struct {
		RootModule tfModule `json:"root_module"`
	} `json:"values"`
}

type tfModule struct {
	Resources    []tfResource `json:"resources"`
	ChildModules []tfModule   `json:"child_modules"`
}

type tfResource struct {
	Address string          `json:"address"`
	Mode    string          `json:"mode"`
	Type    string          `json:"type"`
	Values  json.RawMessage `json:"values"`
}

type tfAccessRequest struct {
	ID              string            `json:"id"`
	Username        string            `json:"username"`
	ExpiresAt       string            `json:"expires_at"`
	Certificate     string            `json:"certificate"`
	PrivateKey      *string           `json:"private_key"`
	Passwords       map[string]string `json:"passwords"`
	TargetStatus    map[string]string `json:"target_status"`
	TargetAddresses map[string]string `json:"target_addresses"`
	// TargetPlatforms is absent from states written before Windows
	// targets; a password then marks a Windows target.
	TargetPlatforms map[string]string `json:"target_platforms"`
}

// maxStateSize bounds what is read from a state: a request is a few KiB,
// and a state with thousands of resources is still far below this.
const maxStateSize = 64 << 20

// ParseTerraformShow reads the output of `terraform show -json` and returns
// every passport_access_request in it, in any module, with its active
// targets. Requests that were never created (no id yet) are skipped; a
// request whose values are unusable is an error naming its address.
func ParseTerraformShow(r io.Reader) ([]Imported, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxStateSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxStateSize {
		return nil, errors.New("the Terraform state is larger than 64 MiB; this is not the output of terraform show -json")
	}
	var st tfState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("this is not the output of `terraform show -json`: %v", err)
	}
	if st.Values == nil {
		return nil, nil
	}
	var out []Imported
	var walk func(m tfModule) error
	walk = func(m tfModule) error {
		for _, res := range m.Resources {
			if res.Mode != "managed" || res.Type != "passport_access_request" {
				continue
			}
			imp, ok, err := importResource(res)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, imp)
			}
		}
		for _, c := range m.ChildModules {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(st.Values.RootModule); err != nil {
		return nil, err
	}
	return out, nil
}

func importResource(res tfResource) (Imported, bool, error) {
	var v tfAccessRequest
	if err := json.Unmarshal(res.Values, &v); err != nil {
		return Imported{}, false, fmt.Errorf("%s: its values are not an access request: %v", clip(res.Address), err)
	}
	if v.ID == "" {
		return Imported{}, false, nil
	}
	expires, err := time.Parse(time.RFC3339, v.ExpiresAt)
	if err != nil {
		return Imported{}, false, fmt.Errorf("%s: expires_at %q is not an RFC 3339 time", clip(res.Address), clip(v.ExpiresAt))
	}
	req := Request{ID: v.ID, Username: v.Username, ExpiresAt: expires}
	for id, status := range v.TargetStatus {
		if status == "active" {
			_, windows := v.Passwords[id]
			windows = windows || v.TargetPlatforms[id] == "Windows"
			req.Targets = append(req.Targets, Target{InstanceID: id, Address: v.TargetAddresses[id], Windows: windows})
		}
	}
	slices.SortFunc(req.Targets, func(a, b Target) int { return cmp.Compare(a.InstanceID, b.InstanceID) })
	if err := req.check(); err != nil {
		return Imported{}, false, fmt.Errorf("%s: %w", clip(res.Address), err)
	}
	cred := Credential{Certificate: v.Certificate, Passwords: make(map[string]string)}
	for _, t := range req.Targets {
		if t.Windows {
			cred.Passwords[t.InstanceID] = v.Passwords[t.InstanceID]
		}
	}
	if v.PrivateKey != nil {
		cred.PrivateKey = *v.PrivateKey
	}
	return Imported{Request: req, Credential: cred}, true, nil
}

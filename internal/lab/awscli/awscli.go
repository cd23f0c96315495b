// Package awscli runs the AWS CLI against a lab endpoint, for the tests
// that check what a person typing aws commands would see. It is Debian's
// AWS CLI v2 (package awscli), which scripts/install.sh installs; the aws
// first on PATH may be CLI v1 from pip, so the path is fixed.
package awscli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Path is where Debian installs AWS CLI v2.
const Path = "/usr/bin/aws"

// CLI is the AWS CLI with one endpoint, region and key pair.
type CLI struct {
	Endpoint, Region, AccessKeyID, SecretAccessKey string
	// Dir holds the empty config and credentials files and stands in for
	// HOME, so that nothing on the machine changes what the CLI sends.
	Dir string
}

// Find reports whether the CLI is installed, saying how to install it
// when not.
func Find() error {
	if _, err := os.Stat(Path); err != nil {
		return fmt.Errorf("AWS CLI v2 is not installed at %s: run scripts/install.sh (Debian package awscli)", Path)
	}
	return nil
}

// Run runs aws with args, given --endpoint-url and JSON output, and the
// credentials from the environment only.
func (c CLI) Run(args ...string) (stdout, stderr string, err error) {
	if c.Dir == "" {
		return "", "", errors.New("awscli: Dir is required")
	}
	for _, f := range []string{"config", "credentials"} {
		if err := os.WriteFile(filepath.Join(c.Dir, f), nil, 0o600); err != nil {
			return "", "", err
		}
	}
	cmd := exec.Command(Path, append([]string{"--endpoint-url", c.Endpoint, "--output", "json"}, args...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + c.Dir,
		"AWS_CONFIG_FILE=" + filepath.Join(c.Dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(c.Dir, "credentials"),
		"AWS_ACCESS_KEY_ID=" + c.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey,
		"AWS_REGION=" + c.Region,
		"AWS_DEFAULT_REGION=" + c.Region,
		"AWS_PAGER=",
		"AWS_EC2_METADATA_DISABLED=true",
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

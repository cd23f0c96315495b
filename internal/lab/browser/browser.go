// Package browser signs a person in at the lab's SAML IdP with a real web
// browser: Debian's headless Chromium, driven by playwright-core from npm.
// Tests use it wherever sign-in must be what a person does — load the
// IdP's page, type a name and password, submit, and let the browser post
// the signed response to Passport's ACS — rather than a scripted HTTP
// client that only imitates a browser.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Chromium is where Debian's chromium package installs the browser.
const Chromium = "/usr/bin/chromium"

// Browser is a headless Chromium that playwright-core can drive.
type Browser struct {
	node, module string
}

// Find locates Chromium, node and playwright-core (the directory in
// PLAYWRIGHT_CORE, or wherever node resolves it). Its error says what to
// install; tests skip with it.
func Find() (*Browser, error) {
	if _, err := os.Stat(Chromium); err != nil {
		return nil, errors.New("no Chromium at " + Chromium + " (apt-get install -y chromium)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("no node on PATH (apt-get install -y nodejs)")
	}
	module := os.Getenv("PLAYWRIGHT_CORE")
	if module == "" {
		out, err := exec.Command(node, "-p", "require.resolve('playwright-core')").Output()
		if err != nil {
			return nil, errors.New("playwright-core not found: npm install --prefix DIR playwright-core and set PLAYWRIGHT_CORE=DIR/node_modules/playwright-core")
		}
		module = filepath.Dir(strings.TrimSpace(string(out)))
	}
	return &Browser{node: node, module: module}, nil
}

// SignIn opens url (an SP's redirect to the lab IdP) in a fresh browser
// profile, fills in user and password like a person, submits, and returns
// the text of the page Passport's ACS answered with once the browser has
// posted the IdP's response to it.
func (b *Browser) SignIn(ctx context.Context, url, user, password string) (string, error) {
	profile, err := os.MkdirTemp("", "passport-browser-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(profile)
	out, err := exec.CommandContext(ctx, b.node, "-e", signInScript, b.module, Chromium, profile, url, user, password).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("chromium sign-in: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// signInScript fills the lab IdP's form and prints the ACS page's #result.
const signInScript = `
const [module, executablePath, profile, url, user, password] = process.argv.slice(1);
const { chromium } = require(module);
(async () => {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.fill('#username', user);
    await page.fill('#password', password);
    await page.click('#submit');
    await page.waitForSelector('#result', { timeout: 20000 });
    console.log(await page.textContent('#result'));
  } finally {
    await context.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
`

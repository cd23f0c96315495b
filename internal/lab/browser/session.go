package browser

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Session is a headless Chromium that a test drives step by step, as a
// person would use it: open pages, type, press keys, click, read what is
// shown, take screenshots. Each Page has a browser context of its own, so
// two people signed in at once keep their own cookies.
//
// It is playwright-core in a node process, taking one JSON command a line
// on stdin and answering one line each on stdout.
type Session struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Scanner
	profile string
	mu      sync.Mutex
	pages   int
	// Timeout bounds each step; a minute when zero, so that a hang fails
	// the test rather than holding it.
	Timeout time.Duration
}

// Start launches Chromium for a Session.
func (b *Browser) Start(ctx context.Context) (*Session, error) {
	profile, err := os.MkdirTemp("", "passport-browser-")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, b.node, "-e", driverScript, b.module, Chromium, profile)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile)
		return nil, fmt.Errorf("starting node for Chromium: %w", err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	s := &Session{cmd: cmd, in: in, out: sc, profile: profile}
	if _, err := s.call(map[string]any{"op": "ready"}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close ends the browser.
func (s *Session) Close() error {
	s.in.Close()
	err := s.cmd.Wait()
	os.RemoveAll(s.profile)
	return err
}

// call sends one command and waits for its answer.
func (s *Session) call(cmd map[string]any) (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	if _, err := s.in.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("browser: %w", err)
	}
	type answer struct {
		OK    bool            `json:"ok"`
		Value json.RawMessage `json:"value"`
		Error string          `json:"error"`
	}
	got := make(chan answer, 1)
	go func() {
		if !s.out.Scan() {
			got <- answer{Error: fmt.Sprintf("the browser stopped answering (%v)", s.out.Err())}
			return
		}
		var a answer
		if err := json.Unmarshal(s.out.Bytes(), &a); err != nil {
			a.Error = "the browser's answer is not JSON: " + s.out.Text()
		}
		got <- a
	}()
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	select {
	case a := <-got:
		if !a.OK {
			return nil, fmt.Errorf("browser %v: %s", cmd["op"], a.Error)
		}
		return a.Value, nil
	case <-time.After(timeout):
		s.cmd.Process.Kill()
		return nil, fmt.Errorf("browser %v: no answer in %s", cmd["op"], timeout)
	}
}

// PageOptions shape a new page: the viewport in CSS pixels (1280×900 by
// default) and the zoom (device scale factor; 2 is 200%).
type PageOptions struct {
	Width, Height int
	Zoom          float64
	// TrustAnyCertificate accepts the service's TLS certificate whatever
	// signed it (the lab's own CA).
	TrustAnyCertificate bool
}

// Page is one tab in a browser context of its own.
type Page struct {
	s  *Session
	id string
}

// NewPage opens a tab with a fresh profile: no cookies, no history.
func (s *Session) NewPage(o PageOptions) (*Page, error) {
	s.mu.Lock()
	s.pages++
	id := fmt.Sprintf("p%d", s.pages)
	s.mu.Unlock()
	if o.Width == 0 {
		o.Width, o.Height = 1280, 900
	}
	if o.Zoom == 0 {
		o.Zoom = 1
	}
	_, err := s.call(map[string]any{"op": "newPage", "page": id, "width": o.Width, "height": o.Height, "zoom": o.Zoom, "insecure": o.TrustAnyCertificate})
	return &Page{s: s, id: id}, err
}

func (p *Page) do(op string, args map[string]any) (json.RawMessage, error) {
	if args == nil {
		args = map[string]any{}
	}
	args["op"], args["page"] = op, p.id
	return p.s.call(args)
}

// Goto loads url and returns the HTTP status of the page it ends on.
func (p *Page) Goto(url string) (int, error) {
	v, err := p.do("goto", map[string]any{"url": url})
	var status int
	if err == nil {
		err = json.Unmarshal(v, &status)
	}
	return status, err
}

// URL is the page's address now.
func (p *Page) URL() (string, error) {
	v, err := p.do("url", nil)
	var u string
	if err == nil {
		err = json.Unmarshal(v, &u)
	}
	return u, err
}

// Fill types value into the field selector names, replacing its text.
func (p *Page) Fill(selector, value string) error {
	_, err := p.do("fill", map[string]any{"selector": selector, "value": value})
	return err
}

// Check ticks the checkbox or radio button selector names.
func (p *Page) Check(selector string) error {
	_, err := p.do("check", map[string]any{"selector": selector})
	return err
}

// Select picks the option whose value is value.
func (p *Page) Select(selector, value string) error {
	_, err := p.do("select", map[string]any{"selector": selector, "value": value})
	return err
}

// Click clicks selector and waits for the page that follows, when the
// click led to one.
func (p *Page) Click(selector string) error {
	_, err := p.do("click", map[string]any{"selector": selector})
	return err
}

// Press presses a key ("Tab", "Enter", "Space") on the keyboard, where
// the focus is, and waits for any page that follows.
func (p *Page) Press(key string) error {
	_, err := p.do("press", map[string]any{"key": key})
	return err
}

// Type types text on the keyboard, where the focus is.
func (p *Page) Type(text string) error {
	_, err := p.do("type", map[string]any{"text": text})
	return err
}

// Cookie is a cookie as the browser keeps it.
type Cookie struct {
	Name     string  `json:"name"`
	Value    string  `json:"value"`
	Domain   string  `json:"domain"`
	Path     string  `json:"path"`
	Expires  float64 `json:"expires"`
	HTTPOnly bool    `json:"httpOnly"`
	Secure   bool    `json:"secure"`
	SameSite string  `json:"sameSite"`
}

// Cookies are the cookies the page's browser context holds.
func (p *Page) Cookies() ([]Cookie, error) {
	v, err := p.do("cookies", nil)
	var out []Cookie
	if err == nil {
		err = json.Unmarshal(v, &out)
	}
	return out, err
}

// Text is the text selector shows, as a person reads it (innerText).
func (p *Page) Text(selector string) (string, error) {
	v, err := p.do("text", map[string]any{"selector": selector})
	var s string
	if err == nil {
		err = json.Unmarshal(v, &s)
	}
	return s, err
}

// WaitFor waits until selector is on the page and visible, and until its
// text contains contains when that is not empty.
func (p *Page) WaitFor(selector, contains string) error {
	_, err := p.do("waitFor", map[string]any{"selector": selector, "contains": contains})
	return err
}

// Eval runs a JavaScript expression in the page and decodes its value
// into out (nil to drop it).
func (p *Page) Eval(expression string, out any) error {
	v, err := p.do("eval", map[string]any{"expression": expression})
	if err == nil && out != nil {
		err = json.Unmarshal(v, out)
	}
	return err
}

// Screenshot saves the whole page as a PNG at path.
func (p *Page) Screenshot(path string) error {
	_, err := p.do("screenshot", map[string]any{"path": path})
	return err
}

// Download clicks selector, which starts a download, and saves the file
// at path; it returns the name the server suggested.
func (p *Page) Download(selector, path string) (string, error) {
	v, err := p.do("download", map[string]any{"selector": selector, "path": path})
	var name string
	if err == nil {
		err = json.Unmarshal(v, &name)
	}
	return name, err
}

// Events are what the page reported since the last call that a person
// would not see, one line each: console messages ("console ..."),
// uncaught errors ("error: ..."), dialogs it tried to open ("dialog ...",
// each dismissed), Content-Security-Policy violations ("csp: ..."),
// answers of 400 and more ("http ..."), and every address the page went
// to ("navigated: URL").
func (p *Page) Events() ([]string, error) {
	v, err := p.do("events", nil)
	var out []string
	if err == nil {
		err = json.Unmarshal(v, &out)
	}
	return out, err
}

// SignIn fills the lab IdP's form, which the page is on, and submits it.
func (p *Page) SignIn(user, password string) error {
	if err := p.Fill("#username", user); err != nil {
		return err
	}
	if err := p.Fill("#password", password); err != nil {
		return err
	}
	return p.Click("#submit")
}

// driverScript runs the commands. Every step is playwright's own, with
// its waiting: a click waits for the element to be there and enabled,
// and for the navigation it starts.
const driverScript = `
const [module, executablePath, profile] = process.argv.slice(1);
const { chromium } = require(module);
const readline = require('readline');
const pages = {}, events = {};
let browser;
const answer = (v) => process.stdout.write(JSON.stringify(v) + '\n');
async function settle(page) {
  // A step that led to another page: wait until it has loaded.
  await page.waitForLoadState('load').catch(() => {});
}
const ops = {
  async ready() {
    browser = await chromium.launch({ executablePath, headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    return true;
  },
  async newPage(c) {
    const context = await browser.newContext({ viewport: { width: c.width, height: c.height },
      deviceScaleFactor: c.zoom, ignoreHTTPSErrors: !!c.insecure, acceptDownloads: true });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    const ev = events[c.page] = [];
    page.on('console', (m) => ev.push('console ' + m.type() + ': ' + m.text()));
    page.on('pageerror', (e) => ev.push('error: ' + e.message));
    page.on('dialog', (d) => { ev.push('dialog ' + d.type() + ': ' + d.message()); d.dismiss().catch(() => {}); });
    page.on('response', (r) => { if (r.status() >= 400) ev.push('http ' + r.status() + ': ' + r.request().method() + ' ' + r.url()); });
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) ev.push('navigated: ' + f.url()); });
    await page.exposeFunction('__passportCSP', (v) => ev.push('csp: ' + v));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => window.__passportCSP(e.violatedDirective + ' ' + (e.blockedURI || '')));
    });
    pages[c.page] = page;
    return true;
  },
  async goto(c) { const r = await pages[c.page].goto(c.url); return r ? r.status() : 0; },
  async url(c) { return pages[c.page].url(); },
  async fill(c) { await pages[c.page].fill(c.selector, c.value); return true; },
  async check(c) { await pages[c.page].check(c.selector); return true; },
  async select(c) { await pages[c.page].selectOption(c.selector, c.value); return true; },
  async click(c) { const p = pages[c.page]; await p.click(c.selector); await settle(p); return true; },
  async press(c) { const p = pages[c.page]; await p.keyboard.press(c.key); await settle(p); return true; },
  async type(c) { const p = pages[c.page]; await p.keyboard.type(c.text); return true; },
  async cookies(c) { return await pages[c.page].context().cookies(); },
  async text(c) { return await pages[c.page].innerText(c.selector); },
  async waitFor(c) {
    const p = pages[c.page];
    const loc = p.locator(c.selector).first();
    await loc.waitFor({ state: 'visible' });
    if (c.contains) {
      await p.waitForFunction(([sel, want]) => {
        const el = document.querySelector(sel);
        return el && el.innerText.includes(want);
      }, [c.selector, c.contains]);
    }
    return true;
  },
  async eval(c) { return await pages[c.page].evaluate(c.expression); },
  async screenshot(c) { await pages[c.page].screenshot({ path: c.path, fullPage: true }); return true; },
  async download(c) {
    const p = pages[c.page];
    const [dl] = await Promise.all([p.waitForEvent('download'), p.click(c.selector)]);
    await dl.saveAs(c.path);
    return dl.suggestedFilename();
  },
  async events(c) { const ev = events[c.page].slice(); events[c.page].length = 0; return ev; },
};
const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on('line', (line) => {
  queue = queue.then(async () => {
    let c;
    try {
      c = JSON.parse(line);
      if (!ops[c.op]) throw new Error('unknown step ' + c.op);
      answer({ ok: true, value: await ops[c.op](c) });
    } catch (e) {
      answer({ ok: false, error: String(e && e.message || e) });
    }
  });
});
rl.on('close', () => { queue.then(() => browser && browser.close()).then(() => process.exit(0)); });
`

// ArtifactDir is where a test keeps what a person would look at
// afterwards (screenshots): PASSPORT_ARTIFACTS/name when that is set (CI
// keeps it), else a new directory under the system's temporary one. It is
// never removed; the test names it in its log.
func ArtifactDir(name string) (string, error) {
	if base := os.Getenv("PASSPORT_ARTIFACTS"); base != "" {
		dir := filepath.Join(base, name)
		return dir, os.MkdirAll(dir, 0o755)
	}
	return os.MkdirTemp("", "passport-"+name+"-")
}

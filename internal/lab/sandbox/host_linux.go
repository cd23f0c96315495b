package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// Host is a sandbox Linux host, seen from the lab process.
type Host struct {
	cfg Config

	// lifecycle serialises Start, Stop and Close, which take seconds; mu
	// guards the fields and is never held for long, so Online and Run stay
	// responsive during a boot.
	lifecycle sync.Mutex

	mu     sync.Mutex
	info   node.Info
	power  *power // nil while the host is stopped
	slow   time.Duration
	closed bool
}

var _ node.Node = (*Host)(nil)

// power is one boot of a host, from its init's start to its death.
type power struct {
	proc      *exec.Cmd
	exited    chan struct{} // closed once the init, and so every process in the host, is gone
	transport *http.Transport
	client    *http.Client
}

func (p *power) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Boot creates the host's state directory if needed and boots the host. It
// returns once sshd accepts TCP connections on the host's address and the
// agent answers; when sshd cannot start, the error carries sshd's own words.
//
// The host dies with the process that booted it (Pdeathsig). In Go that
// signal follows the OS thread that started the init, not the process: if
// Boot or Start runs on a goroutine that has locked its thread with
// runtime.LockOSThread and that goroutine exits without unlocking, the
// thread ends and the host is killed with it. Call them from ordinary
// goroutines.
func Boot(ctx context.Context, cfg Config) (*Host, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	root := cfg.Root
	if root == "" {
		root = "/"
	}
	if err := available(root); err != nil {
		return nil, fmt.Errorf("sandbox host %s: %w", cfg.InstanceID, err)
	}
	if cfg.Systemd {
		if err := SystemdAvailable(); err != nil {
			return nil, fmt.Errorf("sandbox host %s cannot boot systemd: %w", cfg.InstanceID, err)
		}
	}
	if missing := missingSchedulers(root); cfg.Schedulers && !cfg.Systemd && len(missing) > 0 {
		return nil, fmt.Errorf("sandbox host %s: cannot start its schedulers: missing %s", cfg.InstanceID, strings.Join(missing, "; "))
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox host %s: creating its state directory: %w", cfg.InstanceID, err)
	}
	cfg.Tags = maps.Clone(cfg.Tags)
	cfg.Hidden = slices.Clone(cfg.Hidden)
	h := &Host{cfg: cfg}
	if err := h.Start(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// Start boots a stopped host again with the same disk; it does nothing to a
// running host.
func (h *Host) Start(ctx context.Context) error {
	h.lifecycle.Lock()
	defer h.lifecycle.Unlock()
	h.mu.Lock()
	closed, running := h.closed, h.power != nil && h.power.alive()
	h.mu.Unlock()
	if closed {
		return fmt.Errorf("%s: the host was closed; boot a new one on its state directory", h)
	}
	if running {
		return nil
	}
	// A listener already on the address would answer in sshd's place and
	// hide its bind failure.
	if c, err := net.DialTimeout("tcp", h.cfg.sshAddr(), time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: %s is already in use by another process; give the host another Address or SSHPort", h, h.cfg.sshAddr())
	}
	p, err := h.powerOn()
	if err != nil {
		return err
	}
	hl, err := h.waitReady(ctx, p)
	if err != nil {
		p.off()
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.power = p
	h.info = node.Info{
		InstanceID:      h.cfg.InstanceID,
		ComputerName:    h.cfg.Hostname,
		IPAddress:       h.cfg.Address,
		PlatformType:    node.Linux,
		PlatformName:    hl.PlatformName,
		PlatformVersion: hl.PlatformVersion,
		AgentVersion:    AgentVersion,
		Tags:            h.cfg.Tags,
	}
	return nil
}

func (h *Host) powerOn() (*power, error) {
	cfgJSON, err := json.Marshal(h.cfg)
	if err != nil {
		return nil, err
	}
	// The console log is the host's serial console: the init's own errors
	// land there and explain a boot that failed.
	console, err := os.OpenFile(h.consolePath(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	defer console.Close()
	proc := &exec.Cmd{
		Path:   "/proc/self/exe",
		Args:   []string{initName, h.cfg.Dir},
		Env:    []string{initEnv + "=" + string(cfgJSON)},
		Stdout: console,
		Stderr: console,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	if err := proc.Start(); err != nil {
		return nil, fmt.Errorf("%s: starting its init: %w", h, err)
	}
	sock := h.cfg.socketPath()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableCompression: true,
	}
	p := &power{proc: proc, exited: make(chan struct{}), transport: tr, client: &http.Client{Transport: tr}}
	go func() {
		proc.Wait()
		if h.cfg.Systemd {
			RemoveCgroup(h.cfg.InstanceID)
		}
		close(p.exited)
	}()
	return p, nil
}

// off kills the host's init; the kernel then kills every other process in
// its PID namespace before the init is reaped.
func (p *power) off() {
	p.proc.Process.Kill()
	<-p.exited
	p.transport.CloseIdleConnections()
}

func (h *Host) waitReady(ctx context.Context, p *power) (health, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return health{}, fmt.Errorf("%s: not ready before %w", h, ctx.Err())
		case <-p.exited:
			return health{}, fmt.Errorf("%s: its init exited during boot: %s", h, h.console())
		case <-tick.C:
		}
		hl, err := p.health(ctx)
		if err != nil {
			continue
		}
		if hl.SSHD.LastExit != "" {
			return health{}, fmt.Errorf("%s: sshd did not start: %s", h, hl.SSHD.LastExit)
		}
		if hl.SSHD.PID == 0 {
			continue
		}
		c, err := net.DialTimeout("tcp", h.cfg.sshAddr(), time.Second)
		if err != nil {
			continue
		}
		c.Close()
		return hl, nil
	}
}

func (p *power) health(ctx context.Context) (health, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/health", nil)
	resp, err := p.client.Do(req)
	if err != nil {
		return health{}, err
	}
	defer resp.Body.Close()
	var hl health
	return hl, json.NewDecoder(resp.Body).Decode(&hl)
}

// consoleFile is the host's console log in its state directory.
const consoleFile = "console.log"

func (h *Host) consolePath() string { return filepath.Join(h.cfg.Dir, consoleFile) }

// console returns the end of the host's console log.
func (h *Host) console() string {
	b, err := os.ReadFile(h.consolePath())
	if err != nil {
		return "no console output (" + err.Error() + ")"
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return "no console output"
}

func (h *Host) String() string {
	return fmt.Sprintf("sandbox host %s (%s)", h.cfg.InstanceID, h.cfg.Hostname)
}

// Info implements node.Node.
func (h *Host) Info() node.Info {
	h.mu.Lock()
	defer h.mu.Unlock()
	info := h.info
	info.Tags = maps.Clone(info.Tags)
	return info
}

// Online implements node.Node: the host is running and its agent is there.
func (h *Host) Online() bool {
	p, _ := h.current()
	return p != nil
}

func (h *Host) current() (*power, time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.power == nil || !h.power.alive() {
		return nil, h.slow
	}
	return h.power, h.slow
}

// SetSlow makes every later script wait d before it starts, as on a host
// whose agent is slow to pick commands up.
func (h *Host) SetSlow(d time.Duration) {
	h.mu.Lock()
	h.slow = d
	h.mu.Unlock()
}

// SSHAddr is where the host's sshd listens, "127.x.y.z:22".
func (h *Host) SSHAddr() string { return h.cfg.sshAddr() }

// PID is the host init's process id in the machine's PID namespace, or 0
// while the host is stopped; record it so that Kill can end the host if the
// lab dies without stopping it.
func (h *Host) PID() int {
	p, _ := h.current()
	if p == nil {
		return 0
	}
	return p.proc.Process.Pid
}

// Run implements node.Node. It returns node.ErrOffline when the host is
// stopped, or stops while the script runs.
func (h *Host) Run(ctx context.Context, s node.Script) (node.Result, error) {
	p, slow := h.current()
	if p == nil {
		return node.Result{}, node.ErrOffline
	}
	if slow > 0 {
		t := time.NewTimer(slow)
		select {
		case <-ctx.Done():
			t.Stop()
			return node.Result{}, ctx.Err()
		case <-p.exited:
			t.Stop()
			return node.Result{}, node.ErrOffline
		case <-t.C:
		}
	}
	body, err := json.Marshal(runRequest{Document: s.Document, Plugin: s.PluginName(), Source: s.Source, WorkingDirectory: s.WorkingDirectory, Timeout: s.Timeout, WholeStdout: s.WholeStdout})
	if err != nil {
		return node.Result{}, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://agent/run", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return node.Result{}, h.lost(ctx, p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return node.Result{}, fmt.Errorf("%s: agent refused the script: %s", h, bytes.TrimSpace(msg))
	}
	var res runResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return node.Result{}, h.lost(ctx, p, err)
	}
	return node.Result{ExitCode: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr, TimedOut: res.TimedOut}, nil
}

// lost explains a broken conversation with the agent: the caller gave up,
// the host went down (which the lab sees a moment after the connection
// breaks), or something else went wrong.
func (h *Host) lost(ctx context.Context, p *power, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	select {
	case <-p.exited:
		return node.ErrOffline
	case <-time.After(2 * time.Second):
		return fmt.Errorf("%s: lost its agent: %w", h, err)
	}
}

// DialPort connects to a TCP port of the host through its agent, as a
// Session Manager port-forwarding session does.
func (h *Host) DialPort(ctx context.Context, port int) (net.Conn, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("%s: port %d is out of range", h, port)
	}
	c, err := h.connect(ctx, "/dial/"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot reach port %d: %w", h, port, err)
	}
	return c, nil
}

// connect asks the host's agent for a connection at path (CONNECT) and
// returns it once the agent has said yes.
func (h *Host) connect(ctx context.Context, path string) (*bufferedConn, error) {
	p, _ := h.current()
	if p == nil {
		return nil, node.ErrOffline
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", h.cfg.socketPath())
	if err != nil {
		return nil, h.lost(ctx, p, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	req, _ := http.NewRequest(http.MethodConnect, path, nil)
	req.Host = "agent"
	br := bufio.NewReader(c)
	err = req.Write(c)
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(br, req)
	}
	if !stop() || err != nil {
		c.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, h.lost(ctx, p, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		c.Close()
		return nil, errors.New(string(bytes.TrimSpace(msg)))
	}
	c.SetDeadline(time.Time{})
	return &bufferedConn{Conn: c, r: br}, nil
}

// bufferedConn returns what the response reader had already buffered before
// reading from the connection again.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite passes a half-close to the agent, which passes it on to the
// host's port.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Stop powers the host off: every process in it dies at once, Online
// reports false and Run returns node.ErrOffline. The disk stays.
func (h *Host) Stop() error {
	h.lifecycle.Lock()
	defer h.lifecycle.Unlock()
	h.mu.Lock()
	p := h.power
	h.power = nil
	h.mu.Unlock()
	if p != nil {
		p.off()
	}
	return nil
}

// Close stops the host for good and releases it; its state directory stays
// and can be booted again with Boot.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	err := h.Stop()
	os.Remove(h.cfg.socketPath())
	return err
}

// Package winhost is the lab's stand-in for a Windows Server target. Windows
// cannot run in the lab, so a Host is a model: a managed node that reports
// the Windows platform, keeps a table of local users as the shipped
// PowerShell programs would leave them, and answers a password check on
// port 3389.
//
// What it proves and what it does not: Run accepts a script only when it is
// byte for byte one of Passport's shipped Windows programs
// (hostscript.ReadWindowsProgram) and then applies that program's decoded
// data to the model, printing the result line the PowerShell prints. The
// PowerShell itself is never executed here; it is verified by review and
// static checks. The port-3389 check is a lab line protocol, not RDP (see
// Logon), so it shows that a generated password, its expiry and its
// revocation work end to end through SSM and a Session Manager tunnel, and
// nothing about a real Remote Desktop server.
package winhost

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// RDPPort is where a Host answers the lab's logon check.
const RDPPort = 3389

// Platform values a Host reports, as an EC2 Windows Server 2022 AMI's
// agent does.
const (
	PlatformName    = "Microsoft Windows Server 2022 Datacenter"
	PlatformVersion = "10.0.20348"
)

// Config describes one Windows host.
type Config struct {
	InstanceID   string
	ComputerName string
	// Address is the host's own loopback address (127.x.y.z); the logon
	// check listens on Address:3389 and Info reports it as IPAddress.
	Address      string
	AgentVersion string
	Tags         map[string]string
	// Now is the host's clock: account expiry, grant records and sweeps
	// go by it. time.Now when nil.
	Now func() time.Time
	// LogonTimeout bounds how long a logon connection may take to send
	// its line; 10 seconds when zero.
	LogonTimeout time.Duration
	// MaxLogons bounds the logon connections served at once; the rest are
	// answered "DENIED busy". 64 when zero.
	MaxLogons int
	// DomainController makes the host a domain controller, which has no
	// local users: provision, extend and revoke refuse as the shipped
	// programs do there (ExitHost), before changing anything.
	DomainController bool
	// MinPasswordLength is the host's "Minimum password length" policy; a
	// generated password shorter than it is refused (ExitPassword), as
	// New-LocalUser's InvalidPasswordException is. Zero: Windows' default.
	MinPasswordLength int
	// GrammarSum is the record of the Windows programs shown to parse as
	// PowerShell (hostscript.WindowsGrammarSum when empty). A program
	// whose action is not in it is refused, since PowerShell would not
	// run what does not parse; tests give a stale record.
	GrammarSum string
}

// Host is a lab Windows host. It satisfies node.Node and the session
// service's Target (DialPort).
type Host struct {
	cfg  Config
	info node.Info

	// mu guards the local users and grant records; holding it for a whole
	// program is the host lock the shipped programs take.
	mu       sync.Mutex
	accounts map[string]*account // by lower-case name: Windows names are case-insensitive
	records  map[string]Grant    // by lower-case name
	// The Security log (events.go): every event, and the open logons by
	// lower-case user name.
	events    []SecurityEvent
	open      map[string][]uint64
	nextLogon uint64

	power   sync.Mutex // orders Start, Stop and Close
	state   sync.Mutex // guards the fields below
	ln      net.Listener
	conns   map[net.Conn]struct{}
	serving sync.WaitGroup
	closed  bool
	slots   chan struct{}
}

var _ node.Node = (*Host)(nil)

// New starts a host: its logon check listens on cfg.Address:3389 and its
// agent is online.
func New(cfg Config) (*Host, error) {
	if cfg.InstanceID == "" || cfg.ComputerName == "" {
		return nil, errors.New("winhost: InstanceID and ComputerName are required")
	}
	ip := net.ParseIP(cfg.Address)
	if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return nil, fmt.Errorf("winhost %s: Address %q must be an IPv4 loopback address such as 127.20.0.1", cfg.InstanceID, cfg.Address)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LogonTimeout <= 0 {
		cfg.LogonTimeout = 10 * time.Second
	}
	if cfg.MaxLogons <= 0 {
		cfg.MaxLogons = 64
	}
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = "3.3.1142.0"
	}
	h := &Host{
		cfg: cfg,
		info: node.Info{
			InstanceID:      cfg.InstanceID,
			ComputerName:    cfg.ComputerName,
			IPAddress:       cfg.Address,
			PlatformType:    node.Windows,
			PlatformName:    PlatformName,
			PlatformVersion: PlatformVersion,
			AgentVersion:    cfg.AgentVersion,
			Tags:            maps.Clone(cfg.Tags),
		},
		accounts: make(map[string]*account),
		records:  make(map[string]Grant),
		open:     make(map[string][]uint64),
		// Windows' logon ids are LUIDs; the model's start where a busy
		// host's might.
		nextLogon: 0x3e7a00,
		conns:     make(map[net.Conn]struct{}),
		slots:     make(chan struct{}, cfg.MaxLogons),
	}
	if err := h.Start(); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Host) String() string {
	return fmt.Sprintf("Windows host %s (%s)", h.cfg.InstanceID, h.cfg.ComputerName)
}

// Info implements node.Node.
func (h *Host) Info() node.Info {
	info := h.info
	info.Tags = maps.Clone(info.Tags)
	return info
}

// Online implements node.Node: the host is started and its agent is there.
func (h *Host) Online() bool {
	h.state.Lock()
	defer h.state.Unlock()
	return h.ln != nil
}

// RDPAddr is where the host's logon check listens, "127.x.y.z:3389".
func (h *Host) RDPAddr() string {
	return net.JoinHostPort(h.cfg.Address, strconv.Itoa(RDPPort))
}

// Start powers a stopped host on: the logon check listens again and Run
// works. Its local users survive a stop, as a disk would keep them.
func (h *Host) Start() error {
	h.power.Lock()
	defer h.power.Unlock()
	h.state.Lock()
	if h.closed {
		h.state.Unlock()
		return fmt.Errorf("%s is closed", h)
	}
	running := h.ln != nil
	h.state.Unlock()
	if running {
		return nil
	}
	ln, err := net.Listen("tcp", h.RDPAddr())
	if err != nil {
		return fmt.Errorf("%s: cannot listen on %s: %w", h, h.RDPAddr(), err)
	}
	h.state.Lock()
	h.ln = ln
	h.state.Unlock()
	h.serving.Add(1)
	go h.serve(ln)
	return nil
}

// Stop powers the host off: Online reports false, Run and DialPort return
// node.ErrOffline, and open logon connections are cut.
func (h *Host) Stop() error {
	h.power.Lock()
	defer h.power.Unlock()
	h.state.Lock()
	ln := h.ln
	h.ln = nil
	for c := range h.conns {
		c.Close()
	}
	h.state.Unlock()
	if ln != nil {
		ln.Close()
	}
	h.serving.Wait()
	return nil
}

// Close stops the host for good.
func (h *Host) Close() error {
	err := h.Stop()
	h.state.Lock()
	h.closed = true
	h.state.Unlock()
	return err
}

// DialPort connects to a TCP port of the host, as the agent's end of a
// Session Manager port session does. Only the logon check's port is open.
func (h *Host) DialPort(ctx context.Context, port int) (net.Conn, error) {
	if !h.Online() {
		return nil, node.ErrOffline
	}
	if port != RDPPort {
		return nil, fmt.Errorf("%s: nothing listens on port %d; the lab's Windows hosts serve only port %d", h, port, RDPPort)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", h.RDPAddr())
}

func (h *Host) now() time.Time { return h.cfg.Now() }

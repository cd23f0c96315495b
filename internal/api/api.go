// Package api holds the Passport service's wire types, shared by its
// server and its clients: the JSON bodies of every /v1 route, the error
// body and its codes, and the routes themselves. docs/service-api.yaml
// describes the same in OpenAPI, and a test holds the two together.
package api

import "time"

// Routes of the service. Every /v1 route but the login routes and health
// needs a signed-in caller.
const (
	PathHealth   = "/v1/health"
	PathWhoAmI   = "/v1/whoami"
	PathRequests = "/v1/requests"
	PathPreview  = "/v1/requests/preview"
	PathTargets  = "/v1/targets"
	PathAudit    = "/v1/audit"
	PathVerify   = "/v1/audit/verify"
	PathLogout   = "/v1/logout"
	PathSessions = "/v1/sessions"
	// PathRecordings lists recorded sessions; a recording is
	// PathRecordings/<request>/<target>/<session>, its asciicast that
	// plus "/asciicast"; PathRecordingsGrep searches them.
	PathRecordings     = "/v1/recordings"
	PathRecordingsGrep = "/v1/recordings/grep"
	PathLoginAWS       = "/v1/login/aws"
	PathLoginCLI       = "/v1/login/cli"
	PathLoginCode      = "/v1/login/token"
	PathSAMLLogin      = "/saml/login"
	PathSAMLACS        = "/saml/acs"
	PathSAMLMeta       = "/saml/metadata"
)

// SessionCookie is the browser's sign-in: an HttpOnly, Secure, SameSite
// cookie the ACS sets, holding a service token.
const SessionCookie = "passport_session"

// RequestPath is the route of one request, and of an action on it
// ("extend", "targets", "end", "check", "sessions", "approve", "deny";
// none for the request).
func RequestPath(id, action string) string {
	if action == "" {
		return PathRequests + "/" + id
	}
	return PathRequests + "/" + id + "/" + action
}

// CreateRequest asks for access. Targets are named by instance id, or by
// tags (every managed instance carrying all of them), not both.
type CreateRequest struct {
	Targets []string          `json:"targets,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	Reason  string            `json:"reason"`
	// Duration is a Go duration ("90m", "2h"); empty means 1h.
	Duration string `json:"duration,omitempty"`
	Sudo     bool   `json:"sudo,omitempty"`
	// PublicKey is the requester's SSH public key (authorized_keys form).
	// The service signs it and never sees a private key, so it is
	// required.
	PublicKey string `json:"public_key"`
	// PasswordKey is the requester's RSA public key (PKIX DER, base64) that
	// Windows hosts seal their passwords to; required when a target is
	// Windows. Only its owner can open SealedPasswords.
	PasswordKey string `json:"password_key,omitempty"`
	// CertificateAuthority names one of the service's CAs; empty means its
	// default.
	CertificateAuthority string `json:"certificate_authority,omitempty"`
	// BreakGlass asks for access at once where policy lets the caller
	// break the glass: announced urgently, and reviewed afterwards by
	// someone else.
	BreakGlass bool `json:"break_glass,omitempty"`
}

// PreviewRequest asks what a create with the same fields would meet:
// which targets it reaches and what policy would say, for the window
// asked and for other windows. Nothing is recorded and no host is
// touched. Reason may be empty while a person is still typing it; policy
// is then asked with an empty reason.
type PreviewRequest struct {
	Targets  []string          `json:"targets,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Duration string            `json:"duration,omitempty"`
	Sudo     bool              `json:"sudo,omitempty"`
	// BreakGlass previews the request as break-glass: at once or not at
	// all.
	BreakGlass bool `json:"break_glass,omitempty"`
}

// Preview is policy's answer to a request not yet made.
type Preview struct {
	// Decision is grant (at once), approval or deny, for Duration.
	Decision string `json:"decision"`
	// Message says the decision in words, with policy's reasons.
	Message  string `json:"message"`
	Duration string `json:"duration"`
	// Approvals and Approvers are what a decision of approval waits for.
	Approvals int      `json:"approvals,omitempty"`
	Approvers []string `json:"approvers,omitempty"`
	// ReasonProblem is what a create would say of the reason (too short,
	// more than one line), when it would refuse it.
	ReasonProblem string `json:"reason_problem,omitempty"`
	// Targets are the instances the request reaches, each with policy's
	// answer and, when it could not take access now (unknown, offline,
	// neither Linux nor Windows), Problem, which would fail the create.
	Targets []PreviewTarget `json:"targets"`
	// Windows are policy's answers for other lengths of the window, so a
	// person can pick one it allows before asking.
	Windows []PreviewWindow `json:"windows"`
	// BreakGlassOffered says policy grants this at once as break-glass
	// though not otherwise: the emergency way is open to the caller.
	BreakGlassOffered bool `json:"break_glass_offered,omitempty"`
}

// PreviewTarget is one target of a Preview.
type PreviewTarget struct {
	InstanceID   string `json:"instance_id"`
	ComputerName string `json:"computer_name,omitempty"`
	Platform     string `json:"platform,omitempty"`
	PingStatus   string `json:"ping_status,omitempty"`
	Decision     string `json:"decision"`
	Approvals    int    `json:"approvals,omitempty"`
	Why          string `json:"why,omitempty"`
	Problem      string `json:"problem,omitempty"`
}

// PreviewWindow is policy's answer for one length of the window.
type PreviewWindow struct {
	Duration  string `json:"duration"`
	Decision  string `json:"decision"`
	Approvals int    `json:"approvals,omitempty"`
}

// Request is an access request as the service reports it.
type Request struct {
	ID            string   `json:"id"`
	State         string   `json:"state"`
	Username      string   `json:"username"`
	Requester     string   `json:"requester"`
	RequesterKind string   `json:"requester_kind"`
	Groups        []string `json:"groups,omitempty"`
	Reason        string   `json:"reason"`
	Sudo          bool     `json:"sudo"`
	// Duration is the window's length, ExpiresAt - IssuedAt, as a Go
	// duration.
	Duration  string    `json:"duration"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Certificate is the SSH certificate (authorized_keys form) for
	// PublicKey; Serial its serial in decimal, as ssh-keygen -L prints it.
	Certificate          string   `json:"certificate"`
	Serial               string   `json:"serial"`
	PublicKey            string   `json:"public_key"`
	CAPublicKey          string   `json:"ca_public_key"`
	CertificateAuthority string   `json:"certificate_authority,omitempty"`
	Targets              []Target `json:"targets"`
	// SealedPasswords are the Windows passwords of the hosts this call
	// provisioned, by instance id, sealed to the caller's PasswordKey. Only
	// the response to the call that provisioned them carries them: the
	// service keeps no copy. A request granted by its last approval is
	// provisioned in the approver's call; its requester then reads them
	// once, with the request, until its window ends.
	SealedPasswords map[string]string `json:"sealed_passwords,omitempty"`
	// Approval is what the request waits for (state pending), or waited
	// for; absent when policy granted it at once. Extension is a longer
	// window waiting for approval while the current one stands.
	Approval  *Approval  `json:"approval,omitempty"`
	Extension *Extension `json:"extension,omitempty"`
	// BreakGlass marks access given at once because its requester broke
	// the glass; Review is the review someone else owes it.
	BreakGlass bool    `json:"break_glass,omitempty"`
	Review     *Review `json:"review,omitempty"`
	// CallerMayDecide says the caller may decide on what the request
	// waits for: approve or deny it (or its longer window), or review it
	// (break-glass owing a review). Policy's approve action lets them, and
	// the request is not theirs. Set on reads and lists.
	CallerMayDecide bool `json:"caller_may_decide,omitempty"`
	// CallerMayEnd says the caller may end (or withdraw) the request: it
	// is open, and theirs or policy's end action lets them. Set on reads
	// and lists.
	CallerMayEnd bool `json:"caller_may_end,omitempty"`
}

// Review is what a break-glass request owes: someone other than its
// requester reviews it by Due. By, At and Comment are the review, once
// recorded.
type Review struct {
	Due     time.Time  `json:"due"`
	By      string     `json:"by,omitempty"`
	Kind    string     `json:"kind,omitempty"`
	At      *time.Time `json:"at,omitempty"`
	Comment string     `json:"comment,omitempty"`
}

// Approval is what a request or a longer window waits for: Required
// distinct approvals, from those policy names in Approvers, before
// Deadline. One denial ends it.
type Approval struct {
	Required  int       `json:"required"`
	Approvers []string  `json:"approvers,omitempty"`
	Why       string    `json:"why,omitempty"`
	Deadline  time.Time `json:"deadline"`
	Given     []Vote    `json:"given,omitempty"`
	Denied    *Vote     `json:"denied,omitempty"`
}

// Vote is one approver's word.
type Vote struct {
	By      string    `json:"by"`
	Kind    string    `json:"kind,omitempty"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// Extension is a longer window that waits for approval.
type Extension struct {
	ExpiresAt time.Time `json:"expires_at"`
	Approval  Approval  `json:"approval"`
}

// Decision approves or denies a request that waits for approval. A
// denial needs a comment, for the requester and the audit trail.
type Decision struct {
	Comment string `json:"comment,omitempty"`
}

// Target is one host of a request.
type Target struct {
	InstanceID string `json:"instance_id"`
	Platform   string `json:"platform"`
	// Status is active, failed or revoked.
	Status  string `json:"status"`
	Address string `json:"address,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// RequestList is a page of requests.
type RequestList struct {
	Requests []Request `json:"requests"`
}

// ExtendRequest moves the end of a window to IssuedAt + Duration, later or
// earlier.
type ExtendRequest struct {
	Duration string `json:"duration"`
}

// TargetsRequest makes Targets a request's hosts: added ones get the user,
// removed ones lose it. PasswordKey as in CreateRequest, for added Windows
// targets.
type TargetsRequest struct {
	Targets     []string `json:"targets"`
	PasswordKey string   `json:"password_key,omitempty"`
}

// Health is what a check of a request's hosts found.
type Health struct {
	Expired     bool     `json:"expired"`
	Missing     []string `json:"missing,omitempty"`
	Unreachable []string `json:"unreachable,omitempty"`
}

// Outcome answers a call that changed hosts but may have failed on some:
// the request as it now stands, and the error when part of it failed.
// A failed create that left nothing behind has no Request.
type Outcome struct {
	Request *Request `json:"request,omitempty"`
	Error   *Error   `json:"error,omitempty"`
}

// Principal is who a caller is.
type Principal struct {
	Name string `json:"name"`
	// Kind is person (signed in with SAML) or machine (known by its AWS
	// identity).
	Kind   string   `json:"kind"`
	Groups []string `json:"groups,omitempty"`
	// ExpiresAt is when the caller's sign-in ends.
	ExpiresAt time.Time `json:"expires_at"`
}

// Instance is a managed instance a caller may ask for, as Systems Manager
// reports it.
type Instance struct {
	InstanceID   string `json:"instance_id"`
	ComputerName string `json:"computer_name,omitempty"`
	Address      string `json:"address,omitempty"`
	Platform     string `json:"platform"`
	PlatformName string `json:"platform_name,omitempty"`
	PingStatus   string `json:"ping_status"`
}

// InstanceList is what /v1/targets found.
type InstanceList struct {
	Instances []Instance `json:"instances"`
}

// Event is one audit event.
type Event struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	Action   string    `json:"action"`
	GrantID  string    `json:"grant_id,omitempty"`
	Target   string    `json:"target,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	PrevHash string    `json:"prev_hash"`
	Hash     string    `json:"hash"`
}

// EventList is a slice of the audit trail.
type EventList struct {
	Events []Event `json:"events"`
	// Truncated says older events the caller may see were left out: the
	// call asked for only the newest.
	Truncated bool `json:"truncated,omitempty"`
}

// Verification is the result of checking the whole audit chain.
type Verification struct {
	OK bool `json:"ok"`
	// Events is how many events were checked; Head the hash of the last.
	Events int64  `json:"events"`
	Head   string `json:"head,omitempty"`
	// Problem names the first event that was changed, removed or moved.
	Problem string `json:"problem,omitempty"`
}

// SessionRequest asks the service to open a Session Manager session to a
// target of the caller's active request: ssh (AWS-StartSSHSession to port
// 22) or port (AWS-StartPortForwardingSession to Port).
type SessionRequest struct {
	Target string `json:"target"`
	Kind   string `json:"kind"`
	Port   int    `json:"port,omitempty"`
}

// Session is what StartSession returned: the data channel's URL and the
// token that opens it, which is a secret.
type Session struct {
	SessionID string `json:"session_id"`
	StreamURL string `json:"stream_url"`
	Token     string `json:"token"`
}

// LoginCode is what a CLI sends to trade the one-time code of a browser
// sign-in for a token: the code and the verifier whose SHA-256 was the
// challenge it started with.
type LoginCode struct {
	Code     string `json:"code"`
	Verifier string `json:"verifier"`
}

// Token is a service token and who it stands for. The token is a secret.
type Token struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	Principal Principal `json:"principal"`
}

// HealthStatus answers /v1/health.
type HealthStatus struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
}

// Recording is a recorded session on a target, collected under a
// request.
type Recording struct {
	// ID is request/target/session: how the CLI and the routes name it.
	ID        string `json:"id"`
	Request   string `json:"request"`
	Target    string `json:"target"`
	Session   string `json:"session"`
	Requester string `json:"requester"`
	// User is the short-lived user the session ran as, and StartedAt when
	// it began, where the index knows them.
	User      string     `json:"user,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	// EndedAt is when it ended; absent for a session collected while it
	// ran, or where the index does not say.
	EndedAt *time.Time `json:"ended_at,omitempty"`
	// Size and SHA256 are what was collected, as the ledger indexed it.
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Detail is what the recording itself says, on a read of one.
	Detail *RecordingDetail `json:"detail,omitempty"`
}

// RecordingDetail is what a recording says about its session.
type RecordingDetail struct {
	// Command is what the person asked sshd to run; empty for a login
	// shell.
	Command  string    `json:"command"`
	Terminal bool      `json:"terminal"`
	Rows     int       `json:"rows,omitempty"`
	Cols     int       `json:"cols,omitempty"`
	Host     string    `json:"host,omitempty"`
	Client   string    `json:"client,omitempty"`
	Start    time.Time `json:"start"`
	Title    string    `json:"title"`
	// EventLog says this is a Windows logon's Security events (read them
	// at .../events), not a terminal recording.
	EventLog bool `json:"event_log,omitempty"`
	// CallerMayDelete says the caller may delete the recording before
	// its retention ends (DELETE /v1/recordings/{id}): policy lets them,
	// and the service keeps it where it may delete it.
	CallerMayDelete bool `json:"caller_may_delete,omitempty"`
}

// DeleteRecording asks to delete one recording before its retention
// ends. Reason is required: it goes into the audit trail with who asked.
type DeleteRecording struct {
	Reason string `json:"reason"`
}

// RecordingList is the recordings a caller may see.
type RecordingList struct {
	Recordings []Recording `json:"recordings"`
}

// RecordingMatch is a line of a recording that a search matched.
type RecordingMatch struct {
	Recording string `json:"recording"`
	// At is seconds from the session's start.
	At    float64 `json:"at"`
	Input bool    `json:"input"`
	Line  string  `json:"line"`
}

// RecordingProblem is a recording a search could not read: damaged,
// missing or changed since it was collected.
type RecordingProblem struct {
	Recording string `json:"recording"`
	Message   string `json:"message"`
}

// RecordingMatches answers a search of recordings.
type RecordingMatches struct {
	Matches []RecordingMatch `json:"matches"`
	// Truncated says more lines matched than the answer holds.
	Truncated bool               `json:"truncated"`
	Searched  int                `json:"searched"`
	Problems  []RecordingProblem `json:"problems"`
}

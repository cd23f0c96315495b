package sandbox

import "time"

// The lab process and a host's agent speak HTTP over a unix socket in the
// host's state directory:
//
//	GET     /health          -> health
//	POST    /run (runRequest) -> runResult; closing the request kills the script
//	CONNECT /dial/{port}     -> 200, then the connection carries the bytes of
//	                            a TCP connection to the host's address:port
//	CONNECT /shell?user=...  -> 200, then the connection carries a shell
//	                            session's process (shellwire.go)
//
// The socket is created before the init pivots into the host's root, so the
// host itself cannot see or reach it.

// initEnv carries the host's Config, as JSON, to its init.
const initEnv = "PASSPORT_SANDBOX_CONFIG"

type health struct {
	PlatformName    string `json:"platformName"`
	PlatformVersion string `json:"platformVersion"`
	SSHD            sshdState
}

type sshdState struct {
	PID      int    `json:"pid"`      // 0 while not running
	Starts   int    `json:"starts"`   // how many times the init started it
	LastExit string `json:"lastExit"` // how the last sshd ended, with its own error text
}

type runRequest struct {
	Document         string        `json:"document"`
	Plugin           string        `json:"plugin"`
	Source           string        `json:"source"`
	WorkingDirectory string        `json:"workingDirectory"`
	Timeout          time.Duration `json:"timeout"`
	WholeStdout      bool          `json:"wholeStdout"`
}

type runResult struct {
	ExitCode int    `json:"exitCode"`
	Stdout   []byte `json:"stdout"`
	Stderr   []byte `json:"stderr"`
	TimedOut bool   `json:"timedOut"`
}

package api

// AWSLoginInfo is what GET /v1/login/aws tells a machine about to sign in
// with its AWS identity: the value to bind into the signature and the STS
// endpoint and region to sign for. The service checks every login with
// that same endpoint, so a request signed for another one is refused.
type AWSLoginInfo struct {
	// ServerID goes in the X-Passport-Server-ID header, which must be
	// signed, so a request made for one Passport service is useless at
	// any other.
	ServerID    string `json:"server_id"`
	STSEndpoint string `json:"sts_endpoint"`
	Region      string `json:"region"`
}

// AWSLogin is what POST /v1/login/aws receives: an sts:GetCallerIdentity
// request the machine signed with SigV4 but did not send. The service
// sends it to its own STS endpoint and takes the ARN STS answers with as
// the caller.
type AWSLogin struct {
	Method  string              `json:"method"`
	URL     string              `json:"url"`
	Headers map[string][]string `json:"headers"`
	// Body is the request body, base64 (standard encoding, padded).
	Body string `json:"body"`
}

// Package awsidentity says who an AWS caller is: the process's own
// identity (Caller), and a machine signing in to the Passport service with
// a signed sts:GetCallerIdentity request it never sends itself (Sign on
// the machine, Verifier in the service).
//
// The login works as Vault's AWS auth method does. The machine signs a
// GetCallerIdentity request with SigV4, binding a header that names the
// service (X-Passport-Server-ID) into the signature, and hands the request
// to the service. The service checks it, sends it to its own configured
// STS endpoint and believes the ARN STS answers with: only the holder of
// the credentials can have made that signature, and only STS can say
// whose they are. The server ID stops a request signed for one service
// from being replayed at another, the signature's date and a one-time use
// stop it being replayed at this one, and sending only to the service's
// own endpoint stops the service being used to reach anything else.
package awsidentity

// Package iam holds the IAM policies Passport ships, as files an
// administrator attaches and as bytes the lab enforces: the lab reads its
// service identity's permissions from passport-service.json itself, so
// the policy people deploy and the one the tests prove cannot drift apart.
package iam

import _ "embed"

// Service is the Passport service role's policy: the only identity that
// may send Passport's SSM documents, sign with its certificate
// authorities, read its access policy and keep its ledger.
//
//go:embed passport-service.json
var Service []byte

// Requester is the guardrail for people who get access through Passport:
// an explicit deny of everything on the access path, so no other policy
// can hand it back to them.
//
//go:embed passport-requester.json
var Requester []byte

// Instance is what a target's instance role needs for Passport beyond
// the SSM agent's own managed policy: writing what the host hands over
// (session recordings, as Run Command output) under the recordings
// bucket's transfer prefix, and nothing else, so a host can never write
// over a recording already collected.
//
//go:embed passport-instance.json
var Instance []byte

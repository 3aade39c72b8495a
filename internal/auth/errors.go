package auth

import "errors"

// Reason names why a token was refused. It is the metric label
// (tickwire_auth_refusals_total{reason}) and the text a client is told; the set is fixed, so
// the label stays bounded.
type Reason string

// The refusal reasons, one per check (docs/PROTOCOL.md, "Authentication").
const (
	ReasonMissing         Reason = "missing"          // no token where one is required
	ReasonMalformed       Reason = "malformed"        // not a JWT, bad JSON, bad claims, no exp
	ReasonAlgNotAllowed   Reason = "alg_not_allowed"  // alg none, or an alg no configured key takes
	ReasonUnknownKID      Reason = "unknown_kid"      // no key with the token's kid
	ReasonBadSignature    Reason = "bad_signature"    // the signature does not verify
	ReasonExpired         Reason = "expired"          // exp is past (after the leeway)
	ReasonNotYetValid     Reason = "not_yet_valid"    // nbf (or iat) is in the future
	ReasonWrongAudience   Reason = "wrong_audience"   // aud does not name the configured audience
	ReasonWrongIssuer     Reason = "wrong_issuer"     // iss is not the configured issuer
	ReasonRevoked         Reason = "revoked"          // the Revoked hook said so (jti or sub)
	ReasonSubjectMismatch Reason = "subject_mismatch" // a refresh for another subject
)

// Reasons lists every Reason, for metrics and documentation.
var Reasons = []Reason{ReasonMissing, ReasonMalformed, ReasonAlgNotAllowed, ReasonUnknownKID,
	ReasonBadSignature, ReasonExpired, ReasonNotYetValid, ReasonWrongAudience, ReasonWrongIssuer,
	ReasonRevoked, ReasonSubjectMismatch}

// Error is a refused token. It never holds the token or any part of it.
type Error struct {
	Reason Reason
	detail string // what the library or the key lookup said; safe to log
}

func (e *Error) Error() string {
	if e.detail == "" {
		return "auth: token refused: " + string(e.Reason)
	}
	return "auth: token refused: " + string(e.Reason) + ": " + e.detail
}

// Is matches any *Error with the same Reason, so errors.Is(err, auth.ErrExpired) works on a
// refusal that carries a detail.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Reason == e.Reason
}

// Sentinels, one per reason: compare with errors.Is.
var (
	ErrMissing         = &Error{Reason: ReasonMissing}
	ErrMalformed       = &Error{Reason: ReasonMalformed}
	ErrAlgNotAllowed   = &Error{Reason: ReasonAlgNotAllowed}
	ErrUnknownKID      = &Error{Reason: ReasonUnknownKID}
	ErrBadSignature    = &Error{Reason: ReasonBadSignature}
	ErrExpired         = &Error{Reason: ReasonExpired}
	ErrNotYetValid     = &Error{Reason: ReasonNotYetValid}
	ErrWrongAudience   = &Error{Reason: ReasonWrongAudience}
	ErrWrongIssuer     = &Error{Reason: ReasonWrongIssuer}
	ErrRevoked         = &Error{Reason: ReasonRevoked}
	ErrSubjectMismatch = &Error{Reason: ReasonSubjectMismatch}
)

// ReasonOf returns the Reason of a refusal, or "" for any other error.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// ErrNoKeys is returned by New when neither an HS256 key nor a JWKS is configured.
var ErrNoKeys = errors.New("auth: no verification key configured (an HS256 key file or a JWKS file)")

func refuse(r Reason, detail string) *Error { return &Error{Reason: r, detail: detail} }

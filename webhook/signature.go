// Package webhook delivers Refit's events to HTTP endpoints and lets the
// receiving side check them.
//
// Each event is POSTed as a structured CloudEvent (Content-Type
// application/cloudevents+json) with three headers:
//
//	Refit-Delivery-Id  stable per (endpoint, event): retries carry the same one
//	Refit-Timestamp    Unix seconds when this attempt was signed
//	Refit-Signature    sha256=<hex HMAC-SHA256(secret, id + "." + timestamp + "." + body)>
//
// A receiver verifies the signature with Verify (or VerifyRequest), rejects
// old timestamps (replays), and deduplicates on the delivery ID: delivery
// is at least once.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Headers and content type of a delivery.
const (
	HeaderDeliveryID = "Refit-Delivery-Id"
	HeaderTimestamp  = "Refit-Timestamp"
	HeaderSignature  = "Refit-Signature"
	ContentType      = "application/cloudevents+json"
)

// ErrSignature: the signature does not match (wrong secret, or the id,
// timestamp or body changed on the way).
var ErrSignature = errors.New("webhook: signature mismatch")

// Sign returns the Refit-Signature value for a delivery.
func Sign(secret, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery's signature in constant time: id is the
// Refit-Delivery-Id header, timestamp the Refit-Timestamp header, body the
// raw request body (before any JSON decoding), signature the
// Refit-Signature header.
func Verify(secret, id, timestamp string, body []byte, signature string) error {
	if secret == "" {
		return errors.New("webhook: no secret to verify with")
	}
	if !hmac.Equal([]byte(Sign(secret, id, timestamp, body)), []byte(signature)) {
		return ErrSignature
	}
	return nil
}

// MaxBodyBytes bounds what VerifyRequest reads.
const MaxBodyBytes = 1 << 20

// VerifyRequest reads a delivery and checks it: the signature, and a
// timestamp no further than tolerance from now (an old, replayed delivery
// fails). It returns the delivery ID and the body.
func VerifyRequest(r *http.Request, secret string, tolerance time.Duration, now time.Time) (id string, body []byte, err error) {
	id, ts := r.Header.Get(HeaderDeliveryID), r.Header.Get(HeaderTimestamp)
	if id == "" || ts == "" {
		return "", nil, fmt.Errorf("webhook: missing %s or %s header", HeaderDeliveryID, HeaderTimestamp)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", nil, fmt.Errorf("webhook: %s %q: %w", HeaderTimestamp, ts, err)
	}
	if age := now.Sub(time.Unix(sec, 0)).Abs(); age > tolerance {
		return "", nil, fmt.Errorf("webhook: timestamp %s is %s away from now (tolerance %s)", ts, age.Round(time.Second), tolerance)
	}
	body, err = io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes))
	if err != nil {
		return "", nil, fmt.Errorf("webhook: read body: %w", err)
	}
	if err := Verify(secret, id, ts, body, r.Header.Get(HeaderSignature)); err != nil {
		return "", nil, err
	}
	return id, body, nil
}

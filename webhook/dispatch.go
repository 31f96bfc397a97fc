package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/registry"
)

// Log is the delivery log: insert-only, one record per attempt and one per
// final outcome (a second outcome for a delivery is store.ErrDuplicate).
type Log interface {
	AddWebhookDelivery(ctx context.Context, d registry.WebhookDelivery) error
	WebhookDelivery(ctx context.Context, deliveryID string) ([]registry.WebhookDelivery, error)
	// ClaimWebhookAttempt inserts a claim on one attempt number before it
	// is sent (store.ErrDuplicate: another sender has it); WebhookClaims
	// lists a delivery's claims, or all of them for "".
	ClaimWebhookAttempt(ctx context.Context, c registry.WebhookDelivery) error
	WebhookClaims(ctx context.Context, deliveryID string) ([]registry.WebhookDelivery, error)
}

// Config holds the dispatcher's endpoints, secret and dependencies.
type Config struct {
	URLs   []string
	Secret string
	Log    Log
	Logger *slog.Logger
	// Source is the CloudEvents source (default refit/promote).
	Source string
	// Client sends the requests (default: a client with a 10 s timeout
	// that does not follow redirects).
	Client *http.Client
	// MaxAttempts per delivery (default 6), with exponential backoff from
	// InitialBackoff (default 1 s) doubling up to MaxBackoff (default 1 min).
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// StaleAfter: a delivery without an outcome whose last claim or
	// attempt is older than this lost its sender (a crash, a restart);
	// Reconcile resumes it (default: MaxBackoff plus twice the client
	// timeout).
	StaleAfter time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Source == "" {
		c.Source = "refit/promote"
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 6
	}
	if c.InitialBackoff == 0 {
		c.InitialBackoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = time.Minute
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = c.MaxBackoff + 2*c.Client.Timeout + time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Log == nil:
		return errors.New("webhook: Config.Log is nil")
	case c.Logger == nil:
		return errors.New("webhook: Config.Logger is nil")
	}
	if c.Secret == "" {
		return errors.New("webhook: a secret is required to sign deliveries")
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("webhook: %q is not an http(s) URL", Redact(u))
		}
	}
	if c.MaxAttempts < 1 || c.InitialBackoff < 0 || c.MaxBackoff < c.InitialBackoff {
		return errors.New("webhook: attempts must be positive and max backoff >= initial backoff")
	}
	return nil
}

// Dispatcher POSTs events to every configured URL. Run it in one consumer
// group ("webhooks") so that one replica delivers each event.
type Dispatcher struct {
	cfg Config
	log *slog.Logger
}

// NewDispatcher builds a dispatcher.
func NewDispatcher(cfg Config) (*Dispatcher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Dispatcher{cfg: cfg, log: cfg.Logger.With("component", "webhooks")}, nil
}

// HandlePromoted delivers a model.promoted event.
func (d *Dispatcher) HandlePromoted(ctx context.Context, e *events.ModelPromoted) error {
	return d.Dispatch(ctx, e)
}

// Dispatch delivers one event to every URL, each at most once as far as
// the delivery log knows: a delivery with an outcome (delivered, or given
// up after MaxAttempts) is not attempted again, so a repeated event
// (at-least-once buses, reconcile re-announcements) changes nothing. It
// returns an error only when the log cannot be written or ctx ends; the
// bus then redelivers and the attempts go on under the same delivery ID.
func (d *Dispatcher) Dispatch(ctx context.Context, e events.Event) error {
	body, err := events.Structured(e, d.cfg.Source)
	if err != nil {
		return err
	}
	errs := make([]error, len(d.cfg.URLs))
	var wg sync.WaitGroup
	meta := events.MetaOf(e)
	for i, u := range d.cfg.URLs {
		base := registry.WebhookDelivery{DeliveryID: DeliveryID(u, meta.ID), URL: Redact(u), EventID: meta.ID, EventType: e.Type(), Dataset: meta.Dataset}
		wg.Go(func() { errs[i] = d.deliver(ctx, u, base, body) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DeliveryID is stable per (URL, event ID).
func DeliveryID(url, eventID string) string {
	sum := sha256.Sum256([]byte(url + "\n" + eventID))
	return "dlv_" + hex.EncodeToString(sum[:12])
}

// deliver sends one event to one URL until it is delivered or MaxAttempts
// were made. Each attempt number is claimed by insert before it is sent, so
// two senders (a redelivered event while the first still retries, two
// replicas, a resumed delivery) never send the same attempt: the one that
// loses a claim stops, and every POST made has a claim in the log.
func (d *Dispatcher) deliver(ctx context.Context, u string, base registry.WebhookDelivery, body []byte) error {
	st, err := d.state(ctx, base.DeliveryID)
	if err != nil {
		return err
	}
	switch {
	case st.done:
		return nil // delivered, or given up: once is the contract
	case st.delivered:
		// Sent and answered 2xx, then the sender stopped before the outcome.
		return d.finish(ctx, base, st.attempt, nil)
	}
	attempt := st.attempt
	backoff := d.cfg.InitialBackoff
	for {
		attempt++
		claim := base
		claim.Kind, claim.Attempt, claim.At, claim.Payload = registry.DeliveryClaim, attempt, d.cfg.Now().UTC(), string(body)
		err := d.cfg.Log.ClaimWebhookAttempt(ctx, claim)
		if registry.IsDuplicate(err) {
			// Another sender has this attempt: it goes on from here.
			d.log.Info("delivery attempt taken by another sender", "delivery", base.DeliveryID, "attempt", attempt)
			return nil
		}
		if err != nil {
			return fmt.Errorf("webhook %s: claim attempt %d: %w", base.DeliveryID, attempt, err)
		}
		start := d.cfg.Now()
		status, postErr := d.post(ctx, u, base.DeliveryID, body)
		rec := base
		rec.Kind, rec.Attempt, rec.HTTPStatus, rec.At = registry.DeliveryAttempt, attempt, status, d.cfg.Now().UTC()
		rec.DurationMS = float64(d.cfg.Now().Sub(start).Microseconds()) / 1000
		if postErr != nil {
			rec.Error = postErr.Error()
		}
		if err := d.cfg.Log.AddWebhookDelivery(ctx, rec); err != nil && !registry.IsDuplicate(err) {
			return fmt.Errorf("webhook %s: log attempt %d: %w", base.DeliveryID, attempt, err)
		}
		if postErr == nil || attempt >= d.cfg.MaxAttempts {
			return d.finish(ctx, base, attempt, postErr)
		}
		d.log.Info("delivery failed; will retry", "delivery", base.DeliveryID, "url", base.URL, "event", base.EventID,
			"attempt", attempt, "backoff", backoff, "err", postErr)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, d.cfg.MaxBackoff)
	}
}

// deliveryState is what the log says of one delivery.
type deliveryState struct {
	done      bool // it has an outcome
	delivered bool // an attempt was answered 2xx (its outcome may be missing)
	attempt   int  // the highest attempt number claimed or logged
	last      time.Time
	payload   string // from its newest claim
}

func (d *Dispatcher) state(ctx context.Context, id string) (deliveryState, error) {
	var st deliveryState
	logged, err := d.cfg.Log.WebhookDelivery(ctx, id)
	if err != nil {
		return st, fmt.Errorf("webhook %s: read delivery log: %w", id, err)
	}
	claims, err := d.cfg.Log.WebhookClaims(ctx, id)
	if err != nil {
		return st, fmt.Errorf("webhook %s: read delivery claims: %w", id, err)
	}
	for _, rec := range logged {
		switch rec.Kind {
		case registry.DeliveryOutcome:
			st.done = true
		case registry.DeliveryAttempt:
			st.delivered = st.delivered || rec.Error == ""
		}
		st.attempt, st.last = max(st.attempt, rec.Attempt), later(st.last, rec.At)
	}
	for _, c := range claims {
		st.attempt, st.last = max(st.attempt, c.Attempt), later(st.last, c.At)
		st.payload = c.Payload
	}
	return st, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Reconcile resumes the deliveries whose sender stopped (a crash or a
// restart between a claim and the outcome): those without an outcome
// whose last claim or attempt is older than StaleAfter. They go on under
// the same delivery ID, from the body recorded with their claim, so a
// receiver deduplicates a POST that was sent but not logged.
func (d *Dispatcher) Reconcile(ctx context.Context) error {
	claims, err := d.cfg.Log.WebhookClaims(ctx, "")
	if err != nil {
		return fmt.Errorf("webhook reconcile: %w", err)
	}
	urls := make(map[string]string, len(d.cfg.URLs)) // delivery ID -> URL, for the events claimed
	seen := map[string]bool{}
	var errs []error
	for _, c := range claims {
		if seen[c.DeliveryID] {
			continue
		}
		seen[c.DeliveryID] = true
		for _, u := range d.cfg.URLs {
			urls[DeliveryID(u, c.EventID)] = u
		}
		u, ok := urls[c.DeliveryID]
		if !ok {
			continue // a URL no longer configured
		}
		st, err := d.state(ctx, c.DeliveryID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.done || d.cfg.Now().Sub(st.last) < d.cfg.StaleAfter || st.payload == "" {
			continue
		}
		base := c
		base.Kind, base.Attempt, base.At, base.Payload = "", 0, time.Time{}, ""
		d.log.Info("resuming a delivery whose sender stopped", "delivery", c.DeliveryID, "url", c.URL, "event", c.EventID, "attempts", st.attempt)
		errs = append(errs, d.deliver(ctx, u, base, []byte(st.payload)))
	}
	return errors.Join(errs...)
}

func (d *Dispatcher) finish(ctx context.Context, base registry.WebhookDelivery, attempts int, lastErr error) error {
	rec := base
	rec.Kind, rec.Attempt, rec.Outcome, rec.At = registry.DeliveryOutcome, attempts, registry.OutcomeDelivered, d.cfg.Now().UTC()
	if lastErr != nil {
		rec.Outcome, rec.Error = registry.OutcomeFailed, lastErr.Error()
		d.log.Warn("delivery failed for good", "delivery", base.DeliveryID, "url", base.URL, "event", base.EventID, "attempts", attempts, "err", lastErr)
	} else {
		d.log.Info("delivered", "delivery", base.DeliveryID, "url", base.URL, "event", base.EventID, "attempts", attempts)
	}
	if err := d.cfg.Log.AddWebhookDelivery(ctx, rec); err != nil && !registry.IsDuplicate(err) {
		return fmt.Errorf("webhook %s: log outcome: %w", base.DeliveryID, err)
	}
	return nil
}

// post sends one signed attempt; any status but 2xx is a failure.
func (d *Dispatcher) post(ctx context.Context, u, id string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "refit-webhooks/1")
	req.Header.Set(HeaderDeliveryID, id)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(d.cfg.Secret, id, ts, body))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		// The URL may carry credentials: say what failed without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("POST %s: %w", Redact(u), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("POST %s: %s", Redact(u), resp.Status)
	}
	return resp.StatusCode, nil
}

// Redact drops a URL's credentials and query string, which may hold
// secrets, for logs and the delivery log.
func Redact(raw string) string {
	p, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}

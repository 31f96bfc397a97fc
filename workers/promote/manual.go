package promote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/workers"
)

// ErrConflict: the request does not fit the promotion history (the run
// already serves, there is nothing to roll back to). Asking again will not
// help until the history changes.
var ErrConflict = errors.New("conflict with the promotion history")

// Manual promotes on a person's behalf: a chosen run (e.g. one awaiting
// approval), or back to the previous champion. Each is a new entry of the
// append-only history under the next sequence number, claimed by insert
// like the automatic promotions it may race with, and announced with
// model.promoted so gateways swap at once.
type Manual struct {
	reg       *registry.Registry
	artifacts dataset.Opener
	pub       workers.Publisher
	log       *slog.Logger
	now       func() time.Time
}

// NewManual builds a manual promoter; artifacts is where the models are
// (the bucket): a run is promoted only if its artifact loads and matches
// its checksum, so a promotion never names a model gateways cannot serve.
// clock stamps PromotedAt, as the workers' Deps.Clock does; nil is the
// system clock.
func NewManual(reg *registry.Registry, artifacts dataset.Opener, pub workers.Publisher, logger *slog.Logger, clock workers.Clock) *Manual {
	return &Manual{reg: reg, artifacts: artifacts, pub: pub, log: logger.With("component", "promote.manual"),
		now: workers.Deps{Clock: clock}.Now()}
}

// Promote makes runID the champion of ds.
func (m *Manual) Promote(ctx context.Context, ds, runID, actor, reason string) (registry.Promotion, error) {
	actor = actorOr(actor)
	run, err := m.reg.Run(ctx, ds, runID)
	if err != nil {
		return registry.Promotion{}, fmt.Errorf("promote run %s of %s: %w", runID, ds, err)
	}
	if err := m.servable(ctx, run); err != nil {
		return registry.Promotion{}, err
	}
	p, err := m.reg.AppendPromotion(ctx, ds, func(latest registry.Promotion, ok bool) (registry.Promotion, error) {
		if ok && latest.RunID == run.ID {
			return registry.Promotion{}, fmt.Errorf("%w: run %s is already the champion of %s (promotion #%d)", ErrConflict, run.ID, ds, latest.Sequence)
		}
		why := reason
		if why == "" {
			why = fmt.Sprintf("promoted by hand by %s: %s on version %d (rmse %.6g, r2 %.4g on its own test rows)",
				actor, run.Spec, run.Version, run.Metrics.RMSE, run.Metrics.R2)
		}
		return fromRun(run, latest.RunID, actor, why, m.now()), nil
	})
	if err != nil {
		return p, err
	}
	m.announce(ctx, p)
	return p, nil
}

// Rollback makes the previous champion of ds (the latest promotion's
// previous run) the champion again. A second rollback undoes the first.
func (m *Manual) Rollback(ctx context.Context, ds, actor, reason string) (registry.Promotion, error) {
	actor = actorOr(actor)
	p, err := m.reg.AppendPromotion(ctx, ds, func(latest registry.Promotion, ok bool) (registry.Promotion, error) {
		if !ok {
			return registry.Promotion{}, fmt.Errorf("%w: %s has no promotion yet, nothing to roll back", ErrConflict, ds)
		}
		if latest.PreviousRunID == "" {
			return registry.Promotion{}, fmt.Errorf("%w: promotion #%d of %s (run %s) had no previous champion to roll back to",
				ErrConflict, latest.Sequence, ds, latest.RunID)
		}
		run, err := m.reg.Run(ctx, ds, latest.PreviousRunID)
		if err != nil {
			return registry.Promotion{}, fmt.Errorf("rollback %s to run %s: %w", ds, latest.PreviousRunID, err)
		}
		if err := m.servable(ctx, run); err != nil {
			return registry.Promotion{}, err
		}
		why := fmt.Sprintf("rollback by %s from run %s (promotion #%d) to the previous champion %s", actor, latest.RunID, latest.Sequence, run.ID)
		if reason != "" {
			why += ": " + reason
		}
		return fromRun(run, latest.RunID, actor, why, m.now()), nil
	})
	if err != nil {
		return p, err
	}
	m.announce(ctx, p)
	return p, nil
}

// servable checks that the run's artifact loads and matches its checksum.
func (m *Manual) servable(ctx context.Context, run registry.Run) error {
	_, err := model.Load(ctx, m.artifacts, run.Artifact, run.Checksum)
	if errors.Is(err, model.ErrInvalidArtifact) || errors.Is(err, blob.ErrNotExist) {
		return fmt.Errorf("%w: run %s cannot be served: %w", ErrConflict, run.ID, err)
	}
	return err
}

// announce: the promotion is recorded; a lost event only delays gateways
// until their next refresh, so the caller still gets its answer.
func (m *Manual) announce(ctx context.Context, p registry.Promotion) {
	m.log.Info("promoted by hand", "dataset", p.Dataset, "run", p.RunID, "sequence", p.Sequence, "previous", p.PreviousRunID,
		"actor", p.Actor, "reason", p.Reason)
	if err := m.pub.Publish(ctx, PromotedEvent(p, "")); err != nil {
		m.log.Warn("promotion recorded but not announced; gateways will find it on refresh", "dataset", p.Dataset, "sequence", p.Sequence, "err", err)
	}
}

// ActorAdmin names a person who did not say who they are.
const ActorAdmin = "admin"

func actorOr(actor string) string {
	if actor == "" {
		return ActorAdmin
	}
	return actor
}

// fromRun is the promotion of a run by hand. Its metrics are the run's own
// scores on its version's test split.
func fromRun(run registry.Run, previous, actor, reason string, at time.Time) registry.Promotion {
	return registry.Promotion{
		RunID: run.ID, Spec: run.Spec, Version: run.Version, VersionHash: run.VersionHash,
		ArtifactURI: run.ArtifactURI, Artifact: run.Artifact, Checksum: run.Checksum, Metrics: run.Metrics,
		PreviousRunID: previous, Actor: actor, Reason: reason, PromotedAt: at,
	}
}

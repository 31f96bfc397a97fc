package registry

import "slices"

// Standing is where a run stands now: its recorded decision brought up to
// date by the promotion history. The rule decides once, but a person may
// promote the run later (approving one awaiting approval, or overruling a
// rejection), so the decision alone goes stale.
type Standing struct {
	// Decision as of now: Status, Promoted, Sequence and Reason come from
	// the run's latest promotion when the rule did not promote it.
	Decision
	// Decided and DecidedReason are what the rule recorded, when the
	// history overrides it ("" when no decision is recorded).
	Decided       string `json:"decided,omitempty"`
	DecidedReason string `json:"decided_reason,omitempty"`
	// Champion: the run is the latest promotion's.
	Champion bool `json:"champion"`
}

// StandingOf is the standing of runID from its decision (nil when none is
// recorded) and the dataset's history, oldest first. ok is false for a run
// neither decided nor promoted.
func StandingOf(runID string, dec *Decision, history []Promotion) (st Standing, ok bool) {
	if dec != nil {
		st.Decision = *dec
		st.Status = dec.DecisionStatus()
	}
	var last *Promotion
	for i := range history {
		if history[i].RunID == runID {
			last = &history[i]
		}
	}
	if last == nil {
		return st, dec != nil
	}
	st.RunID, st.Dataset = runID, last.Dataset
	st.Champion = history[len(history)-1].RunID == runID
	if st.Status != StatusPromoted {
		if dec != nil {
			st.Decided, st.DecidedReason = st.Status, st.Reason
		} else {
			st.DecidedAt = last.PromotedAt
		}
		st.Status, st.Promoted, st.Sequence, st.Reason = StatusPromoted, true, last.Sequence, last.Reason
	}
	return st, true
}

// Standings are the standings of every run decided or promoted, in
// decision order (a run promoted before any decision: its promotion time).
func Standings(decisions []Decision, history []Promotion) []Standing {
	out := make([]Standing, 0, len(decisions))
	decided := make(map[string]bool, len(decisions))
	for i := range decisions {
		st, _ := StandingOf(decisions[i].RunID, &decisions[i], history)
		out = append(out, st)
		decided[decisions[i].RunID] = true
	}
	for _, p := range history {
		if !decided[p.RunID] {
			st, _ := StandingOf(p.RunID, nil, history)
			out = append(out, st)
			decided[p.RunID] = true
		}
	}
	slices.SortStableFunc(out, func(a, b Standing) int { return a.DecidedAt.Compare(b.DecidedAt) })
	return out
}

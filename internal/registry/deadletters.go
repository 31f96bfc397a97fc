package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// colReplays holds one record per replayed dead letter.
const colReplays = "deadletter_replays"

// DeadLetterID names a dead letter in the API: a message dead-lettered by
// two handlers is two dead letters.
func DeadLetterID(d DeadLetter) string {
	sum := sha256.Sum256([]byte(d.MessageID + "/" + d.Handler))
	return hex.EncodeToString(sum[:8])
}

// Replay records that an admin republished a dead letter's message.
type Replay struct {
	DeadLetterID string    `json:"dead_letter_id"`
	Topic        string    `json:"topic"`
	MessageID    string    `json:"message_id"` // the republished message's ID
	Actor        string    `json:"actor"`
	At           time.Time `json:"at"`
}

// AddReplay records a replay, once per dead letter: a second is
// ErrDuplicate.
func (r *Registry) AddReplay(ctx context.Context, rp Replay) error {
	return r.insert(ctx, colReplays, rp.DeadLetterID, rp)
}

// Replays returns every replay by dead letter ID.
func (r *Registry) Replays(ctx context.Context) (map[string]Replay, error) {
	all, err := list[Replay](ctx, r, colReplays, "")
	if err != nil {
		return nil, err
	}
	out := make(map[string]Replay, len(all))
	for _, rp := range all {
		out[rp.DeadLetterID] = rp
	}
	return out, nil
}

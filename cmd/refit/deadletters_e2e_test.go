package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/client"
)

// A file for a dataset with no definition is dead-lettered with its
// reason; the API and `refit deadletters` list it; a replay republishes
// it once (a second replay answers the first), and as the cause is not
// fixed here, the replayed message fails again as a new dead letter that
// names the one it replays.
func TestDeadLettersListAndReplay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startProgram(t, dir)
	ctx := context.Background()
	c := client.New(p.base)
	folder := filepath.Join(dir, "bucket", "incoming", "nosuch")
	require.NoError(t, os.MkdirAll(folder, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(folder, "x.csv"), generate(t, 5, 3), 0o644))

	var dls []client.DeadLetter
	p.eventually("a dead letter", func() bool {
		var err error
		dls, err = c.DeadLetters(ctx)
		require.NoError(t, err)
		return len(dls) == 1
	})
	d := dls[0]
	require.Contains(t, d.Reason, "nosuch")
	require.Equal(t, "object.finalized", d.Topic)
	require.Nil(t, d.Replay)

	out, err := p.cli("", "deadletters")
	require.NoError(t, err, out)
	require.Contains(t, out, d.ID)
	require.Contains(t, out, "nosuch")

	out, err = p.cli("", "deadletters", "--replay", d.ID, "--actor", "ana")
	require.NoError(t, err, out)
	require.Contains(t, out, "dead letter "+d.ID+" replayed on object.finalized")
	again, err := c.ReplayDeadLetter(ctx, d.ID, "bob")
	require.NoError(t, err)
	require.True(t, again.Already, "a second replay publishes nothing")
	require.Equal(t, "ana", again.Actor)

	p.eventually("the replay fails again as a new dead letter", func() bool {
		dls, err = c.DeadLetters(ctx)
		require.NoError(t, err)
		return len(dls) == 2
	})
	require.NotNil(t, dls[0].Replay)
	require.Equal(t, d.ID, dls[1].Metadata["refit_replay_of"])
	require.Equal(t, again.MessageID, dls[1].MessageID)

	_, err = c.ReplayDeadLetter(ctx, "nope", "")
	require.Equal(t, 404, client.StatusCode(err), "%v", err)
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/client"
	"github.com/refit-ml/refit/internal/blob/gcs"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/mongo"
	"github.com/refit-ml/refit/schemas"
	"github.com/refit-ml/refit/workers/stats"
)

// statsUploads are the files of TestBlobStatisticsAcrossTrainers: one
// version each (every file fills housing's batch of 500).
var statsUploads = []struct {
	name string
	seed int64
	rows int
}{{"s1.csv", 31, 1100}, {"s2.csv", 32, 800}, {"s3.csv", 33, 650}, {"s4.csv", 34, 900}}

// fittedRun is what must not depend on which trainer computed what (nor
// on the profile: version hashes cover the staged rows' source names, the
// artifacts do not).
type fittedRun struct {
	Version                    int
	Spec, FittedFrom, Checksum string
}

func fittedRuns(t *testing.T, base string) []fittedRun {
	runs, err := client.New(base).Runs(context.Background(), "housing", client.RunsQuery{})
	if err != nil {
		return nil
	}
	var out []fittedRun
	for _, r := range runs.Runs {
		out = append(out, fittedRun{r.Version, r.Spec, r.FittedFrom, r.Checksum})
	}
	slices.SortFunc(out, func(a, b fittedRun) int {
		if a.Version != b.Version {
			return a.Version - b.Version
		}
		return strings.Compare(a.Spec, b.Spec)
	})
	return out
}

// TestBlobStatisticsAcrossTrainers runs two train processes on the Pub/Sub
// emulator, fake-gcs-server and FerretDB; they share the blob.written and
// dataset.versioned subscriptions, and one is killed (kill -9) while a
// blob's statistics may be in flight. Every rows blob ends with statistics
// equal to those of its rows (never a half-written file), every blob's
// message was handled by some trainer, and every run was fitted from
// statistics with the artifact checksum of one embedded process fed the
// same files.
func TestBlobStatisticsAcrossTrainers(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: not in -short")
	}
	const project, bucket = "refit-stats", "refit-stats-bucket"
	// A 10 s ack deadline: the emulator keeps dispatching to the killed
	// trainer's dead stream, and each such message returns only after the
	// deadline (plus the subscription's retry backoff).
	s := startEmulatorStack(t, project, bucket, "REFIT_PUBSUB_ACK_DEADLINE=10s")
	c, bin, env, mongoURI, logs := s.cluster, s.bin, s.env, s.mongoURI, s.logs
	setup := exec.Command(bin, "setup")
	setup.Env = env
	out, err := setup.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "created projects/"+project+"/subscriptions/refit.train.blob.written")

	gateway := c.start("gateway")
	c.start("preprocess")
	c.start("version")
	trainers := []*proc{c.start("train"), c.start("train")}
	c.start("promote")
	base := gateway.url

	ctx := context.Background()
	storageClient, err := gcs.NewClient(ctx, s.gcsURL)
	require.NoError(t, err)
	put := func(name string, content []byte) {
		w := storageClient.Bucket(bucket).Object("incoming/housing/" + name).NewWriter(ctx)
		w.ContentType = "text/csv"
		_, err := w.Write(content)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	put(statsUploads[0].name, generate(t, statsUploads[0].seed, statsUploads[0].rows))
	put(statsUploads[1].name, generate(t, statsUploads[1].seed, statsUploads[1].rows))
	waitFor(t, "version 1", 90*time.Second, func() bool { return len(summarize(t, base).Versions) >= 1 }, logs)
	// A trainer dies with work in flight (a blob's statistics, a fit);
	// its messages go to the other once their ack deadline passes.
	put(statsUploads[2].name, generate(t, statsUploads[2].seed, statsUploads[2].rows))
	c.kill(trainers[0])
	put(statsUploads[3].name, generate(t, statsUploads[3].seed, statsUploads[3].rows))
	time.Sleep(500 * time.Millisecond)
	trainers = append(trainers, c.start("train"))

	n := len(statsUploads)
	waitFor(t, fmt.Sprintf("%d versions, %d runs, all decided", n, 2*n), 240*time.Second, func() bool {
		s := summarize(t, base)
		return len(s.Versions) == n && len(s.Runs) == 2*n && s.Champion != "" && decided(t, base) == 2*n
	}, logs)
	got := fittedRuns(t, base)

	// Every rows blob has statistics, equal to those of its rows.
	catalog, err := dataset.LoadCatalog(schemas.Files, "datasets", "")
	require.NoError(t, err)
	def, _ := catalog.Get("housing")
	key, err := model.StatsKey(def)
	require.NoError(t, err)
	docs, err := mongo.Open(ctx, mongoURI, "refit")
	require.NoError(t, err)
	t.Cleanup(func() { _ = docs.Close(context.Background()) })
	versions, err := registry.New(docs).Versions(ctx, "housing")
	require.NoError(t, err)
	blobs := versions[len(versions)-1].Blobs
	require.Len(t, blobs, n, "one rows blob per version")
	read := func(name string) []byte {
		r, err := storageClient.Bucket(bucket).Object(name).NewReader(ctx)
		require.NoError(t, err, name)
		defer r.Close()
		b, err := io.ReadAll(r)
		require.NoError(t, err)
		return b
	}
	for _, b := range blobs {
		stored := read(stats.BlobName(b, key))
		_, err := model.UnmarshalStats(stored)
		require.NoError(t, err, "statistics of %s", b)
		rows := read(b)
		want, err := model.ComputeStats(ctx, def, func(fn func(dataset.StagedRow) error) error {
			sr, err := def.NewStagedReader(bytes.NewReader(rows))
			if err != nil {
				return err
			}
			var row dataset.StagedRow
			for {
				if err := sr.Read(&row); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				if err := fn(row); err != nil {
					return err
				}
			}
		})
		require.NoError(t, err)
		require.True(t, bytes.Equal(want.Marshal(), stored), "statistics of %s differ from its rows'", b)
	}
	// Every blob's own message was handled by a trainer (computing the
	// statistics, or finding them when a fit or the other trainer was
	// first); which one does not matter. A message the killed trainer held
	// comes back once its ack deadline (10 s here) passes; but the emulator
	// (0.8.20, before streaming-pull keepalives) goes on dispatching to the
	// dead stream for minutes, each time after the subscription's retry
	// backoff (10 s, doubling). Five such bounces in a row fit in 300 s.
	handled := func() map[string][]int {
		out := map[string][]int{}
		for i, p := range trainers {
			for _, line := range strings.Split(p.out.String(), "\n") {
				if !strings.Contains(line, "blob statistics ready") {
					continue
				}
				for _, b := range blobs {
					if strings.Contains(line, "blob="+b+" ") {
						out[b] = append(out[b], i)
					}
				}
			}
		}
		return out
	}
	waitFor(t, "blob.written of every blob handled", 300*time.Second, func() bool { return len(handled()) == len(blobs) }, logs)
	t.Logf("blob.written handled by trainers (0 was killed, 2 started after): %v", handled())

	// Fitted from statistics, with the checksums of one embedded process.
	for _, r := range got {
		require.Equal(t, "statistics", r.FittedFrom, "%+v", r)
	}
	p := startProgram(t, t.TempDir())
	want := 0
	for _, u := range statsUploads {
		p.upload(p.api(), "housing", u.name, generate(t, u.seed, u.rows))
		want += u.rows
		p.eventually("staged "+u.name, func() bool { return p.dataset().Rows.Accepted == want })
	}
	p.eventually("embedded trained", func() bool { return len(fittedRuns(t, p.base)) == 2*n })
	require.Equal(t, fittedRuns(t, p.base), got)
}

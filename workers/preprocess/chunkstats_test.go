package preprocess_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/model"
	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/stats"
	"github.com/refit-ml/refit/workers/workertest"
)

// hostileStrings go into city (one-hot) and street (hashed): whatever CSV
// quoting does to them, the staged reader must give them back as staging
// summed them.
var hostileStrings = []string{"Seattle", "Sea,ttle", `Sea"ttle`, `"Seattle"`, "Sea\nttle", "Seattle\n", "\nSeattle",
	`\.`, "Séattle", "Sea ttle", "Sea\tttle", ",", `""`, "\u00a0x", "x\u2028y"}

// withStrings is a generated file, then a row per hostile string in city
// and in street.
func withStrings(t *testing.T, extra ...string) []byte {
	var buf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: 12, BadRowFraction: 0.03}.Write(&buf, 400))
	cw := csv.NewWriter(&buf)
	for _, col := range []int{15, 14} { // city, street
		for _, v := range append(hostileStrings, extra...) {
			f := strings.Split(good, ",")
			f[col] = v
			require.NoError(t, cw.Write(f))
		}
	}
	cw.Flush()
	return buf.Bytes()
}

// TestChunkStatisticsEqualTheChunks: the statistics staging writes beside
// a chunk are, byte for byte, those ComputeStats gives on the chunk read
// back, so a train worker that finds them fits what it would have fitted
// from the rows.
func TestChunkStatisticsEqualTheChunks(t *testing.T) {
	tests := []struct {
		name  string
		batch int
		input func(t *testing.T) []byte
		want  bool // a statistics file is written
	}{
		{"generated, bad rows and price 0", 150, func(t *testing.T) []byte {
			var buf bytes.Buffer
			require.NoError(t, synth.Housing{Seed: 3, ZeroPriceFraction: 0.02, BadRowFraction: 0.05}.Write(&buf, 3000))
			return buf.Bytes()
		}, true},
		{"hostile numbers", 150, stagingInput, true},
		{"hostile strings", 150, func(t *testing.T) []byte { return withStrings(t) }, true},
		{"a carriage return in a string", 150, func(t *testing.T) []byte { return withStrings(t, "Sea\rttle") }, false},
		{"smaller than a batch", 5000, func(t *testing.T) []byte { return houses(t, 4, 300) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := workertest.New(t, tt.batch)
			w, err := preprocess.New(preprocess.Config{Deps: e.Deps(t)})
			require.NoError(t, err)
			require.NoError(t, w.HandleObject(ctx, e.Put(t, "in.csv", tt.input(t))))
			if in, _ := e.Registry.Ingests(ctx, "housing"); len(in) == 1 {
				t.Logf("accepted %d rejected %d", in[0].Accepted, in[0].Rejected)
			}
			ingests, err := e.Registry.Ingests(ctx, "housing")
			require.NoError(t, err)
			require.Len(t, ingests, 1)
			chunk := ingests[0].Chunk
			require.NotEmpty(t, chunk)

			key, err := model.StatsKey(e.Def)
			require.NoError(t, err)
			rc, err := e.Local.Open(ctx, stats.BlobName(chunk, key))
			if !tt.want {
				require.True(t, errors.Is(err, blob.ErrNotExist), "a statistics file was written: %v", err)
				return
			}
			require.NoError(t, err)
			written, err := io.ReadAll(rc)
			rc.Close()
			require.NoError(t, err)
			fromChunk, err := model.ComputeStats(ctx, e.Def, e.Def.ScanBlobs(ctx, e.Local, []string{chunk}, nil))
			require.NoError(t, err)
			require.Equal(t, int64(ingests[0].Accepted), fromChunk.Train.N+fromChunk.Test.N)
			require.True(t, bytes.Equal(fromChunk.Marshal(), written), "statistics written while staging differ from the chunk's")
		})
	}
}

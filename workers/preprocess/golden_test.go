package preprocess_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/workers/preprocess"
	"github.com/refit-ml/refit/workers/workertest"
)

// hostileNumbers are numeric spellings a fast parser or formatter could get
// wrong: each is put in bedrooms, sqft_lot, yr_renovated and price in turn.
var hostileNumbers = []string{"3", "3.0", "3.", ".5", "+3", "-0", "-0.0", "0003", "2.250", "1.5e0", " 2 ", "0x10",
	"0x1p1", "1_000", "Inf", "NaN", "1e400", "1e-400", "0.1", "0.30000000000000004", "1234567", "1234567.89",
	"99999999.99", "100000000", "100000000.0000001", "1e6", "1E6", "4.35", "0.00001", "12345678901234567890",
	"9007199254740993", "7912.000000000001", "2014", "", "three"}

// stagingInput is a generated file with bad rows and price-0 rows, then a
// row per hostile number and column.
func stagingInput(t *testing.T) []byte {
	var buf bytes.Buffer
	require.NoError(t, synth.Housing{Seed: 11, ZeroPriceFraction: 0.02, BadRowFraction: 0.05}.Write(&buf, 5000))
	for _, col := range []int{2, 5, 13, 1} { // bedrooms, sqft_lot, yr_renovated, price
		for _, v := range hostileNumbers {
			f := strings.Split(good, ",")
			f[col] = v
			buf.WriteString(strings.Join(f, ",") + "\n")
		}
	}
	return buf.Bytes()
}

const good = "2014-05-02 00:00:00,313000.0,3.0,1.5,1340,7912,1.5,0,0,3,1340,0,1955,2005,18810 Densmore Ave N,Shoreline,WA 98133,USA"

// TestStagedBytesAreStable pins the staged chunk and quarantine report of a
// fixed input: staged bytes feed row and chunk hashes, so a faster parser
// or encoder must write exactly what the previous one wrote. The golden
// hashes were taken before the fast number paths went in.
func TestStagedBytesAreStable(t *testing.T) {
	e := workertest.New(t, 150)
	w, err := preprocess.New(preprocess.Config{Deps: e.Deps(t)})
	require.NoError(t, err)
	require.NoError(t, w.HandleObject(context.Background(), e.Put(t, "golden.csv", stagingInput(t))))
	ingests, err := e.Registry.Ingests(context.Background(), "housing")
	require.NoError(t, err)
	require.Len(t, ingests, 1)
	in := ingests[0]
	digest := func(name string) string {
		rc, err := e.Local.Open(context.Background(), name)
		require.NoError(t, err)
		defer rc.Close()
		h := sha256.New()
		_, err = io.Copy(h, rc)
		require.NoError(t, err)
		return hex.EncodeToString(h.Sum(nil))
	}
	got := fmt.Sprintf("accepted %d test %d rejected %d lines %d\nchunk %s\nquarantine %s\n",
		in.Accepted, in.TestRows, in.Rejected, in.RejectedLines, digest(in.Chunk), digest(in.Quarantine))
	require.Equal(t, goldenStaging, got)
}

const goldenStaging = `accepted 4727 test 927 rejected 413 lines 413
chunk 5c31f8c80c6d6004e1f84dfb38439f058bb5b9e444f861c500e3d3d081352f3d
quarantine f0b103d41a12e4805e6fe1084e382742c85fcb5ef46686cf99c48c662acdf292
`

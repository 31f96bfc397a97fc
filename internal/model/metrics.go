package model

import (
	"context"
	"fmt"
	"math"

	"github.com/refit-ml/refit/internal/dataset"
)

// Metrics score predictions against targets.
type Metrics struct {
	Rows int     `json:"rows"`
	RMSE float64 `json:"rmse"`
	MAE  float64 `json:"mae"`
	// R2 is 1 - SSE/SST; it is 0 when the targets do not vary (SST = 0),
	// where the ratio is undefined.
	R2 float64 `json:"r2"`
}

// Evaluate scores p on the rows of test in one streaming pass. ErrNoRows if
// test has none.
func Evaluate(ctx context.Context, p *Predictor, test dataset.Scan) (Metrics, error) {
	var (
		n             int
		sse, sae      float64
		meanY, sstDev float64 // Welford: running mean and Σ (y - mean)²
	)
	err := test(func(r dataset.StagedRow) error {
		if n%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if len(r.Fields) != p.width {
			return fmt.Errorf("row %d: %d fields, the definition keeps %d", n, len(r.Fields), p.width)
		}
		y := r.Target.Num
		e := y - p.Predict(r.Row)
		sse += e * e
		sae += math.Abs(e)
		n++
		d := y - meanY
		meanY += d / float64(n)
		sstDev += d * (y - meanY)
		return nil
	})
	if err != nil {
		return Metrics{}, fmt.Errorf("evaluate: %w", err)
	}
	if n == 0 {
		return Metrics{}, fmt.Errorf("evaluate: %w", ErrNoRows)
	}
	m := Metrics{Rows: n, RMSE: math.Sqrt(sse / float64(n)), MAE: sae / float64(n)}
	if sstDev > 0 {
		m.R2 = 1 - sse/sstDev
	}
	return m, nil
}

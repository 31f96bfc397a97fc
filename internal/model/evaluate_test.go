package model

import (
	"context"

	"github.com/refit-ml/refit/internal/dataset"
)

// Evaluate scores p on the rows of test in one streaming pass. ErrNoRows if
// test has none.
func Evaluate(ctx context.Context, p *Predictor, test dataset.Scan) (Metrics, error) {
	ms, err := EvaluateEach(ctx, []*Predictor{p}, test)
	if err != nil {
		return Metrics{}, err
	}
	return ms[0], nil
}

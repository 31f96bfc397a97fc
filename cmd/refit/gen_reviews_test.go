package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/dataset"
)

func TestGenReviewsIsDeterministicAndValid(t *testing.T) {
	t.Parallel()
	var a, b, noisy bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"gen", "reviews", "--rows", "300", "--seed", "4"}, os.Getenv, &a, io.Discard))
	require.NoError(t, run(context.Background(), []string{"gen", "--seed=4", "reviews", "--rows=300"}, os.Getenv, &b, io.Discard))
	require.Equal(t, a.String(), b.String())
	require.NoError(t, run(context.Background(), []string{"gen", "reviews", "--rows", "300", "--seed", "4", "--label-noise", "0.3"}, os.Getenv, &noisy, io.Discard))
	require.NotEqual(t, a.String(), noisy.String(), "label noise flips labels")

	def, err := os.ReadFile("../../schemas/datasets/reviews.json")
	require.NoError(t, err)
	d, err := dataset.Parse(def)
	require.NoError(t, err)
	ir, err := d.NewInputReader(&a, dataset.InputOptions{})
	require.NoError(t, err)
	n := 0
	for {
		_, rej, err := ir.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.Nil(t, rej, "every generated review is valid")
		n++
	}
	require.Equal(t, 300, n)
	require.Error(t, run(context.Background(), []string{"gen", "reviews", "--label-noise", "0.9"}, os.Getenv, io.Discard, io.Discard))
}

package bus_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/bus"
	"github.com/refit-ml/refit/internal/bus/bustest"
)

func TestInProcessConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bus.Bus {
		return bus.NewInProcess(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}, bustest.Features{})
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"plain", errors.New("x"), false},
		{"permanent", bus.Permanent(errors.New("x")), true},
		{"wrapped permanent", fmt.Errorf("ctx: %w", bus.Permanent(errors.New("x"))), true},
		{"malformed event", fmt.Errorf("decode: %w", events.ErrMalformed), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { require.Equal(t, tt.want, bus.IsPermanent(tt.err)) })
	}
	require.NoError(t, bus.Permanent(nil))
}

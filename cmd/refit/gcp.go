package main

import (
	"context"
	"errors"
	"log/slog"
)

func openGCP(ctx context.Context, cfg Config, logger *slog.Logger) (*stack, error) {
	return nil, errors.New("REFIT_PROFILE=gcp is not available in this build yet")
}

package model

import (
	"context"
	"fmt"
	"io"

	"github.com/refit-ml/refit/internal/dataset"
)

// MaxArtifactBytes bounds what Load reads.
const MaxArtifactBytes = 64 << 20

// Load reads an artifact from storage and checks its checksum ("" skips
// the check).
func Load(ctx context.Context, o dataset.Opener, name, checksum string) (*Artifact, error) {
	rc, err := o.Open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxArtifactBytes+1))
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", name, err)
	}
	if len(b) > MaxArtifactBytes {
		return nil, fmt.Errorf("load model %s: %w: larger than %d bytes", name, ErrInvalidArtifact, MaxArtifactBytes)
	}
	if got := Checksum(b); checksum != "" && got != checksum {
		return nil, fmt.Errorf("load model %s: %w: checksum %s, want %s", name, ErrInvalidArtifact, got, checksum)
	}
	return Unmarshal(b)
}

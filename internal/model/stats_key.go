package model

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/refit-ml/refit/internal/dataset"
)

// StatsKey names the raw feature space ComputeStats gives def's specs (the
// columns and their roles). Stored statistics are filed under it, so a spec
// added later that needs another column gets statistics of its own rather
// than a stale file it cannot use.
func StatsKey(def *dataset.Definition) (string, error) {
	num, cat, mod, err := statsLayout(def)
	if err != nil {
		return "", fmt.Errorf("stats %s: %w", def.Name, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n%q\n%q\n%v\n", statsVersion, num, cat, mod)
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:6]), nil
}

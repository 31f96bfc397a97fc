package train

import "github.com/refit-ml/refit/workers/stats"

// CorruptBlobError is a rows blob that does not hold what its version
// recorded (see workers/stats, which checks blobs for statistics and for
// the row path alike).
type CorruptBlobError = stats.CorruptBlobError

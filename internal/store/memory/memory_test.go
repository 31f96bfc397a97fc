package memory_test

import (
	"testing"

	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Docs { return memory.New() })
}

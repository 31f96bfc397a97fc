package mongo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/store/mongo"
	"github.com/refit-ml/refit/internal/store/storetest"
	"github.com/refit-ml/refit/internal/testenv"
)

func TestConformanceFerretDB(t *testing.T) {
	uri := testenv.StartFerretDB(t)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Docs {
		n++ // a fresh database per subtest
		s, err := mongo.Open(t.Context(), uri, fmt.Sprintf("conformance%d", n))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close(context.Background())) })
		return s
	})
}

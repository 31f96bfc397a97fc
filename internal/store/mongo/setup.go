package mongo

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// EnsureCollections creates the collections that do not exist yet. Each
// document's key is its _id, so the unique index that settles every race
// is the one MongoDB keeps on _id: there is no other index to create.
func (s *Store) EnsureCollections(ctx context.Context, names []string) (created, found []string, err error) {
	have, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, nil, fmt.Errorf("mongo: list collections: %w", err)
	}
	for _, n := range names {
		if slices.Contains(have, n) {
			found = append(found, n)
			continue
		}
		if err := s.db.CreateCollection(ctx, n); err != nil {
			return created, found, fmt.Errorf("mongo: create collection %s: %w", n, err)
		}
		created = append(created, n)
	}
	return created, found, nil
}

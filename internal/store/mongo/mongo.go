// Package mongo is the MongoDB store.Docs: one MongoDB collection per
// collection, each document {_id: key, ...the body's fields} (body.go says
// how JSON is stored). Tests run it against FerretDB v1 (SQLite).
package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/refit-ml/refit/internal/store"
	"github.com/refit-ml/refit/internal/store/docvalid"
)

// Store is a store.Docs on one MongoDB database.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
}

var _ store.Docs = (*Store)(nil)

// Open connects to uri and checks the server answers. Errors do not include
// the URI, which may hold credentials.
func Open(ctx context.Context, uri, database string) (*Store, error) {
	if database == "" {
		return nil, errors.New("mongo: empty database name")
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return nil, fmt.Errorf("mongo: connect: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("mongo: ping: %w", err)
	}
	return &Store{client: client, db: client.Database(database)}, nil
}

// Close disconnects, waiting for in-flight operations until ctx ends.
func (s *Store) Close(ctx context.Context) error {
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongo: disconnect: %w", err)
	}
	return nil
}

// Insert implements store.Docs.
func (s *Store) Insert(ctx context.Context, collection, key string, body json.RawMessage) error {
	if err := docvalid.Doc(collection, key, body); err != nil {
		return err
	}
	doc, err := toBSON(key, body)
	if err != nil {
		return fmt.Errorf("%w: key %q: %w", docvalid.ErrInvalid, key, err)
	}
	_, err = s.db.Collection(collection).InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("mongo: insert %s/%s: %w", collection, key, store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("mongo: insert %s/%s: %w", collection, key, err)
	}
	return nil
}

// Get implements store.Docs.
func (s *Store) Get(ctx context.Context, collection, key string) (json.RawMessage, error) {
	raw, err := s.db.Collection(collection).FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("mongo: get %s/%s: %w", collection, key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: get %s/%s: %w", collection, key, err)
	}
	_, body, err := fromBSON(raw)
	if err != nil {
		return nil, fmt.Errorf("mongo: get %s/%s: %w", collection, key, err)
	}
	return body, nil
}

// List implements store.Docs. MongoDB compares strings byte-wise when no
// collation is set, so sorting by _id gives store.Docs' order.
func (s *Store) List(ctx context.Context, collection, prefix string) ([]store.Doc, error) {
	var docs []store.Doc
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}})
	err := s.find(ctx, collection, prefixFilter(prefix), opts, func(_ string, raw bson.Raw) error {
		key, body, err := fromBSON(raw)
		docs = append(docs, store.Doc{Key: key, Body: body})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mongo: list %s/%s: %w", collection, prefix, err)
	}
	return docs, nil
}

// Last implements store.Docs.
func (s *Store) Last(ctx context.Context, collection, prefix string) (store.Doc, error) {
	var doc store.Doc
	found := false
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(1)
	err := s.find(ctx, collection, prefixFilter(prefix), opts, func(_ string, raw bson.Raw) error {
		key, body, err := fromBSON(raw)
		doc, found = store.Doc{Key: key, Body: body}, true
		return err
	})
	if err != nil {
		return store.Doc{}, fmt.Errorf("mongo: last %s/%s: %w", collection, prefix, err)
	}
	if !found {
		return store.Doc{}, fmt.Errorf("mongo: last %s/%s: %w", collection, prefix, store.ErrNotFound)
	}
	return doc, nil
}

// prefixFilter matches _id by an anchored regular expression, which MongoDB
// answers from the _id index as a range scan.
func prefixFilter(prefix string) bson.D {
	if prefix == "" {
		return bson.D{}
	}
	return bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + regexp.QuoteMeta(prefix)}}}}
}

func (s *Store) find(ctx context.Context, collection string, filter bson.D, opts *options.FindOptionsBuilder, each func(key string, doc bson.Raw) error) error {
	cur, err := s.db.Collection(collection).Find(ctx, filter, opts)
	if err != nil {
		return err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		key, _ := cur.Current.Lookup("_id").StringValueOK()
		if err := each(key, cur.Current); err != nil {
			return err
		}
	}
	return cur.Err()
}

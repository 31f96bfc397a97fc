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

// inChunk bounds the $in list of one query, keeping each command well under
// the 16 MiB document limit.
const inChunk = 10_000

// Store is a store.Docs on one MongoDB database.
type Store struct {
	client *mongo.Client
	db     *mongo.Database

	// ferret: the server is FerretDB v1, where the SQLite handler scans the
	// whole collection for every query, even an _id equality (37 ms per Get
	// at 20,000 documents), compares each document with every key of an $in
	// list (20,000 keys of 20,000 documents: 7 s), and retries a batch that
	// holds a duplicate one document per transaction. There GetMany, and
	// InsertMany's duplicate check, read the key range of the batch once
	// instead; on MongoDB they use the _id index.
	ferret  bool
	inChunk int // keys per $in query; a field so tests can shrink it
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
	ferret, err := isFerretDB(ctx, client)
	if err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	return &Store{client: client, db: client.Database(database), ferret: ferret, inChunk: inChunk}, nil
}

// isFerretDB asks buildInfo, which FerretDB answers with a ferretdbVersion.
// It is also Open's check that the server answers.
func isFerretDB(ctx context.Context, client *mongo.Client) (bool, error) {
	info, err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
	if err != nil {
		return false, fmt.Errorf("mongo: buildInfo: %w", err)
	}
	_, err = info.LookupErr("ferretdbVersion")
	return err == nil, nil
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

// InsertMany implements store.Docs with one unordered insert: every new
// document is stored, and each duplicate comes back as an E11000 write error
// carrying its index.
func (s *Store) InsertMany(ctx context.Context, collection string, docs []store.Doc) ([]bool, error) {
	if err := docvalid.Docs(collection, docs); err != nil {
		return nil, err
	}
	dup := make([]bool, len(docs))
	send := make([]int, 0, len(docs)) // indexes into docs
	if s.ferret {
		existing, err := s.existingKeys(ctx, collection, docs)
		if err != nil {
			return nil, fmt.Errorf("mongo: insert many into %s: %w", collection, err)
		}
		for i, d := range docs {
			if existing[d.Key] {
				dup[i] = true
				continue
			}
			existing[d.Key] = true // later copies in the batch are duplicates
			send = append(send, i)
		}
	} else {
		for i := range docs {
			send = append(send, i)
		}
	}
	if len(send) == 0 {
		return dup, nil // the driver refuses an empty insert
	}
	bdocs := make([]bson.D, len(send))
	for j, i := range send {
		doc, err := toBSON(docs[i].Key, docs[i].Body)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %w", docvalid.ErrInvalid, docs[i].Key, err)
		}
		bdocs[j] = doc
	}
	_, err := s.db.Collection(collection).InsertMany(ctx, bdocs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return dup, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, fmt.Errorf("mongo: insert many into %s: %w", collection, err)
	}
	for _, we := range bwe.WriteErrors {
		if !isDuplicateKeyCode(we.Code) || we.Index < 0 || we.Index >= len(send) {
			return nil, fmt.Errorf("mongo: insert many into %s: %w", collection, err)
		}
		dup[send[we.Index]] = true
	}
	return dup, nil
}

// isDuplicateKeyCode matches the codes mongo.IsDuplicateKeyError accepts.
func isDuplicateKeyCode(code int) bool {
	return code == 11000 || code == 11001 || code == 12582
}

// existingKeys returns which of the docs' keys are stored, reading the range
// between the smallest and the greatest key once (for FerretDB).
func (s *Store) existingKeys(ctx context.Context, collection string, docs []store.Doc) (map[string]bool, error) {
	keys := make([]string, len(docs))
	for i, d := range docs {
		keys[i] = d.Key
	}
	found := make(map[string]bool, len(docs))
	opts := options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}})
	err := s.scanRange(ctx, collection, keys, opts, func(key string, _ bson.Raw) error {
		found[key] = true
		return nil
	})
	return found, err
}

// scanRange calls each for the stored documents whose key is in keys, with
// one query for the range between the smallest and the greatest key.
func (s *Store) scanRange(ctx context.Context, collection string, keys []string, opts *options.FindOptionsBuilder, each func(key string, doc bson.Raw) error) error {
	if len(keys) == 0 {
		return nil
	}
	want := make(map[string]bool, len(keys))
	lo, hi := keys[0], keys[0]
	for _, k := range keys {
		want[k] = true
		lo, hi = min(lo, k), max(hi, k)
	}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: lo}, {Key: "$lte", Value: hi}}}}
	cur, err := s.db.Collection(collection).Find(ctx, filter, opts)
	if err != nil {
		return err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		if key, ok := cur.Current.Lookup("_id").StringValueOK(); ok && want[key] {
			if err := each(key, cur.Current); err != nil {
				return err
			}
		}
	}
	return cur.Err()
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

// GetMany implements store.Docs.
func (s *Store) GetMany(ctx context.Context, collection string, keys []string) (map[string]json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(keys))
	keep := func(_ string, raw bson.Raw) error {
		key, body, err := fromBSON(raw)
		out[key] = body
		return err
	}
	var err error
	if s.ferret {
		err = s.scanRange(ctx, collection, keys, options.Find(), keep)
	} else {
		for start := 0; start < len(keys) && err == nil; start += s.inChunk {
			chunk := keys[start:min(start+s.inChunk, len(keys))]
			filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: chunk}}}}
			err = s.find(ctx, collection, filter, options.Find(), keep)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: get many from %s: %w", collection, err)
	}
	return out, nil
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

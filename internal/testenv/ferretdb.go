// Package testenv starts the real backends tests run against.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// ferretNewMu serialises ferretdb.New, which writes a FerretDB package-level
// variable (version.Get().Package); parallel tests would race on it.
var ferretNewMu sync.Mutex

// StartFerretDB runs an in-process FerretDB v1 (SQLite handler, data in a
// temporary directory) until the test ends, and returns its MongoDB URI.
// Its logs are discarded: it reports every error reply at WARN, and
// duplicate-key errors are normal traffic here.
func StartFerretDB(t testing.TB) (uri string) {
	t.Helper()
	dir := t.TempDir()

	ferretNewMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ferretNewMu.Unlock()
	if err != nil {
		t.Fatalf("start FerretDB: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx) // always nil
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("FerretDB did not stop within 30s")
		}
	})
	// MongoDBURI blocks until the listener is bound.
	return f.MongoDBURI()
}

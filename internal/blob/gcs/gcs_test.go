package gcs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/googleapi"

	"github.com/refit-ml/refit/internal/blob"
	"github.com/refit-ml/refit/internal/blob/blobtest"
)

func newServer(t *testing.T, port uint16) *fakestorage.Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http",
		Host:   "127.0.0.1",
		Port:   port,
	})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	return srv
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Bucket {
		srv := newServer(t, 0)
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "refit-test"})
		return New(srv.Client(), "refit-test")
	})
}

// TestNewClientEmulator runs the suite through NewClient, the way a deployed
// process reaches an emulator from STORAGE_EMULATOR_HOST.
func TestNewClientEmulator(t *testing.T) {
	srv := newServer(t, freePort(t))
	client, err := NewClient(t.Context(), srv.URL())
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })

	n := 0
	blobtest.Run(t, func(t *testing.T) blob.Bucket {
		n++
		name := fmt.Sprintf("refit-emulator-%d", n)
		require.NoError(t, client.Bucket(name).Create(t.Context(), "test-project", nil))
		return New(client, name)
	})
}

func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return uint16(port)
}

// TestFakeEnforcesDoesNotExist checks the emulator itself, so the suite's
// CreateOnly results mean something: the precondition must be rejected
// server-side with a 412, not merely ignored.
func TestFakeEnforcesDoesNotExist(t *testing.T) {
	srv := newServer(t, 0)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "refit-test"})
	obj := srv.Client().Bucket("refit-test").Object("o")
	put := func(data string) error {
		w := obj.If(storage.Conditions{DoesNotExist: true}).NewWriter(t.Context())
		_, _ = io.WriteString(w, data)
		return w.Close()
	}
	require.NoError(t, put("first"))
	err := put("second")
	var gerr *googleapi.Error
	require.True(t, errors.As(err, &gerr), "got %v", err)
	require.Equal(t, http.StatusPreconditionFailed, gerr.Code)

	r, err := obj.NewReader(t.Context())
	require.NoError(t, err)
	defer r.Close()
	data, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "first", string(data))
}

func TestLargeCreateOnlyExisting(t *testing.T) {
	// A multi-chunk (resumable) upload. fake-gcs-server checks the
	// precondition when the upload is finalized, so here the 412 comes from
	// Close; GCS may reject when the session starts, which surfaces from a
	// Write inside fill instead (TestWriteErr covers that mapping).
	srv := newServer(t, 0)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "refit-test"})
	b := New(srv.Client(), "refit-test")
	b.chunkSize = 256 << 10
	put := func() error {
		_, err := b.Write(t.Context(), "big", blob.CreateOnly, func(w io.Writer) error {
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for range 20 {
				if _, err := w.Write(chunk); err != nil {
					return err
				}
			}
			return nil
		})
		return err
	}
	require.NoError(t, put())
	require.ErrorIs(t, put(), blob.ErrExists)
}

func TestUnknownMode(t *testing.T) {
	srv := newServer(t, 0)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "refit-test"})
	b := New(srv.Client(), "refit-test")
	_, err := b.Write(t.Context(), "x", blob.Mode(9), func(io.Writer) error { return nil })
	require.ErrorContains(t, err, "unknown mode")
	_, err = b.Stat(t.Context(), "x")
	require.ErrorIs(t, err, blob.ErrNotExist)
}

func TestWriteErr(t *testing.T) {
	precondition := &googleapi.Error{Code: http.StatusPreconditionFailed, Message: "conditionNotMet"}
	tests := []struct {
		name   string
		err    error
		exists bool
	}{
		{"412 from Close", precondition, true},
		{"412 wrapped by fill", fmt.Errorf("writing rows: %w", precondition), true},
		{"404", &googleapi.Error{Code: http.StatusNotFound}, false},
		{"other", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := writeErr(tt.err)
			require.ErrorIs(t, got, tt.err)
			require.Equal(t, tt.exists, errors.Is(got, blob.ErrExists))
		})
	}
}

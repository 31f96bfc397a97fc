package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/client"
)

func TestFromEnvPicksTheServer(t *testing.T) {
	tests := []struct {
		name, flag string
		env        map[string]string
		want       string
	}{
		{"default", "", nil, "http://localhost:8080"},
		{"REFIT_HTTP_ADDR moves the port", "", map[string]string{"REFIT_HTTP_ADDR": ":9191"}, "http://localhost:9191"},
		{"REFIT_HTTP_ADDR with a host", "", map[string]string{"REFIT_HTTP_ADDR": "127.0.0.1:9191"}, "http://127.0.0.1:9191"},
		{"REFIT_HTTP_ADDR on every interface", "", map[string]string{"REFIT_HTTP_ADDR": "0.0.0.0:9191"}, "http://localhost:9191"},
		{"REFIT_SERVER wins over REFIT_HTTP_ADDR", "", map[string]string{"REFIT_HTTP_ADDR": ":9191", "REFIT_SERVER": "http://gw:1/"}, "http://gw:1"},
		{"--server wins", "http://flag:2", map[string]string{"REFIT_SERVER": "http://gw:1"}, "http://flag:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client.FromEnv(func(k string) string { return tt.env[k] }, tt.flag)
			require.Equal(t, tt.want, c.Base())
		})
	}
}

func TestConnectionRefusedNamesTheAddressAndTheSetting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	c := client.FromEnv(func(k string) string { return map[string]string{"REFIT_HTTP_ADDR": addr}[k] }, "")
	_, err = c.Datasets(context.Background())
	var ce *client.ConnectError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), "http://"+addr)
	require.Contains(t, err.Error(), "REFIT_HTTP_ADDR="+addr)
	require.Contains(t, err.Error(), "connection refused")
	require.Contains(t, err.Error(), "REFIT_SERVER")
}

func TestErrorsCarryStatusAndMessage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "Bearer s3cret", r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"limit \"0\": want 1..1000","field":"limit"}`))
	}))
	defer srv.Close()
	_, err := client.New(srv.URL, client.WithToken("s3cret")).Runs(context.Background(), "housing", client.RunsQuery{})
	var e *client.Error
	require.True(t, errors.As(err, &e), "%v", err)
	require.Equal(t, http.StatusBadRequest, e.StatusCode)
	require.Equal(t, "limit", e.Field)
	require.Equal(t, `400 Bad Request: limit "0": want 1..1000`, err.Error())
	require.Equal(t, http.StatusBadRequest, client.StatusCode(err))
}

package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHousekeepingSettings: the two housekeeping ages default to an hour
// and a week, 0 turns each off, and a bad value stops start-up naming it.
func TestHousekeepingSettings(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env              map[string]string
		temp, retention  time.Duration
		wantErr, example string
	}{
		{env: nil, temp: time.Hour, retention: 7 * 24 * time.Hour},
		{env: map[string]string{"REFIT_WATCH_TEMP_MAX_AGE": "0", "REFIT_INCOMING_RETENTION": "0"}},
		{env: map[string]string{"REFIT_WATCH_TEMP_MAX_AGE": "10m", "REFIT_INCOMING_RETENTION": " 720h "},
			temp: 10 * time.Minute, retention: 720 * time.Hour},
		{env: map[string]string{"REFIT_INCOMING_RETENTION": "7d"}, wantErr: "REFIT_INCOMING_RETENTION", example: "168h"},
		{env: map[string]string{"REFIT_INCOMING_RETENTION": "-1h"}, wantErr: "REFIT_INCOMING_RETENTION"},
		{env: map[string]string{"REFIT_WATCH_TEMP_MAX_AGE": "an hour"}, wantErr: "REFIT_WATCH_TEMP_MAX_AGE"},
	} {
		t.Run(tt.wantErr+tt.temp.String()+tt.retention.String(), func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string { return tt.env[k] }, "", "")
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr+": ")
				require.ErrorContains(t, err, tt.example)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.temp, cfg.WatchTempMaxAge)
			require.Equal(t, tt.retention, cfg.IncomingRetention)
		})
	}
}

// TestAckDeadlineSetting: the gcp profile's ack deadline defaults to
// Pub/Sub's 60 s and is refused, naming the setting, outside Pub/Sub's
// bounds (whole seconds, 10 s to 600 s).
func TestAckDeadlineSetting(t *testing.T) {
	t.Parallel()
	gcp := map[string]string{"REFIT_PROFILE": "gcp", "REFIT_GCP_PROJECT": "p", "REFIT_BUCKET": "b", "REFIT_MONGODB_URI": "mongodb://localhost"}
	for _, tt := range []struct {
		value   string
		want    time.Duration
		wantErr string
	}{
		{value: "", want: 60 * time.Second},
		{value: "10s", want: 10 * time.Second},
		{value: "10m", want: 600 * time.Second},
		{value: "9s", wantErr: "want whole seconds from 10s to 600s"},
		{value: "601s", wantErr: "want whole seconds from 10s to 600s"},
		{value: "10500ms", wantErr: "want whole seconds from 10s to 600s"},
		{value: "soon", wantErr: "not a positive duration"},
	} {
		t.Run(tt.value, func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string {
				if k == "REFIT_PUBSUB_ACK_DEADLINE" {
					return tt.value
				}
				return gcp[k]
			}, "", "")
			if tt.wantErr != "" {
				require.ErrorContains(t, err, "REFIT_PUBSUB_ACK_DEADLINE: ")
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.AckDeadline)
		})
	}
}

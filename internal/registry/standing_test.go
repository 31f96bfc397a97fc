package registry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/memory"
)

func TestStandingOf(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	dec := func(status, reason string) *registry.Decision {
		return &registry.Decision{RunID: "r", Dataset: "d", Status: status, Reason: reason, DecidedAt: t0}
	}
	prom := func(seq int64, run, reason string) registry.Promotion {
		return registry.Promotion{Dataset: "d", Sequence: seq, RunID: run, Reason: reason, PromotedAt: t0.Add(time.Duration(seq) * time.Hour)}
	}
	tests := []struct {
		name    string
		dec     *registry.Decision
		history []registry.Promotion
		ok      bool
		want    string // status decided champion sequence reason
	}{
		{"neither decided nor promoted", nil, []registry.Promotion{prom(1, "x", "")}, false, ""},
		{"rejected, never promoted", dec("rejected", "worse"), []registry.Promotion{prom(1, "x", "")}, true, "rejected  false 0 worse"},
		{"awaiting approval", dec("awaiting_approval", "auto_promote false"), nil, true, "awaiting_approval  false 0 auto_promote false"},
		{"approved by hand", dec("awaiting_approval", "auto_promote false"), []registry.Promotion{prom(1, "x", ""), prom(2, "r", "approved")},
			true, "promoted awaiting_approval true 2 approved"},
		{"rejected, promoted by hand, replaced", dec("rejected", "worse"), []registry.Promotion{prom(1, "r", "by hand"), prom(2, "y", "")},
			true, "promoted rejected false 1 by hand"},
		{"promoted by the rule stays as recorded", &registry.Decision{RunID: "r", Status: "promoted", Promoted: true, Sequence: 1, Reason: "first model"},
			[]registry.Promotion{prom(1, "r", "first model"), prom(2, "y", ""), prom(3, "r", "rollback")}, true, "promoted  true 1 first model"},
		{"a legacy decision without status", &registry.Decision{RunID: "r", Promoted: false, Reason: "worse"}, nil, true, "rejected  false 0 worse"},
		{"promoted before any decision", nil, []registry.Promotion{prom(1, "r", "by hand")}, true, "promoted  true 1 by hand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ok := registry.StandingOf("r", tt.dec, tt.history)
			require.Equal(t, tt.ok, ok)
			if !ok {
				return
			}
			require.Equal(t, "r", st.RunID)
			got := fmt.Sprintf("%s %s %t %d %s", st.Status, st.Decided, st.Champion, st.Sequence, st.Reason)
			require.Equal(t, tt.want, got)
			require.Equal(t, st.Status == registry.StatusPromoted, st.Promoted)
			if st.Decided != "" {
				require.Equal(t, tt.dec.Reason, st.DecidedReason, "the rule's reason is kept")
			}
		})
	}
}

func TestUploadsJoinsLedgerAndVersions(t *testing.T) {
	reg := registry.New(memory.New())
	ctx := context.Background()
	obj := func(gen int64) registry.Source {
		return registry.Source{Kind: registry.SourceObject, Bucket: "b", Object: "incoming/d/a.csv", Generation: gen}
	}
	for _, in := range []registry.Ingest{
		{ID: "i1", Dataset: "d", Source: obj(1), Accepted: 10},
		{ID: "i2", Dataset: "d", Source: obj(2), Accepted: 5},         // all duplicates
		{ID: "i3", Dataset: "d", Source: obj(3), Rejected: 4},         // every row bad
		{ID: "i4", Dataset: "d", Source: obj(4), Reason: "no header"}, // the file refused
		{ID: "i5", Dataset: "d", Source: obj(5), Accepted: 3},         // waiting for a version
		{ID: "i6", Dataset: "other", Source: obj(6), Accepted: 3},     // another dataset
	} {
		require.NoError(t, reg.RecordIngest(ctx, in))
	}
	require.NoError(t, reg.AddVersion(ctx, registry.Version{Dataset: "d", Number: 1, Sources: []registry.VersionSource{{IngestID: "i1", Rows: 8, Duplicate: 2}}}))
	require.NoError(t, reg.AddVersion(ctx, registry.Version{Dataset: "d", Number: 2, Sources: []registry.VersionSource{
		{IngestID: "i2", Rows: 0, Duplicate: 5}, {IngestID: "i1", Rows: 99}}})) // a later share of i1 is not its first
	uploads, versions, err := reg.Uploads(ctx, "d")
	require.NoError(t, err)
	require.Len(t, versions, 2)
	type row struct {
		id, status       string
		first, duplicate int
	}
	var got []row
	for _, u := range uploads {
		got = append(got, row{u.ID, u.Status, u.FirstVersion, u.Duplicate})
	}
	require.Equal(t, []row{
		{"i1", registry.UploadAccepted, 1, 2},
		{"i2", registry.UploadDuplicate, 2, 5},
		{"i3", registry.UploadRejected, 0, 0},
		{"i4", registry.UploadRejected, 0, 0},
		{"i5", registry.UploadAccepted, 0, 0},
	}, got)
}

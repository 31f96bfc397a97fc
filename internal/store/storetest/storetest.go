// Package storetest is the conformance suite every store.Docs implementation
// runs, so the in-memory store used in tests behaves like the real ones.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/store"
)

// Run runs the conformance suite. newDocs is called once per subtest and
// must return an empty store whose resources are released with t.Cleanup.
func Run(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, newDocs func(t *testing.T) store.Docs)
	}{
		{"RoundTrip", testRoundTrip},
		{"NumbersKeepTheirType", testNumbersKeepTheirType},
		{"BodiesAreCopied", testBodiesAreCopied},
		{"InvalidInput", testInvalidInput},
		{"Duplicate", testDuplicate},
		{"GetMissing", testGetMissing},
		{"CollectionsAreIndependent", testCollectionsAreIndependent},
		{"List", testList},
		{"Last", testLast},
		{"RaceInsert", testRaceInsert},
		{"ManyDocs", testManyDocs},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newDocs) })
	}
}

const coll = "things"

func testRoundTrip(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", `{}`},
		{"large float", `{"n":1e15}`},
		{"large int", `{"n":1000000000000000}`},
		{"fraction", `{"n":0.1}`},
		{"negative", `{"i":-42,"f":-3.5,"tiny":-1.5e-300}`},
		{"int and float", `{"i":3,"f":3.25,"whole":2.0,"zero":0}`},
		{"int64 range", `{"max":9223372036854775807,"min":-9223372036854775808}`},
		{"literals", `{"t":true,"f":false,"n":null}`},
		{"nested", `{"a":{"b":{"c":[1,"x",null,true,{"d":[]}]}},"e":[[1,2],[3,[4]]],"o":{}}`},
		{"unicode", `{"s":"héllo 世界 🚀","ключ":"значение"}`},
		{"escapes", `{"s":"\"quoted\" back\\slash \n\t <>&' \u0001 \u2028"}`},
		{"many fields in order", `{"z":1,"y":2,"x":3,"a":4}`},
		{"arrays of arrays", `{"m":[[1,2],[3,4]],"deep":[[[["x"]]]],"mixed":[1,[2,[3,{"a":[[4]]}]]],"empty":[[],[[]]]}`},
		{"awkward names", `{"a.b":1,"$c":{"$numberLong":"5"},"%25":"%","%array":[[1]],"w":[{"%array":[1]}],"":0,"n\u0000ul":1,"x":{"y.z":[{"$oid":"abc"}],"_id":"inner"}}`},
		{"_id field", `{"_id":"mine","v":1}`},
	}
	s := newDocs(t)
	ctx := t.Context()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("k%03d", i)
			require.NoError(t, s.Insert(ctx, coll, key, json.RawMessage(tt.body)))
			got, err := s.Get(ctx, coll, key)
			require.NoError(t, err)
			require.JSONEq(t, tt.body, string(got))
			requireObject(t, got)
		})
	}
}

// testNumbersKeepTheirType checks what JSONEq cannot: integers come back as
// integers (a Go int64 field can decode them, without float64 rounding) and
// floats come back as the same float64.
func testNumbersKeepTheirType(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	type numbers struct {
		Ints   []int64   `json:"ints"`
		Floats []float64 `json:"floats"`
	}
	want := numbers{
		Ints:   []int64{0, 1, -7, 1<<53 + 1, math.MaxInt64, math.MinInt64, math.MaxInt32 + 1},
		Floats: []float64{0.1, 1e15, 2, -1.5e-300, 1e300, math.Pi, math.SmallestNonzeroFloat64},
	}
	body, err := json.Marshal(want)
	require.NoError(t, err)

	s := newDocs(t)
	ctx := t.Context()
	require.NoError(t, s.Insert(ctx, coll, "n", body))
	raw, err := s.Get(ctx, coll, "n")
	require.NoError(t, err)
	var got numbers
	require.NoError(t, json.Unmarshal(raw, &got), "body: %s", raw)
	require.Equal(t, want, got)
}

func testBodiesAreCopied(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	s := newDocs(t)
	ctx := t.Context()
	body := []byte(`{"v":1}`)
	require.NoError(t, s.Insert(ctx, coll, "k", body))
	copy(body, `{"v":2}`) // the caller reuses its buffer

	got, err := s.Get(ctx, coll, "k")
	require.NoError(t, err)
	require.JSONEq(t, `{"v":1}`, string(got))
	copy(got, `{"x":3}`)

	got, err = s.Get(ctx, coll, "k")
	require.NoError(t, err)
	require.JSONEq(t, `{"v":1}`, string(got))
}

func testInvalidInput(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	tests := []struct {
		name       string
		collection string
		key        string
		body       string
	}{
		{"not json", coll, "k", `not json`},
		{"truncated", coll, "k", `{"a":`},
		{"array", coll, "k", `[1,2]`},
		{"string", coll, "k", `"x"`},
		{"number", coll, "k", `1`},
		{"null", coll, "k", `null`},
		{"empty body", coll, "k", ``},
		{"empty key", coll, "", `{}`},
		{"key not UTF-8", coll, "k\xff", `{}`},
		{"empty collection", "", "k", `{}`},
	}
	s := newDocs(t)
	ctx := t.Context()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Insert(ctx, tt.collection, tt.key, json.RawMessage(tt.body))
			require.Error(t, err)
			require.NotErrorIs(t, err, store.ErrDuplicate)
		})
	}
	docs, err := s.List(ctx, coll, "")
	require.NoError(t, err)
	require.Empty(t, docs)
}

func testDuplicate(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	s := newDocs(t)
	ctx := t.Context()
	require.NoError(t, s.Insert(ctx, coll, "k", json.RawMessage(`{"v":"first"}`)))
	err := s.Insert(ctx, coll, "k", json.RawMessage(`{"v":"second"}`))
	require.ErrorIs(t, err, store.ErrDuplicate)

	got, err := s.Get(ctx, coll, "k")
	require.NoError(t, err)
	require.JSONEq(t, `{"v":"first"}`, string(got))
}

func testGetMissing(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	s := newDocs(t)
	ctx := t.Context()
	_, err := s.Get(ctx, "never-written", "k")
	require.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, s.Insert(ctx, coll, "k", json.RawMessage(`{}`)))
	_, err = s.Get(ctx, coll, "k2")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.Get(ctx, coll, "K")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testCollectionsAreIndependent(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	s := newDocs(t)
	ctx := t.Context()
	require.NoError(t, s.Insert(ctx, "c1", "k", json.RawMessage(`{"c":1}`)))
	require.NoError(t, s.Insert(ctx, "c2", "k", json.RawMessage(`{"c":2}`)))
	require.NoError(t, s.Insert(ctx, "c2", "only-in-c2", json.RawMessage(`{}`)))

	for _, c := range []struct {
		name string
		body string
		keys []string
	}{
		{"c1", `{"c":1}`, []string{"k"}},
		{"c2", `{"c":2}`, []string{"k", "only-in-c2"}},
	} {
		got, err := s.Get(ctx, c.name, "k")
		require.NoError(t, err)
		require.JSONEq(t, c.body, string(got))
		docs, err := s.List(ctx, c.name, "")
		require.NoError(t, err)
		require.Equal(t, c.keys, keysOf(docs))
	}
	_, err := s.Get(ctx, "c1", "only-in-c2")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// listKeys exercise byte-wise order, prefixes that are prefixes of other
// segments ("a" and "ab/"), and regular-expression metacharacters.
var listKeys = []string{
	"a/v000000010", "ab/x", "a/v000000002", "a", "b/1", "a/", "A/z", "a/é",
	"a/Z", "a/v000000001", "x.y/1", "xzy/1", "r[1]", "r+1", `r\1`, "(p)/1", "^c", "a/v",
}

func insertListKeys(t *testing.T, s store.Docs) {
	t.Helper()
	for _, k := range listKeys {
		require.NoError(t, s.Insert(t.Context(), coll, k, bodyFor(k)))
	}
}

func bodyFor(key string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"key": key})
	return b
}

func testList(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	s := newDocs(t)
	ctx := t.Context()
	insertListKeys(t, s)

	all := slices.Clone(listKeys)
	sort.Strings(all)
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"a/", []string{"a/", "a/Z", "a/v", "a/v000000001", "a/v000000002", "a/v000000010", "a/é"}},
		{"a/v0", []string{"a/v000000001", "a/v000000002", "a/v000000010"}},
		{"a", []string{"a", "a/", "a/Z", "a/v", "a/v000000001", "a/v000000002", "a/v000000010", "a/é", "ab/x"}},
		{"ab/", []string{"ab/x"}},
		{"A", []string{"A/z"}},
		{"a/v000000002", []string{"a/v000000002"}},
		{"x.y", []string{"x.y/1"}},
		{"x.", []string{"x.y/1"}},
		{"r[", []string{"r[1]"}},
		{"r+", []string{"r+1"}},
		{`r\`, []string{`r\1`}},
		{"r", []string{"r+1", "r[1]", `r\1`}},
		{"(p)", []string{"(p)/1"}},
		{"^", []string{"^c"}},
		{"c", nil},
		{"a/v0000000020", nil},
		{"zz", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("prefix %q", tt.prefix), func(t *testing.T) {
			docs, err := s.List(ctx, coll, tt.prefix)
			require.NoError(t, err)
			if tt.want == nil {
				require.Empty(t, docs)
				return
			}
			require.Equal(t, tt.want, keysOf(docs))
			for _, d := range docs {
				require.JSONEq(t, string(bodyFor(d.Key)), string(d.Body))
			}
		})
	}

	t.Run("unknown collection", func(t *testing.T) {
		docs, err := s.List(ctx, "never-written", "")
		require.NoError(t, err)
		require.Empty(t, docs)
	})
}

func testLast(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	s := newDocs(t)
	ctx := t.Context()

	_, err := s.Last(ctx, coll, "")
	require.ErrorIs(t, err, store.ErrNotFound, "empty collection")

	insertListKeys(t, s)
	tests := []struct {
		prefix string
		want   string // "" means ErrNotFound
	}{
		{"", "xzy/1"},
		{"a/", "a/é"},
		{"a/v", "a/v000000010"},
		{"a/v0000000", "a/v000000010"},
		{"a/v00000000", "a/v000000002"},
		{"a/v000000002", "a/v000000002"},
		{"a", "ab/x"},
		{"A", "A/z"},
		{"x.", "x.y/1"},
		{"r", `r\1`},
		{"^", "^c"},
		{"c", ""},
		{"zz", ""},
		{"a/v1", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("prefix %q", tt.prefix), func(t *testing.T) {
			doc, err := s.Last(ctx, coll, tt.prefix)
			if tt.want == "" {
				require.ErrorIs(t, err, store.ErrNotFound)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, doc.Key)
			require.JSONEq(t, string(bodyFor(tt.want)), string(doc.Body))
		})
	}

	t.Run("unknown collection", func(t *testing.T) {
		_, err := s.Last(ctx, "never-written", "")
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

const (
	raceWriters = 8
	raceKeys    = 50
	raceRounds  = 3
)

func raceKey(i int) string { return fmt.Sprintf("claim/%03d", i) }

func raceBody(writer int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"writer":%d}`, writer))
}

// checkRaceWinners checks that each key has exactly one winner and that the
// stored body is the winner's.
func checkRaceWinners(t *testing.T, s store.Docs, collection string, won [][]bool) {
	t.Helper()
	stored := make(map[string]json.RawMessage, raceKeys)
	for k := range raceKeys {
		body, err := s.Get(t.Context(), collection, raceKey(k))
		require.NoError(t, err, "key %d", k)
		stored[raceKey(k)] = body
	}

	total := 0
	for k := range raceKeys {
		winners := 0
		for w := range raceWriters {
			if won[w][k] {
				winners++
				require.JSONEq(t, string(raceBody(w)), string(stored[raceKey(k)]), "key %d", k)
			}
		}
		require.Equal(t, 1, winners, "key %d", k)
		total += winners
	}
	require.Equal(t, raceKeys, total)
}

func testRaceInsert(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	s := newDocs(t)
	for round := range raceRounds {
		collection := fmt.Sprintf("race%d", round)
		won := make([][]bool, raceWriters)
		errs := make(chan error, raceWriters*raceKeys)
		var wg sync.WaitGroup
		for w := range raceWriters {
			won[w] = make([]bool, raceKeys)
			wg.Go(func() {
				for k := range raceKeys {
					err := s.Insert(t.Context(), collection, raceKey(k), raceBody(w))
					switch {
					case err == nil:
						won[w][k] = true
					case !errors.Is(err, store.ErrDuplicate):
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		checkRaceWinners(t, s, collection, won)
	}
}

// testManyDocs lists more documents than one context-check stride of the
// stores that stream (bolt checks every 1,024), inserted out of order.
func testManyDocs(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	const n = 1_100
	s := newDocs(t)
	ctx := t.Context()
	want := make([]string, n)
	for i := range n {
		// Descending keys, so the input is not already in store order.
		key := fmt.Sprintf("big/%08d", n-1-i)
		require.NoError(t, s.Insert(ctx, coll, key, json.RawMessage(fmt.Sprintf(`{"i":%d,"pad":"%064d"}`, i, i))))
		want[n-1-i] = key
	}

	got, err := s.List(ctx, coll, "big/")
	require.NoError(t, err)
	require.Equal(t, want, keysOf(got))
	require.JSONEq(t, fmt.Sprintf(`{"i":%d,"pad":"%064d"}`, 123, 123), string(got[n-1-123].Body))

	last, err := s.Last(ctx, coll, "big/")
	require.NoError(t, err)
	require.Equal(t, want[n-1], last.Key)
}

func testCanceledContext(t *testing.T, newDocs func(t *testing.T) store.Docs) {
	s := newDocs(t)
	require.NoError(t, s.Insert(t.Context(), coll, "k", json.RawMessage(`{}`)))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	body := json.RawMessage(`{}`)
	calls := []struct {
		name string
		call func() error
	}{
		{"Insert", func() error { return s.Insert(ctx, coll, "new", body) }},
		{"Get", func() error { _, err := s.Get(ctx, coll, "k"); return err }},
		{"List", func() error { _, err := s.List(ctx, coll, ""); return err }},
		{"Last", func() error { _, err := s.Last(ctx, coll, ""); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- c.call() }()
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled)
			case <-time.After(10 * time.Second):
				t.Fatal("hung on a canceled context")
			}
		})
	}
	_, err := s.Get(t.Context(), coll, "new")
	require.ErrorIs(t, err, store.ErrNotFound, "a canceled write must not be stored")
}

func keysOf(docs []store.Doc) []string {
	keys := make([]string, len(docs))
	for i, d := range docs {
		keys[i] = d.Key
	}
	return keys
}

func requireObject(t *testing.T, body json.RawMessage) {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m), "body: %s", body)
	require.NotNil(t, m)
}

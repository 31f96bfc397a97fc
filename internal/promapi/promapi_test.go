package promapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestClient(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		delay   time.Duration
		rng     bool
		wantErr func(error) bool
		check   func(t *testing.T, s []Series)
	}{
		{
			name: "matrix with NaN", status: 200, rng: true,
			body: `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"g"},"values":[[1700000000,"1.5"],[1700000015.5,"NaN"],[1700000030,"+Inf"]]}]}}`,
			check: func(t *testing.T, s []Series) {
				if len(s) != 1 || len(s[0].Samples) != 3 || s[0].Labels["job"] != "g" {
					t.Fatalf("%+v", s)
				}
				if s[0].Samples[0].V != 1.5 || !math.IsNaN(s[0].Samples[1].V) || !math.IsInf(s[0].Samples[2].V, 1) {
					t.Fatalf("values %+v", s[0].Samples)
				}
				if got := s[0].Samples[1].T; !got.Equal(time.Unix(1700000015, 5e8)) {
					t.Fatalf("time %s", got)
				}
			},
		},
		{
			name: "vector with two series", status: 200,
			body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1700000000,"2"]},{"metric":{"a":"2"},"value":[1700000000,"3"]}]}}`,
			check: func(t *testing.T, s []Series) {
				if len(s) != 2 || s[1].Samples[0].V != 3 {
					t.Fatalf("%+v", s)
				}
			},
		},
		{
			name: "empty result", status: 200, rng: true,
			body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
			check: func(t *testing.T, s []Series) {
				if len(s) != 0 {
					t.Fatalf("%+v", s)
				}
			},
		},
		{
			name: "bad query is permanent", status: 400,
			body: `{"status":"error","errorType":"bad_data","error":"parse error at char 4"}`,
			wantErr: func(err error) bool {
				var bq *BadQueryError
				return errors.As(err, &bq) && strings.Contains(bq.Msg, "parse error") && !errors.Is(err, ErrUnavailable)
			},
		},
		{
			name: "5xx is unavailable", status: 503, body: `{"status":"error","errorType":"unavailable","error":"overloaded"}`,
			wantErr: func(err error) bool { return errors.Is(err, ErrUnavailable) },
		},
		{
			name: "not JSON (a proxy's error page) is unavailable", status: 502, body: `<html>bad gateway</html>`,
			wantErr: func(err error) bool { return errors.Is(err, ErrUnavailable) },
		},
		{
			name: "body over the cap", status: 200, body: `{"status":"success","data":{"resultType":"vector","result":[` + strings.Repeat(" ", 4096) + `]}}`,
			wantErr: func(err error) bool {
				return errors.Is(err, ErrUnavailable) && strings.Contains(err.Error(), "more than")
			},
		},
		{
			name: "timeout", status: 200, delay: 500 * time.Millisecond, body: `{"status":"success","data":{"resultType":"vector","result":[]}}`,
			wantErr: func(err error) bool {
				return errors.Is(err, ErrUnavailable) && errors.Is(err, context.DeadlineExceeded)
			},
		},
		{
			name: "a scalar is not a series", status: 200, body: `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}`,
			wantErr: func(err error) bool {
				var bq *BadQueryError
				return errors.As(err, &bq) && strings.Contains(bq.Msg, "scalar")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseForm(); err != nil || r.Form.Get("query") != "up" {
					t.Errorf("query %q", r.Form.Get("query"))
				}
				if tt.rng && (r.URL.Path != "/prom/api/v1/query_range" || r.Form.Get("step") != "15") {
					t.Errorf("path %s step %s", r.URL.Path, r.Form.Get("step"))
				}
				select {
				case <-time.After(tt.delay):
				case <-r.Context().Done():
					return
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, err := New(Config{URL: srv.URL + "/prom/", Timeout: 100 * time.Millisecond, MaxBody: 1024})
			if err != nil {
				t.Fatal(err)
			}
			var s []Series
			if tt.rng {
				s, err = c.QueryRange(context.Background(), "up", time.Unix(1700000000, 0), time.Unix(1700000030, 0), 15*time.Second)
			} else {
				s, err = c.Query(context.Background(), "up", time.Unix(1700000000, 0))
			}
			if tt.wantErr != nil {
				if err == nil || !tt.wantErr(err) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestUnreachableAndBadURL(t *testing.T) {
	c, err := New(Config{URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), "up", time.Now()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	for _, u := range []string{"", "localhost:9090", "ftp://x", "http://"} {
		if _, err := New(Config{URL: u}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
}

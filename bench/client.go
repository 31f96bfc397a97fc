package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Upload posts a CSV file to the housing dataset.
func Upload(ctx context.Context, base, name string, body io.Reader) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/datasets/housing/uploads?name="+name, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("upload %s: %s: %s", name, resp.Status, b)
	}
	return nil
}

func GetJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func PostJSON(ctx context.Context, url string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// The parts of the gateway's JSON the benchmarks read.
type ModelStatus struct {
	Ready bool `json:"ready"`
	Model *struct {
		ID             string `json:"id"`
		DatasetVersion int    `json:"dataset_version"`
		Sequence       int64  `json:"sequence"`
	} `json:"model"`
}

type RunsPage struct {
	Runs []struct {
		ID        string    `json:"id"`
		Spec      string    `json:"spec"`
		Version   int       `json:"version"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"runs"`
}

type PromotionsPage struct {
	Promotions []struct {
		Sequence   int64     `json:"sequence"`
		RunID      string    `json:"run_id"`
		Version    int       `json:"version"`
		PromotedAt time.Time `json:"promoted_at"`
	} `json:"promotions"`
	Decisions []struct {
		RunID       string    `json:"run_id"`
		Promoted    bool      `json:"promoted"`
		EvalVersion int       `json:"eval_version"`
		DecidedAt   time.Time `json:"decided_at"`
	} `json:"decisions"`
}

type DatasetStatus struct {
	Versions []struct {
		Number    int       `json:"number"`
		Rows      int       `json:"rows"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"versions"`
	Ingests []struct {
		Source struct {
			Object string `json:"object"`
		} `json:"source"`
		Accepted int       `json:"accepted"`
		StagedAt time.Time `json:"staged_at"`
	} `json:"ingests"`
}

// WaitDecided waits until every spec's run on version v has a decision.
func WaitDecided(ctx context.Context, base string, v, specs int, timeout time.Duration) (PromotionsPage, error) {
	deadline := time.Now().Add(timeout)
	for {
		var p PromotionsPage
		if err := GetJSON(ctx, base+"/v1/datasets/housing/promotions", &p); err != nil {
			return p, err
		}
		n := 0
		for _, d := range p.Decisions {
			if d.EvalVersion >= v {
				n++
			}
		}
		if n >= specs {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("version %d: %d of %d decisions after %v", v, n, specs, timeout)
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitRuns waits until version v has runs for every spec.
func WaitRuns(ctx context.Context, base string, v, specs int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var runs RunsPage
		if err := GetJSON(ctx, base+"/v1/datasets/housing/runs?limit=100", &runs); err != nil {
			return err
		}
		n := 0
		for _, r := range runs.Runs {
			if r.Version == v {
				n++
			}
		}
		if n >= specs {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("version %d: %d of %d runs after %v", v, n, specs, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

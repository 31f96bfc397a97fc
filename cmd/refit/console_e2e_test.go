package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/refit-ml/refit/internal/synth"
	"github.com/refit-ml/refit/internal/testenv"
)

const xssStreet = `<script>alert(1)</script><img src=x onerror=alert(2)>`

// chromium finds a browser, or skips: unless REFIT_REQUIRE_BROWSER is set,
// in which case a missing browser fails the test (CI installs one).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return testenv.Need(t, "chromium", "REFIT_REQUIRE_BROWSER")
}

// artifacts is where screenshots go: $REFIT_ARTIFACTS/<test> when set,
// else a temporary folder.
func artifacts(t *testing.T) string {
	t.Helper()
	base := os.Getenv("REFIT_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// browser starts a fresh headless chromium with nothing running in the
// background, and counts JavaScript dialogs (an alert means injected
// script ran).
func browser(t *testing.T) (context.Context, *atomic.Int32) {
	t.Helper()
	// Not t.TempDir: chromium's helpers may still write to the profile
	// while it is removed, which t.TempDir reports as a failure.
	profile, err := os.MkdirTemp("", "refit-chromium-")
	require.NoError(t, err)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1100),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	dialogs := &atomic.Int32{}
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(true)) }()
		}
	})
	require.NoError(t, chromedp.Run(ctx), "start chromium")
	return ctx, dialogs
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	var png []byte
	require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100))) // 100: PNG; less is JPEG
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot %s", path)
}

// waitText polls until the element's text satisfies ok.
func waitText(t *testing.T, ctx context.Context, sel, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var text string
		err := chromedp.Run(ctx, chromedp.TextContent(sel, &text, chromedp.ByQuery, chromedp.AtLeast(0)))
		if err == nil && ok(text) {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%s): last text %q, err %v", what, sel, text, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// withHostileRow appends a row whose street is markup and whose price is
// not a number: it is rejected, and the console shows it as text.
func withHostileRow(t *testing.T, content []byte) []byte {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(content)).ReadAll()
	require.NoError(t, err)
	row := slices.Clone(recs[1])
	for i, h := range recs[0] {
		switch h {
		case "street":
			row[i] = xssStreet
		case "price":
			row[i] = "not-a-price"
		}
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	require.NoError(t, w.WriteAll(append(recs, row)))
	return buf.Bytes()
}

func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	ctx, dialogs := browser(t)
	shots := artifacts(t)
	p := startProgram(t, t.TempDir())

	first := withHostileRow(t, generate(t, 21, 3000))
	p.upload(p.api(), "housing", "first", first)
	p.eventually("first promotion served", p.serving)

	// The index lists the dataset.
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(p.base+"/"), chromedp.WaitVisible(`a[href="/console/housing"]`)))
	screenshot(t, ctx, shots, "1-index.png")

	// The empty form shows no error before anything is typed, and shows
	// an example value in each field.
	const redFields = `Array.from(document.querySelectorAll('[data-predict-form] input')).filter(e => getComputedStyle(e).borderTopColor === 'rgb(155, 28, 28)').length`
	var red int
	var placeholder string
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(p.base+"/console/housing"), chromedp.WaitVisible(`[data-predict-form]`),
		chromedp.Evaluate(redFields, &red), chromedp.AttributeValue(`#in-bedrooms`, "placeholder", &placeholder, nil, chromedp.ByQuery)))
	require.Zero(t, red, "no field is red before anything is typed")
	require.Regexp(t, `^e\.g\. [0-9.]+$`, placeholder, "an example value")
	screenshot(t, ctx, shots, "2a-form-untouched.png")

	// Submitting it empty says which field is wrong and what it takes
	// (a script error used to leave the form silent).
	require.NoError(t, chromedp.Run(ctx, chromedp.Click(`[data-predict-form] button[type=submit]`, chromedp.ByQuery)))
	msg := waitText(t, ctx, `[data-predict-state]`, "the empty form refused", func(s string) bool { return s != "" })
	require.Contains(t, msg, "bedrooms: required; want a number from 0 to 40 (e.g. ")
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(redFields, &red)))
	require.Positive(t, red, "after a submit the empty fields show")

	// Predict with the form, as a person would type it.
	inst, _ := houses(t, generate(t, 99, 1))
	var actions []chromedp.Action
	for name, v := range inst[0] {
		if name == "date" {
			continue
		}
		actions = append(actions, chromedp.SetValue("#in-"+name, fmt.Sprint(v), chromedp.ByQuery))
	}
	// One field out of its range: the form names it and its range.
	actions = append(actions, chromedp.SetValue("#in-bedrooms", "99", chromedp.ByQuery),
		chromedp.Click(`[data-predict-form] button[type=submit]`, chromedp.ByQuery))
	require.NoError(t, chromedp.Run(ctx, actions...))
	waitText(t, ctx, `[data-predict-state]`, "the out-of-range field named", func(s string) bool {
		return strings.HasPrefix(s, "bedrooms: 99 is out of range; want a number from 0 to 40")
	})
	waitText(t, ctx, `[data-field-error="bedrooms"]`, "the message beside the field", func(s string) bool { return strings.Contains(s, "from 0 to 40") })
	screenshot(t, ctx, shots, "2b-form-out-of-range.png")

	actions = []chromedp.Action{}
	for name, v := range inst[0] {
		if name == "date" {
			continue // dropped by the definition: not on the form
		}
		actions = append(actions, chromedp.SetValue("#in-"+name, fmt.Sprint(v), chromedp.ByQuery))
	}
	actions = append(actions, chromedp.Click(`[data-predict-form] button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[data-result]`, chromedp.ByQuery))
	require.NoError(t, chromedp.Run(ctx, actions...))
	id := waitText(t, ctx, `[data-r="id"]`, "a prediction ID", func(s string) bool { return len(s) == 36 })
	waitText(t, ctx, `[data-r="version"]`, "the model's dataset version", func(s string) bool { return s == "v1" })
	waitText(t, ctx, `[data-r="value"]`, "a price", func(s string) bool { return s != "" })

	// Correct it by prediction ID, and see it counted.
	require.NoError(t, chromedp.Run(ctx,
		chromedp.SetValue("#correct-label", "612000", chromedp.ByQuery),
		chromedp.Click(`[data-correct-form] button[type=submit]`, chromedp.ByQuery)))
	waitText(t, ctx, `[data-correct-state]`, "the correction accepted", func(s string) bool { return strings.Contains(s, "correction accepted") })
	waitText(t, ctx, `[data-corrected]`, "the correction counted", func(s string) bool { return s == "1" })
	screenshot(t, ctx, shots, "2-predict.png")
	t.Logf("corrected prediction %s", id)

	// The pipeline page: what the CSV held is text, never markup.
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(p.base+"/console/housing/pipeline"), chromedp.WaitVisible(`[data-live]`)))
	waitText(t, ctx, `[data-live-state]`, "the event stream", func(s string) bool { return strings.HasPrefix(s, "Live updates: on") })
	waitText(t, ctx, `[data-rejected]`, "the hostile row shown literally", func(s string) bool { return strings.Contains(s, xssStreet) })
	waitText(t, ctx, `[data-corrected]`, "the correction counted by the server", func(s string) bool { return s == "1" })
	var injected int
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll('[data-live] img[src="x"], [data-live] script').length`, &injected)))
	require.Zero(t, injected, "no element was made from the CSV")
	screenshot(t, ctx, shots, "3-pipeline.png")

	// Upload a file through the page and watch it become a version and a
	// promotion decision without a reload.
	second := filepath.Join(t.TempDir(), "second batch.csv")
	require.NoError(t, os.WriteFile(second, generate(t, 22, 1500), 0o644))
	var marker bool
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Evaluate(`window.__noReload = true`, nil),
		chromedp.SetUploadFiles(`#upload-file`, []string{second}, chromedp.ByQuery)))
	waitText(t, ctx, `[data-upload-state]`, "the upload done", func(s string) bool { return strings.Contains(s, "uploaded") })
	waitText(t, ctx, `[data-ingests]`, "the ingest listed", func(s string) bool { return strings.Contains(s, "second_batch.csv") })
	waitText(t, ctx, `[data-versions]`, "version 2", func(s string) bool { return strings.Contains(s, "v2") })
	waitText(t, ctx, `[data-runs]`, "the decision on version 2", func(s string) bool {
		return strings.Contains(s, "v2") && (strings.Contains(s, "promoted") || strings.Contains(s, "rejected"))
	})
	waitText(t, ctx, `[data-live-state]`, "events from the stream", func(s string) bool { return strings.Contains(s, "event") })
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.__noReload === true`, &marker)))
	require.True(t, marker, "the page updated in place")
	screenshot(t, ctx, shots, "4-pipeline-after-upload.png")

	require.Zero(t, dialogs.Load(), "no script from the data ran")
}

func TestConsoleAsksForTheAdminToken(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	ctx, dialogs := browser(t)
	shots := artifacts(t)
	p := startProgramEnv(t, t.TempDir(), map[string]string{"REFIT_ADMIN_TOKEN": "s3cret-token"})
	file := filepath.Join(t.TempDir(), "houses.csv")
	require.NoError(t, os.WriteFile(file, generate(t, 41, 600), 0o644))

	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(p.base+"/console/housing/pipeline"), chromedp.WaitVisible(`[data-token-form]`)))
	// Without the token the upload is refused and the page says why.
	require.NoError(t, chromedp.Run(ctx, chromedp.SetUploadFiles(`#upload-file`, []string{file}, chromedp.ByQuery)))
	waitText(t, ctx, `[data-upload-state]`, "the refusal", func(s string) bool { return strings.Contains(s, "needs the admin token") })
	screenshot(t, ctx, shots, "5-token-needed.png")

	// With it (kept for the tab, sent as Bearer) the upload goes through.
	require.NoError(t, chromedp.Run(ctx,
		chromedp.SetValue(`#admin-token`, "s3cret-token", chromedp.ByQuery),
		chromedp.Click(`[data-token-form] button[type=submit]`, chromedp.ByQuery)))
	waitText(t, ctx, `[data-token-state]`, "the token kept", func(s string) bool { return strings.Contains(s, "kept") })
	require.NoError(t, chromedp.Run(ctx, chromedp.SetUploadFiles(`#upload-file`, []string{file}, chromedp.ByQuery)))
	waitText(t, ctx, `[data-upload-state]`, "the upload done", func(s string) bool { return strings.Contains(s, "uploaded") })
	waitText(t, ctx, `[data-ingests]`, "the ingest listed", func(s string) bool { return strings.Contains(s, "houses.csv") })
	var stored string
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`sessionStorage.getItem("refit-admin-token")`, &stored)))
	require.Equal(t, "s3cret-token", stored)
	var html string
	require.NoError(t, chromedp.Run(ctx, chromedp.OuterHTML("html", &html, chromedp.ByQuery)))
	require.NotContains(t, html, "s3cret-token", "the token is never written into the page")
	require.Zero(t, dialogs.Load())
}

// hostileReview is a review a person could paste: markup, quotes, a comma
// and a line break. It must reach the model and come back as text.
const hostileReview = "<script>alert(3)</script><img src=x onerror=alert(4)> \"Great\", I said,\nthen I loved it: wonderful acting"

func TestConsoleClassifierInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	ctx, dialogs := browser(t)
	shots := artifacts(t)
	p := startProgram(t, t.TempDir())

	var csvBuf bytes.Buffer
	require.NoError(t, synth.Reviews{Seed: 31}.Write(&csvBuf, 1500))
	w := csv.NewWriter(&csvBuf)
	require.NoError(t, w.Write([]string{hostileReview, "positive"}))
	w.Flush()
	p.upload(p.api(), "reviews", "reviews", csvBuf.Bytes())
	p.eventually("a classifier served", func() bool { return p.model("reviews").Ready })

	// The form has a text area; the hostile review goes in as typed.
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(p.base+"/console/reviews"), chromedp.WaitVisible(`textarea#in-review`),
		chromedp.SetValue(`#in-review`, hostileReview, chromedp.ByQuery),
		chromedp.Click(`[data-predict-form] button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[data-result]`, chromedp.ByQuery)))
	class := waitText(t, ctx, `[data-r="value"]`, "a class", func(s string) bool { return s == "positive" || s == "negative" })
	probs := waitText(t, ctx, `[data-probs]`, "each class's probability", func(s string) bool {
		return strings.Contains(s, "negative: ") && strings.Contains(s, "positive: ")
	})
	require.Regexp(t, `^(negative|positive): \d+\.\d%(negative|positive): \d+\.\d%$`, probs)
	id := waitText(t, ctx, `[data-r="id"]`, "a prediction ID", func(s string) bool { return len(s) == 36 })
	var options []string
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`Array.from(document.querySelectorAll('#correct-label option')).map(o => o.value)`, &options)))
	require.Equal(t, []string{"negative", "positive"}, options, "correct this offers the classes")
	screenshot(t, ctx, shots, "5-classify.png")

	// Correct it to the other class, by prediction ID.
	other := map[string]string{"positive": "negative", "negative": "positive"}[class]
	require.NoError(t, chromedp.Run(ctx,
		chromedp.SetValue("#correct-label", other, chromedp.ByQuery),
		chromedp.Click(`[data-correct-form] button[type=submit]`, chromedp.ByQuery)))
	waitText(t, ctx, `[data-correct-state]`, "the correction accepted", func(s string) bool { return strings.Contains(s, "correction accepted") })
	waitText(t, ctx, `[data-corrected]`, "the correction counted", func(s string) bool { return s == "1" })
	t.Logf("corrected prediction %s to %s", id, other)

	// The pipeline page charts accuracy.
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(p.base+"/console/reviews/pipeline"), chromedp.WaitVisible(`[data-runs]`)))
	waitText(t, ctx, `#chart-title`, "the accuracy chart", func(s string) bool { return strings.HasPrefix(s, "Validation accuracy") })
	var injected int
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll('img[src="x"], main script:not([src^="/static/console/"])').length`, &injected)))
	require.Zero(t, injected, "no element was made from the review")
	screenshot(t, ctx, shots, "6-pipeline-accuracy.png")
	require.Zero(t, dialogs.Load(), "no script from the review ran")
}

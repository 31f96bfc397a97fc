package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/refit-ml/refit/client"
	"github.com/refit-ml/refit/internal/blob/gcs"
	"github.com/refit-ml/refit/internal/testenv"
)

// proc is one refit OS process.
type proc struct {
	target string
	cmd    *exec.Cmd
	url    string
	out    *syncBuffer
}

type cluster struct {
	t     *testing.T
	bin   string
	env   []string
	mu    sync.Mutex
	procs []*proc
}

// buildRefit returns the refit binary, built once per test run of this
// package (binaries.refit): the first build compiles every dependency
// without -race, a cost worth paying once, not once per test.
func buildRefit(t *testing.T) string {
	t.Helper()
	bin, err := binaries.refit()
	require.NoError(t, err)
	return bin
}

// emulatorStack is the Pub/Sub emulator, FerretDB and fake-gcs-server,
// started for one test, and a cluster of refit processes using them.
type emulatorStack struct {
	*cluster
	emulator, mongoURI, gcsURL string
}

// startEmulatorStack starts the three servers and a cluster whose processes
// run the gcp profile on them, with project and bucket, and extra settings.
func startEmulatorStack(t *testing.T, project, bucket string, extra ...string) *emulatorStack {
	t.Helper()
	emulator := testenv.StartPubSubEmulator(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", emulator) // fake-gcs-server publishes notifications there
	mongoURI := testenv.StartFerretDB(t)
	gcsSrv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard})
	require.NoError(t, err)
	t.Cleanup(gcsSrv.Stop)
	env := append(os.Environ(),
		"REFIT_PROFILE=gcp", "REFIT_GCP_PROJECT="+project, "REFIT_BUCKET="+bucket,
		"REFIT_MONGODB_URI="+mongoURI, "PUBSUB_EMULATOR_HOST="+emulator, "STORAGE_EMULATOR_HOST="+gcsSrv.URL(),
		"REFIT_HTTP_ADDR=127.0.0.1:0", "REFIT_RECONCILE_INTERVAL=3s", "REFIT_MODEL_REFRESH=2s", "REFIT_LOG_LEVEL=info")
	c := &cluster{t: t, bin: buildRefit(t), env: append(env, extra...)}
	t.Cleanup(c.stopAll)
	return &emulatorStack{cluster: c, emulator: emulator, mongoURI: mongoURI, gcsURL: gcsSrv.URL()}
}

// logs is the tail of every process's output, for a failure message.
func (c *cluster) logs() string {
	var b strings.Builder
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		fmt.Fprintf(&b, "---- %s\n%s", p.target, tailLines(p.out.String(), 30))
	}
	return b.String()
}

func (c *cluster) start(target string) *proc {
	c.t.Helper()
	p := &proc{target: target, out: &syncBuffer{}}
	p.cmd = exec.Command(c.bin, "serve", "--target="+target)
	p.cmd.Env = c.env
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(c.t, err)
	p.cmd.Stderr = p.out
	require.NoError(c.t, p.cmd.Start())
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	select {
	case p.url = <-urls:
	case <-time.After(60 * time.Second):
		c.t.Fatalf("%s did not start:\n%s", target, p.out.String())
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p
}

func (c *cluster) kill(p *proc) {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func (c *cluster) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range c.procs {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Wait()
		}
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool, logs func() string) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s after %s", what, time.Since(start).Round(100*time.Millisecond))
}

// summary is the part of the final state that must not depend on the
// profile, the process layout or crashes.
type summary struct {
	Versions []string
	Runs     []string
	Champion string
}

func summarize(t *testing.T, base string) summary {
	ctx := context.Background()
	ds, err := client.New(base).Dataset(ctx, "housing")
	require.NoError(t, err)
	runs, err := client.New(base).Runs(ctx, "housing", client.RunsQuery{})
	require.NoError(t, err)
	var s summary
	for _, v := range ds.Versions {
		s.Versions = append(s.Versions, fmt.Sprintf("v%d rows=%d", v.Number, v.Rows))
	}
	for _, r := range runs.Runs {
		s.Runs = append(s.Runs, fmt.Sprintf("v%d %s rmse=%.4f", r.Version, r.Spec, r.Metrics.RMSE))
	}
	slices.Sort(s.Runs)
	if ds.Champion != nil {
		s.Champion = fmt.Sprintf("%s v%d", ds.Champion.Spec, ds.Champion.Version)
	}
	return s
}

var uploads = []struct {
	name string
	seed int64
	rows int
}{{"f1.csv", 21, 1200}, {"f2.csv", 22, 900}, {"f3.csv", 23, 700}}

// TestMultiProcessOnEmulators runs every worker as its own OS process on
// the Pub/Sub emulator, fake-gcs-server and FerretDB, kills a trainer and
// a versioner mid-run, and checks the final state against the embedded
// profile fed the same files.
func TestMultiProcessOnEmulators(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: not in -short")
	}
	const project, bucket = "refit-test", "refit-bucket"
	// A 10 s ack deadline, so what the killed processes held comes back
	// soon (see TestBlobStatisticsAcrossTrainers).
	s := startEmulatorStack(t, project, bucket, "REFIT_PUBSUB_ACK_DEADLINE=10s")
	c, bin, env, emulator, logs := s.cluster, s.bin, s.env, s.emulator, s.logs

	// setup: creates everything, then finds everything.
	setup := func() string {
		cmd := exec.Command(bin, "setup")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	first := setup()
	require.Contains(t, first, "created projects/"+project+"/topics/refit.rows.staged")
	require.Contains(t, first, "created notification gs://"+bucket+"/incoming/*")
	require.Contains(t, first, "created mongodb collection versions")
	second := setup()
	require.NotContains(t, second, "created")
	require.Contains(t, second, "found   projects/"+project+"/subscriptions/")

	// A raw subscriber on the dead-letter topic, as an operator would have.
	ctx := context.Background()
	psClient, err := pubsub.NewClient(ctx, project, option.WithEndpoint(emulator), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	require.NoError(t, err)
	t.Cleanup(func() { psClient.Close() })
	_, err = psClient.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:  "projects/" + project + "/subscriptions/test-dead-letters",
		Topic: "projects/" + project + "/topics/refit.dead-letter",
	})
	require.NoError(t, err)

	gateways := []*proc{c.start("gateway"), c.start("gateway")}
	c.start("preprocess")
	versioners := []*proc{c.start("version"), c.start("version")}
	trainers := []*proc{c.start("train"), c.start("train")}
	c.start("promote")
	base := gateways[0].url

	storageClient, err := gcs.NewClient(ctx, s.gcsURL)
	require.NoError(t, err)
	put := func(name string, content []byte) {
		w := storageClient.Bucket(bucket).Object(name).NewWriter(ctx)
		w.ContentType = "text/csv"
		_, err := w.Write(content)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	put("incoming/housing/"+uploads[0].name, generate(t, uploads[0].seed, uploads[0].rows))
	waitFor(t, "version 1", 90*time.Second, func() bool { return len(summarize(t, base).Versions) >= 1 }, logs)

	// Crash a trainer and a versioner while work is in flight, then bring them back.
	put("incoming/housing/"+uploads[1].name, generate(t, uploads[1].seed, uploads[1].rows))
	c.kill(trainers[0])
	c.kill(versioners[0])
	put("incoming/housing/"+uploads[2].name, generate(t, uploads[2].seed, uploads[2].rows))
	time.Sleep(500 * time.Millisecond)
	c.start("train")
	c.start("version")

	// Noise that must change nothing: an object outside incoming/, and a
	// file for a dataset nobody defined (dead-lettered with its reason).
	put("models/housing/not-an-upload.json", []byte("{}"))
	put("incoming/boats/b.csv", []byte("length,price\n10,1000\n"))

	waitFor(t, "3 versions, 6 runs, a champion on both gateways", 180*time.Second, func() bool {
		s := summarize(t, base)
		if len(s.Versions) != 3 || len(s.Runs) != 6 || s.Champion == "" {
			return false
		}
		a, b := servedID(gateways[0].url), servedID(gateways[1].url)
		return a != "" && a == b && latestIsChampion(t, base, a) && decided(t, base) == 6
	}, logs)
	got := summarize(t, base)

	// The dead letter names its reason.
	dlCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	var reason string
	_ = psClient.Subscriber("test-dead-letters").Receive(dlCtx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		reason = m.Attributes["reason_poisoned"]
		cancel()
	})
	cancel()
	require.Contains(t, reason, `unknown dataset "boats"`)

	// Three more deliveries of the first upload's notification change nothing.
	topic := psClient.Publisher("refit-objects")
	attrs := map[string]string{"eventType": "OBJECT_FINALIZE", "bucketId": bucket, "objectId": "incoming/housing/" + uploads[0].name,
		"payloadFormat": "JSON_API_V1"}
	obj, err := storageClient.Bucket(bucket).Object("incoming/housing/" + uploads[0].name).Attrs(ctx)
	require.NoError(t, err)
	attrs["objectGeneration"] = fmt.Sprint(obj.Generation)
	payload, _ := json.Marshal(map[string]string{"bucket": bucket, "name": obj.Name, "generation": fmt.Sprint(obj.Generation), "size": fmt.Sprint(obj.Size)})
	for range 3 {
		_, err := topic.Publish(ctx, &pubsub.Message{Data: payload, Attributes: attrs}).Get(ctx)
		require.NoError(t, err)
	}
	topic.Stop()
	time.Sleep(3 * time.Second)
	require.Equal(t, got, summarize(t, base))

	// The same files through the embedded profile in one process.
	p := startProgram(t, t.TempDir())
	for _, u := range uploads {
		p.upload(p.api(), "housing", u.name, generate(t, u.seed, u.rows))
		want := 0
		for _, w := range uploads {
			want += w.rows
			if w.name == u.name {
				break
			}
		}
		p.eventually("staged "+u.name, func() bool { return p.dataset().Rows.Accepted == want })
	}
	p.eventually("embedded converged", func() bool {
		// Every run decided, as on the cluster: six runs and a champion
		// can be seen before version 3's decision replaces it.
		s := summarize(t, p.base)
		return len(s.Runs) == 6 && s.Champion != "" && decided(t, p.base) == 6
	})
	if embedded := summarize(t, p.base); !reflect.DeepEqual(embedded, got) {
		t.Logf("decisions, multi-process:\n%s\ndecisions, embedded:\n%s",
			strings.Join(decisionLog(t, base), "\n"), strings.Join(decisionLog(t, p.base), "\n"))
		require.Equal(t, embedded, got)
	}
}

// decisionLog lists a dataset's decisions, to explain a different champion.
func decisionLog(t *testing.T, base string) []string {
	h, err := client.New(base).Promotions(context.Background(), "housing")
	require.NoError(t, err)
	var out []string
	for _, d := range h.Decisions {
		out = append(out, fmt.Sprintf("%s %s #%d eval v%d against %q: %s", d.RunID, d.Status, d.Sequence, d.EvalVersion, d.ChampionRunID, d.Reason))
	}
	return out
}

func decided(t *testing.T, base string) int {
	h, err := client.New(base).Promotions(context.Background(), "housing")
	if err != nil {
		return -1
	}
	return len(h.Decisions)
}

// latestIsChampion is true when model id is the latest promotion's.
func latestIsChampion(t *testing.T, base, id string) bool {
	h, err := client.New(base).Promotions(context.Background(), "housing")
	if err != nil || len(h.Promotions) == 0 {
		return false
	}
	return h.Promotions[len(h.Promotions)-1].RunID == id
}

// servedID is the run the gateway at base serves housing with ("" when
// none, or when it does not answer).
func servedID(base string) string {
	m, err := client.New(base).Model(context.Background(), "housing")
	if err != nil || m.Model == nil {
		return ""
	}
	return m.Model.ID
}

var lineBreak = regexp.MustCompile("\n")

func tailLines(s string, n int) string {
	lines := lineBreak.Split(strings.TrimRight(s, "\n"), -1)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

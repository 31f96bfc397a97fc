package bench

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/refit-ml/refit/internal/testenv"
)

// TestFreshnessOnEmulators is the freshness benchmark through the gcp
// profile: one `refit serve` process (all targets) on the Pub/Sub emulator,
// fake-gcs-server (which notifies the emulator itself) and FerretDB. It is
// a test rather than part of refitbench because the stack's launchers
// (internal/testenv) take a testing.TB. make bench runs it with
// REFIT_BENCH_EMULATORS=1 and -v; the table is in the log.
func TestFreshnessOnEmulators(t *testing.T) {
	if os.Getenv("REFIT_BENCH_EMULATORS") != "1" {
		t.Skip("a benchmark: set REFIT_BENCH_EMULATORS=1 (make bench does)")
	}
	uploads := 20
	if v, err := strconv.Atoi(os.Getenv("REFIT_BENCH_UPLOADS")); err == nil {
		uploads = v
	}
	emulator := testenv.StartPubSubEmulator(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", emulator) // fake-gcs-server publishes notifications there
	mongoURI := testenv.StartFerretDB(t)
	gcsSrv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcsSrv.Stop)

	bin := filepath.Join(t.TempDir(), "refit")
	build := exec.Command("go", "build", "-tags=disable_grpc_modules", "-o", bin, "./cmd/refit") // as the Makefile and the image build it
	build.Dir, build.Stderr = "..", os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "REFIT_PROFILE=gcp", "REFIT_GCP_PROJECT=refit-bench", "REFIT_BUCKET=refit-bench",
		"REFIT_MONGODB_URI="+mongoURI, "PUBSUB_EMULATOR_HOST="+emulator, "STORAGE_EMULATOR_HOST="+gcsSrv.URL(),
		"REFIT_HTTP_ADDR=127.0.0.1:0", "REFIT_LOG_LEVEL=warn")
	setup := exec.Command(bin, "setup")
	setup.Env = env
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("refit setup: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--target=all")
	cmd.Env = env
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := regexp.MustCompile(`refit listening on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	var base string
	select {
	case base = <-urls:
	case <-time.After(60 * time.Second):
		t.Fatal("refit serve did not start")
	}
	all, err := MeasureFreshness(context.Background(), base, uploads)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("freshness through the Pub/Sub emulator + fake-gcs-server + FerretDB, %d uploads:\n%s", uploads, FreshnessTable(all))
}

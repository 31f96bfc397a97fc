package deploy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/refit-ml/refit/events"
)

func TestBootstrapShellcheck(t *testing.T) {
	shellcheck := need(t, "shellcheck", requireShellcheck)
	run(t, root(t), nil, shellcheck, "deploy/gcp/bootstrap.sh", "deploy/testdata/fakebin/gcloud")
}

// bootstrapCalls runs bootstrap.sh twice against a fake gcloud that keeps
// state, and returns the gcloud calls of each run.
func bootstrapCalls(t *testing.T) (first, second []string) {
	// Calls are lines of tab-separated arguments (see testdata/fakebin/gcloud).
	t.Helper()
	state := t.TempDir()
	logs := t.TempDir()
	runOnce := func(n string) []string {
		log := filepath.Join(logs, n)
		env := []string{
			"PATH=" + filepath.Join(root(t), "deploy/testdata/fakebin") + string(os.PathListSeparator) + os.Getenv("PATH"),
			"FAKE_GCLOUD_LOG=" + log, "FAKE_GCLOUD_STATE=" + state,
		}
		run(t, root(t), env, "bash", "deploy/gcp/bootstrap.sh", "my-project", "my-bucket", "europe-west1")
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		// The fake logs arguments separated by tabs; tests read the calls
		// as space-joined text, and TestBootstrapCommandsExist splits them.
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	return runOnce("first"), runOnce("second")
}

// verb is a call's command path and first positional argument.
func creates(calls []string) []string {
	var out []string
	for _, c := range calls {
		if regexp.MustCompile(` (create) `).MatchString(c + " ") {
			out = append(out, c)
		}
	}
	return out
}

func TestBootstrapIsIdempotentAndLeastPrivilege(t *testing.T) {
	first, second := bootstrapCalls(t)
	for _, calls := range [][]string{first, second} {
		for i := range calls {
			calls[i] = strings.ReplaceAll(calls[i], "\t", " ")
		}
	}
	if c := creates(second); len(c) > 0 {
		t.Errorf("a second run created again:\n%s", strings.Join(c, "\n"))
	}
	made := creates(first)
	sub, topic := pubsubNames(t)
	wantSubs := allSubscriptions(sub)
	var gotSubs []string
	for _, c := range made {
		if m := regexp.MustCompile(`pubsub subscriptions create (\S+) `).FindStringSubmatch(c); m != nil {
			gotSubs = append(gotSubs, m[1])
			dl := "--dead-letter-topic=" + topic(events.TopicDeadLetter)
			if m[1] == sub("dead-letters", events.TopicDeadLetter) {
				if strings.Contains(c, dl) {
					t.Errorf("dead letters are not dead-lettered again: %s", c)
				}
			} else if !strings.Contains(c, dl) || !strings.Contains(c, "--max-delivery-attempts=") {
				t.Errorf("subscription without dead-letter policy: %s", c)
			}
		}
	}
	sort.Strings(wantSubs)
	sort.Strings(gotSubs)
	if !slices.Equal(gotSubs, wantSubs) {
		t.Errorf("subscriptions %v, the binary's bus uses %v", gotSubs, wantSubs)
	}
	for _, tp := range []string{events.TopicObjectFinalized, events.TopicCorrectionSubmitted, events.TopicRowsStaged,
		events.TopicDatasetVersioned, events.TopicBlobWritten, events.TopicModelTrained, events.TopicModelPromoted, events.TopicDeadLetter} {
		if !slices.ContainsFunc(made, func(c string) bool { return strings.Contains(c+" ", "pubsub topics create "+topic(tp)+" ") }) {
			t.Errorf("topic %s not created", topic(tp))
		}
	}
	all := strings.Join(first, "\n")
	for _, want := range []string{
		"storage buckets create gs://my-bucket",
		"storage buckets notifications create gs://my-bucket --topic=" + topic(events.TopicObjectFinalized) + " --event-types=OBJECT_FINALIZE --object-prefix=" + events.IncomingPrefix,
		"storage buckets add-iam-policy-binding gs://my-bucket --member=serviceAccount:refit@my-project.iam.gserviceaccount.com --role=roles/storage.objectAdmin",
		"--member=serviceAccount:refit-keda@my-project.iam.gserviceaccount.com --role=roles/monitoring.viewer",
		"--role=roles/iam.workloadIdentityUser --member=serviceAccount:my-project.svc.id.goog[refit-ml/refit]",
		"--role=roles/iam.workloadIdentityUser --member=serviceAccount:my-project.svc.id.goog[refit-web/refit]",
		"--role=roles/iam.workloadIdentityUser --member=serviceAccount:my-project.svc.id.goog[keda/keda-operator]",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no call with %q", want)
		}
	}
	for _, c := range first {
		if regexp.MustCompile(`--member=serviceAccount:(\s|$)`).MatchString(c) {
			t.Errorf("empty member: %s", c)
		}
		if m := regexp.MustCompile(`--role=(\S+)`).FindStringSubmatch(c); m != nil {
			if regexp.MustCompile(`roles/(owner|editor|[a-z]+\.admin|pubsub\.editor|storage\.admin)$`).MatchString(m[1]) {
				t.Errorf("too broad a role: %s", c)
			}
			if m[1] == "roles/storage.objectAdmin" && !strings.Contains(c, "storage buckets add-iam-policy-binding gs://my-bucket") {
				t.Errorf("storage.objectAdmin only on the bucket: %s", c)
			}
		}
	}
}

// TestBootstrapCommandsExist checks every command and flag bootstrap.sh
// passes to gcloud against the installed gcloud's own command tree (the
// static completion tree it ships: offline and fast, unlike --help).
func TestBootstrapCommandsExist(t *testing.T) {
	gcloud := need(t, "gcloud", requireGcloud)
	real, err := filepath.EvalSymlinks(gcloud)
	if err != nil {
		t.Fatal(err)
	}
	treeFile := filepath.Join(filepath.Dir(real), "..", "data", "cli", "gcloud_completions.py")
	b, err := os.ReadFile(treeFile)
	if err != nil {
		t.Fatalf("gcloud's command tree: %v", err)
	}
	const marker = "STATIC_COMPLETION_CLI_TREE = "
	i := strings.Index(string(b), marker)
	if i < 0 {
		t.Fatalf("%s: no %s", treeFile, marker)
	}
	type node struct {
		Commands map[string]*node `json:"commands"`
		Flags    map[string]any   `json:"flags"`
	}
	var tree node
	if err := json.Unmarshal(b[i+len(marker):], &tree); err != nil {
		t.Fatalf("%s: %v", treeFile, err)
	}
	first, _ := bootstrapCalls(t)
	checked := 0
	for _, call := range first {
		n, path := &tree, []string{}
		var flags []string
		positional := false
		for _, arg := range strings.Split(call, "\t") {
			if strings.HasPrefix(arg, "--") {
				name, _, _ := strings.Cut(arg, "=")
				flags = append(flags, name)
			} else if next, ok := n.Commands[arg]; ok && !positional {
				n, path = next, append(path, arg)
			} else {
				positional = true
			}
		}
		if len(n.Commands) > 0 || len(path) == 0 {
			t.Errorf("gcloud %s: not a command (from %q)", strings.Join(path, " "), call)
			continue
		}
		for _, f := range flags {
			if _, ok := n.Flags[f]; !ok {
				if _, global := tree.Flags[f]; !global {
					t.Errorf("gcloud %s has no flag %s", strings.Join(path, " "), f)
				}
			}
		}
		checked++
	}
	if checked < 20 {
		t.Errorf("checked only %d calls", checked)
	}
}

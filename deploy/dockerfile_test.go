package deploy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// No Debian package ships hadolint: these are the rules that matter for
// this image, checked on the parsed Dockerfile.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "deploy/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	type instr struct{ cmd, args string }
	var ins []instr
	text := regexp.MustCompile(`\\\n`).ReplaceAllString(string(b), " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, args, _ := strings.Cut(line, " ")
		ins = append(ins, instr{strings.ToUpper(cmd), strings.TrimSpace(args)})
	}
	args := map[string]string{} // ARG defaults, for FROM
	expand := func(s string) string {
		return regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`).ReplaceAllStringFunc(s, func(m string) string {
			name := strings.Trim(m, "${}")
			return args[name]
		})
	}
	var froms []string
	var final []instr // the last stage's instructions
	for _, in := range ins {
		switch in.cmd {
		case "ARG":
			if k, v, ok := strings.Cut(in.args, "="); ok {
				args[k] = expand(v)
			}
		case "FROM":
			image := expand(strings.Fields(in.args)[0])
			froms = append(froms, image)
			final = nil
			name := image[strings.LastIndex(image, "/")+1:]
			if !strings.Contains(name, ":") || strings.HasSuffix(name, ":latest") {
				t.Errorf("FROM %s: pin a version tag (not latest)", image)
			}
		case "ADD":
			t.Errorf("ADD %s: use COPY (ADD fetches URLs and unpacks archives)", in.args)
		}
		final = append(final, in)
	}
	if len(froms) < 2 {
		t.Errorf("want a multi-stage build, have FROM %v", froms)
	}
	runtime := froms[len(froms)-1]
	if !strings.HasPrefix(runtime, "gcr.io/distroless/static") && runtime != "scratch" {
		t.Errorf("runtime image %s: want distroless static or scratch (no shell)", runtime)
	}
	goMod, err := os.ReadFile(filepath.Join(root(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(goMod); m == nil || args["GO_VERSION"] != string(m[1]) {
		t.Errorf("ARG GO_VERSION=%s, go.mod says go %s", args["GO_VERSION"], m[1])
	}
	var user, entrypoint, cmd string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "CMD":
			cmd = in.args
		case "RUN":
			t.Errorf("RUN in the runtime stage (%s): it has no shell", in.args)
		}
	}
	uid, gid, _ := strings.Cut(user, ":")
	for _, id := range []string{uid, gid} {
		if n, err := strconv.Atoi(id); err != nil || n == 0 {
			t.Errorf("USER %q: want numeric non-root uid:gid (runAsNonRoot checks it)", user)
		}
	}
	var ep, cm []string
	if json.Unmarshal([]byte(entrypoint), &ep) != nil || !slices.Equal(ep, []string{"/refit"}) {
		t.Errorf(`ENTRYPOINT %s, want ["/refit"]`, entrypoint)
	}
	if json.Unmarshal([]byte(cmd), &cm) != nil || !slices.Equal(cm, []string{"serve", "--target=all"}) {
		t.Errorf(`CMD %s, want ["serve","--target=all"]`, cmd)
	}
	build := ""
	for _, in := range ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	if !strings.Contains(build, "-trimpath") || !strings.Contains(build, "./cmd/refit") {
		t.Errorf("go build must use -trimpath and build ./cmd/refit: %q", build)
	}
	if !strings.Contains(text, "CGO_ENABLED=0") {
		t.Error("CGO_ENABLED=0 is required for a static binary")
	}

	ignore, err := os.ReadFile(filepath.Join(root(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", ".env"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf(".dockerignore must exclude %s", want)
		}
	}
}

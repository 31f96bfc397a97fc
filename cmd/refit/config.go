package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/refit-ml/refit/internal/bus"
)

// Profiles.
const (
	profileEmbedded = "embedded"
	profileGCP      = "gcp"
)

// Targets.
var allTargets = []string{"gateway", "preprocess", "version", "train", "promote"}

// Config is every setting, read once from the environment (and flags) and
// validated before anything starts.
type Config struct {
	Profile           string
	Targets           []string
	DataDir           string
	HTTPAddr          string
	DatasetsDir       string
	ReconcileInterval time.Duration
	ModelRefresh      time.Duration
	WatchInterval     time.Duration
	WatchQuiet        time.Duration // a file without a final line break waits this long unchanged
	// WatchTempMaxAge: the folder watcher removes temporary files a killed
	// writer left once unchanged this long (0: never).
	WatchTempMaxAge time.Duration
	// IncomingRetention: an upload rejected whole is deleted from incoming/
	// this long after its rejection was recorded (0: kept forever).
	IncomingRetention time.Duration
	// ExitWhenIdle stops the process once no event has been handled for
	// this long (0: never): a Kubernetes Job's trainer exits when done.
	ExitWhenIdle time.Duration
	LogLevel     slog.Level
	LogFormat    string
	Access       Access       // tokens and webhooks (access.go)
	Scaler       ScalerConfig // --target=scaler (scaler.go)

	// gcp profile
	GCPProject     string
	Bucket         string
	TopicPrefix    string
	MongoURI       string
	MongoDatabase  string
	PubSubEmulator string
	GCSEmulator    string
	// AckDeadline of the subscriptions `refit setup` creates, and the
	// longest single lease extension: a message a killed worker held comes
	// back this long after its last extension.
	AckDeadline time.Duration
}

// settingError names the one setting that is wrong.
type settingError struct{ name, msg string }

func (e *settingError) Error() string { return e.name + ": " + e.msg }

func loadConfig(getenv func(string) string, profileFlag, targetFlag string) (Config, error) {
	env := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		Profile:        firstSet(profileFlag, env("REFIT_PROFILE", profileEmbedded)),
		DataDir:        env("REFIT_DATA_DIR", "./var"),
		HTTPAddr:       env("REFIT_HTTP_ADDR", ":8080"),
		DatasetsDir:    env("REFIT_DATASETS_DIR", ""),
		LogFormat:      env("REFIT_LOG_FORMAT", "text"),
		GCPProject:     env("REFIT_GCP_PROJECT", ""),
		Bucket:         env("REFIT_BUCKET", ""),
		TopicPrefix:    env("REFIT_TOPIC_PREFIX", "refit"),
		MongoURI:       env("REFIT_MONGODB_URI", ""),
		MongoDatabase:  env("REFIT_MONGODB_DATABASE", "refit"),
		PubSubEmulator: env("PUBSUB_EMULATOR_HOST", ""),
		GCSEmulator:    env("STORAGE_EMULATOR_HOST", ""),
	}
	var err error
	durations := []struct {
		name string
		def  time.Duration
		dst  *time.Duration
	}{
		{"REFIT_RECONCILE_INTERVAL", 2 * time.Minute, &c.ReconcileInterval},
		{"REFIT_MODEL_REFRESH", 30 * time.Second, &c.ModelRefresh},
		{"REFIT_WATCH_INTERVAL", 200 * time.Millisecond, &c.WatchInterval},
		{"REFIT_WATCH_QUIET", 5 * time.Second, &c.WatchQuiet},
		{"REFIT_PUBSUB_ACK_DEADLINE", 60 * time.Second, &c.AckDeadline},
	}
	for _, d := range durations {
		*d.dst = d.def
		if v := getenv(d.name); v != "" {
			if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst <= 0 {
				return c, &settingError{d.name, fmt.Sprintf("%q is not a positive duration (e.g. 2m, 500ms)", v)}
			}
		}
	}
	// Settings where 0 turns the behaviour off.
	for _, d := range []struct {
		name, example string
		def           time.Duration
		dst           *time.Duration
	}{
		{"REFIT_WATCH_TEMP_MAX_AGE", "1h", time.Hour, &c.WatchTempMaxAge},
		{"REFIT_INCOMING_RETENTION", "168h for a week", 7 * 24 * time.Hour, &c.IncomingRetention},
	} {
		*d.dst = d.def
		if v := strings.TrimSpace(getenv(d.name)); v != "" {
			if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst < 0 {
				return c, &settingError{d.name, fmt.Sprintf("%q is not a duration of 0 (off) or more (e.g. %s)", v, d.example)}
			}
		}
	}
	if v := getenv("REFIT_EXIT_WHEN_IDLE"); v != "" {
		if c.ExitWhenIdle, err = time.ParseDuration(v); err != nil || c.ExitWhenIdle <= 0 {
			return c, &settingError{"REFIT_EXIT_WHEN_IDLE", fmt.Sprintf("%q is not a positive duration (e.g. 30s)", v)}
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(env("REFIT_LOG_LEVEL", "info"))); err != nil {
		return c, &settingError{"REFIT_LOG_LEVEL", "want debug, info, warn or error"}
	}
	if c.Targets, err = parseTargets(firstSet(targetFlag, env("REFIT_TARGET", "all"))); err != nil {
		return c, err
	}
	if c.Access, err = loadAccess(getenv); err != nil {
		return c, err
	}
	if c.Scaler, err = loadScalerConfig(getenv, c.Targets); err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch c.Profile {
	case profileEmbedded:
		if c.DataDir == "" {
			return &settingError{"REFIT_DATA_DIR", "must not be empty"}
		}
	case profileGCP:
		if c.GCPProject == "" {
			return &settingError{"REFIT_GCP_PROJECT", "required with REFIT_PROFILE=gcp"}
		}
		if c.Bucket == "" {
			return &settingError{"REFIT_BUCKET", "required with REFIT_PROFILE=gcp"}
		}
		if c.MongoURI == "" {
			return &settingError{"REFIT_MONGODB_URI", "required with REFIT_PROFILE=gcp"}
		}
		if !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
			return &settingError{"REFIT_MONGODB_URI", "must start with mongodb:// or mongodb+srv://"}
		}
		if len(c.TopicPrefix) < 1 || strings.ContainsAny(c.TopicPrefix, " /") {
			return &settingError{"REFIT_TOPIC_PREFIX", "must be non-empty, without spaces or slashes"}
		}
		if !bus.ValidAckDeadline(c.AckDeadline) {
			return &settingError{"REFIT_PUBSUB_ACK_DEADLINE", fmt.Sprintf("%s: want whole seconds from 10s to 600s", c.AckDeadline)}
		}
	default:
		return &settingError{"REFIT_PROFILE", fmt.Sprintf("%q: want embedded or gcp", c.Profile)}
	}
	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return &settingError{"REFIT_HTTP_ADDR", fmt.Sprintf("%q: want host:port or :port", c.HTTPAddr)}
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return &settingError{"REFIT_HTTP_ADDR", fmt.Sprintf("bad port %q", port)}
	}
	if c.DatasetsDir != "" {
		if st, err := os.Stat(c.DatasetsDir); err != nil {
			return &settingError{"REFIT_DATASETS_DIR", fmt.Sprintf("%s: %v", c.DatasetsDir, errors.Unwrap(err))}
		} else if !st.IsDir() {
			return &settingError{"REFIT_DATASETS_DIR", fmt.Sprintf("%s is not a directory (want a folder of dataset definitions, *.json)", c.DatasetsDir)}
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return &settingError{"REFIT_LOG_FORMAT", "want text or json"}
	}
	return nil
}

func parseTargets(s string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		switch {
		case t == "all":
			out = append(out, allTargets...)
		case contains(allTargets, t), t == targetScaler:
			out = append(out, t)
		default:
			return nil, &settingError{"--target", fmt.Sprintf("unknown target %q: want all, scaler or a comma list of %s", t, strings.Join(allTargets, ", "))}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--target: no target")
	}
	return dedupe(out), nil
}

func (c Config) has(target string) bool { return contains(c.Targets, target) }

func firstSet(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// embeddedOnly refuses `refit run` under another profile: run is the
// embedded profile on one machine, and silently ignoring REFIT_PROFILE=gcp
// would write to ./var while the user expects the cloud stack.
func embeddedOnly(getenv func(string) string) error {
	if p := strings.TrimSpace(getenv("REFIT_PROFILE")); p != "" && p != profileEmbedded {
		return &settingError{"REFIT_PROFILE", fmt.Sprintf("%q: refit run is the embedded profile; use refit serve --target=all for the %s profile", p, p)}
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/schemas"
)

const setupHelp = `refit setup creates what the gcp profile needs (topics, subscriptions with
dead-letter policy, the bucket and its notification, the MongoDB indexes); it
is idempotent. With the embedded profile it creates the data directory.

Example:
  REFIT_PROFILE=gcp REFIT_GCP_PROJECT=my-project REFIT_BUCKET=my-bucket REFIT_MONGODB_URI=... refit setup`

func setupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("setup", setupHelp, stderr)
	profile := fs.String("profile", "", "embedded or gcp (env REFIT_PROFILE)")
	if _, err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := loadConfig(getenv, *profile, "all")
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	catalog, err := dataset.LoadCatalog(schemas.Files, "datasets", cfg.DatasetsDir)
	if err != nil {
		return err
	}
	st, err := openStack(ctx, cfg, catalog.Names(), logger)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.Profile == profileEmbedded {
		fmt.Fprintf(stdout, "embedded profile: data in %s, upload folders under %s/bucket/incoming/\n", cfg.DataDir, cfg.DataDir)
		return nil
	}
	err = setupGCP(ctx, cfg, st, func(created bool, what string) {
		verb := "found  "
		if created {
			verb = "created"
		}
		fmt.Fprintf(stdout, "%s %s\n", verb, what)
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "gcp profile ready")
	return nil
}

// Package deploy holds no code: it is where Refit's deployment files live
// (the container image, docker-compose, Kubernetes, Google Cloud bootstrap,
// Prometheus rules, the Grafana dashboard) and the tests that check them
// (go test ./deploy/...). See README.md.
package deploy

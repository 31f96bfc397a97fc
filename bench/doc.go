// Package bench measures Refit against the stack it replaces and against
// the machine's limit: a load generator with a latency histogram, request
// bodies from the housing generator, and helpers to start servers as
// separate, CPU-pinned processes. cmd/refitbench runs the suite behind
// `make bench`; BENCHMARKS.md holds the figures.
package bench

// Package pipeline holds the tests that drive the four workers together
// through a deterministic in-test bus: duplicated, reordered and lost
// events, and crashes between any two steps.
package pipeline

//go:build disable_grpc_modules

package testenv

// grpcModulesDisabled: the test binary was built with the Makefile's TAGS
// (cloud.google.com/go/storage's disable_grpc_modules).
const grpcModulesDisabled = true

//go:build !disable_grpc_modules

package testenv

const grpcModulesDisabled = false

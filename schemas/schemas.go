// Package schemas embeds Refit's contracts: the JSON Schemas of its events
// and the shipped dataset definitions.
package schemas

import "embed"

// Files holds events/*.json and datasets/*.json.
//
//go:embed events datasets
var Files embed.FS

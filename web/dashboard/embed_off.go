//go:build !dashboard

package dashboard

import "io/fs"

// assets is nil without the dashboard build tag: Handler serves the page saying how to build it.
func assets() fs.FS { return nil }

//go:build dashboard

package dashboard

import (
	"embed"
	"io/fs"
)

// dist is the Vite build output. The build tag keeps this file out of plain `go build`, which
// must work on a checkout where `npm run build` never ran (go:embed fails on a missing folder).
//
//go:embed all:dist
var dist embed.FS

func assets() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path; fs.Sub fails only on invalid ones
	}
	return sub
}

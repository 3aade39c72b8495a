// Package deploy holds no code: its tests check the deployment files in this directory (the Helm
// chart, the compose file, the systemd units, the Grafana dashboard and the alert rules) against
// the binaries they run. Every flag and environment variable the manifests pass to feed, ingest
// and tickctl must exist in them, and every metric the dashboard, the alerts and the autoscaler
// name must be exported by a running feed or ingest, so that renaming one fails here.
package deploy

// Package e2e holds end-to-end tests of the whole pipeline: synthetic source -> ingest ->
// embedded NATS JetStream -> feed -> pkg/client, with restarts of each process's components.
package e2e

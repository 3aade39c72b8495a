// Package replay moves stored history out of and into JetStream: it exports a window of
// stored events to a history file, imports a file back, and runs replay sessions that
// re-stream a window at a chosen speed on a session's core-NATS subjects (bus.PublishReplayEvent),
// where feed serves it to WebSocket clients over the same protocol as live data.
//
// Windows are in event time: an event's venue time, or its ingest time when the venue gave
// none (EventTime). JetStream can only start a consumer at a store time, so reading starts
// Slack before the window (store time is ingest time plus a little) and stops at the first
// event ingested more than Slack after the window's end, or at the end of what was stored when
// reading began (see Scan).
//
// A replay session is a pure core (cursor: stored events in, session events out) driven by a
// runner (Replayer) that reads, paces, publishes and answers control requests. In a session
// every instrument's events form one gapless chain per generation: epoch = the session's base
// epoch (start time in Unix seconds * 1000) + generation, seq from 1, beginning with the
// instrument's InstrumentInfo and a full book snapshot of its state at the window start (or
// seek target), rebuilt by applying stored events from Lookback before it to a market.State.
package replay

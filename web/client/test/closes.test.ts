// Every row of the shared disconnect table (proto/testdata/disconnects.json), against the
// client's classification and against what FeedClient does after such a close: the same table
// pkg/wire (Go's wire.Reconnectable) and docs/PROTOCOL.md §12 are tested against.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FeedClient } from "../src/client.js";
import { CloseCode, closeAction, handshakeAction, needsSignIn, reconnectable, type DisconnectAction } from "../src/closes.js";
import { CloseCode as GeneratedCloseCode } from "../src/gen/tickwire/v1/stream_pb.js";
import { FakeSocket, FakeTimers } from "./fakes.js";

interface Table {
  close_codes: { code: number; name: string; action: DisconnectAction; note?: string }[];
  handshake_statuses: { status: number; action: DisconnectAction }[];
}

const table = JSON.parse(readFileSync(new URL("../../../proto/testdata/disconnects.json", import.meta.url), "utf8")) as Table;

/** The CloseCode key for a table name ("CloseTokenExpired" -> "TokenExpired"). */
const constName = (name: string) => name.replace(/^Close/, "") as keyof typeof CloseCode;

describe("disconnects.json", () => {
  it("is not empty and knows only the three actions", () => {
    expect(table.close_codes.length).toBeGreaterThan(10);
    expect(table.handshake_statuses.length).toBeGreaterThan(5);
    for (const r of [...table.close_codes, ...table.handshake_statuses]) expect(["stop", "backoff", "fresh_token"]).toContain(r.action);
  });

  it("names every close code constant of the client, with the same value", () => {
    const named = new Map(table.close_codes.filter((r) => r.name).map((r) => [constName(r.name), r.code]));
    for (const [k, v] of Object.entries(CloseCode)) {
      if (k === "Abnormal") continue; // 1006: never sent, unnamed in the table
      expect(named.get(k as keyof typeof CloseCode), k).toBe(v);
    }
    for (const [k, v] of named) expect(CloseCode[k], k).toBe(v);
  });

  it("has a row for every value of the generated CloseCode enum (where a new code is added)", () => {
    const rows = new Set(table.close_codes.map((r) => r.code));
    const values = Object.values(GeneratedCloseCode).filter((v): v is number => typeof v === "number" && v !== 0);
    expect(values.length).toBe(16);
    for (const v of values) expect(rows.has(v), String(v)).toBe(true);
  });

  describe.each(table.close_codes)("close $code $name: $action", (row) => {
    it("closeAction, reconnectable and needsSignIn agree with the table", () => {
      expect(closeAction(row.code)).toBe(row.action);
      // As Go's wire.Reconnectable: "fresh_token" reconnects, with a fresh token.
      expect(reconnectable(row.code)).toBe(row.action !== "stop");
      // A fresh token is what a sign-in gives; 4501 (stop: no valid credentials) is fixed by
      // one too, so the dashboard asks its user to sign in after it as well.
      expect(needsSignIn(row.code)).toBe(row.action === "fresh_token" || row.code === CloseCode.Unauthorized);
    });

    it("FeedClient does what the table says after the feed closes with it", () => {
      for (const freshTokens of [false, true]) {
        const sockets: FakeSocket[] = [];
        const timers = new FakeTimers();
        const signIn: number[] = [];
        const client = new FeedClient(
          { url: "ws://feed/ws", newSocket: (u, p) => (sockets.push(new FakeSocket(u, p)), sockets.at(-1)!), timers, token: () => "tok", freshTokens },
          { onSignInNeeded: (code) => signIn.push(code) },
        );
        client.start();
        sockets[0]!.open();
        sockets[0]!.frame({ messages: [{ kind: { case: "heartbeat", value: {} } }] });
        sockets[0]!.drop(row.code, "bye");
        timers.advance(60_000);
        const reconnected = sockets.length > 1;
        const label = `freshTokens=${freshTokens}`;
        switch (row.action) {
          case "stop":
            expect(reconnected, label).toBe(false);
            expect(client.state, label).toBe("closed");
            break;
          case "backoff":
            expect(reconnected, label).toBe(true);
            expect(signIn, label).toEqual([]);
            break;
          case "fresh_token":
            // A token source that gives fresh tokens reconnects (and presents the new one); a
            // fixed token stops and asks for a sign-in.
            expect(reconnected, label).toBe(freshTokens);
            expect(signIn, label).toEqual(freshTokens ? [] : [row.code]);
            if (freshTokens) {
              sockets[1]!.open();
              expect(sockets[1]!.sent[0]!.command.case).toBe("authenticate");
            }
            break;
        }
        client.stop();
      }
    });
  });

  describe.each(table.handshake_statuses)("handshake HTTP $status: $action", (row) => {
    it("handshakeAction agrees, and FeedClient (with ws's error event) follows it", () => {
      expect(handshakeAction(row.status)).toBe(row.action);
      const sockets: FakeSocket[] = [];
      const timers = new FakeTimers();
      const client = new FeedClient({ url: "ws://feed/ws", newSocket: (u, p) => (sockets.push(new FakeSocket(u, p)), sockets.at(-1)!), timers });
      client.start();
      // What the ws package does on a refused upgrade: an error event, then a close without a frame.
      sockets[0]!.onerror?.({ message: `Unexpected server response: ${row.status}` });
      sockets[0]!.drop(1006);
      timers.advance(60_000);
      expect(sockets.length > 1).toBe(row.action !== "stop");
      expect(client.state).toBe(row.action === "stop" ? "closed" : "connecting");
      client.stop();
    });
  });
});

describe("a close the client initiated", () => {
  it("stop() closes with 1000 and never reconnects, whatever code the close event then carries", () => {
    for (const code of [1000, 1001, 1006, 4000]) {
      const sockets: FakeSocket[] = [];
      const timers = new FakeTimers();
      const states: string[] = [];
      const client = new FeedClient({ url: "ws://feed/ws", newSocket: (u, p) => (sockets.push(new FakeSocket(u, p)), sockets.at(-1)!), timers }, { onState: (s) => states.push(s) });
      client.start();
      sockets[0]!.open();
      client.stop();
      expect(sockets[0]!.closed).toBe(true);
      sockets[0]!.drop(code);
      timers.advance(60_000);
      expect(sockets.length).toBe(1);
      expect(client.state).toBe("closed");
      expect(states.at(-1)).toBe("closed");
      // And start() connects again.
      client.start();
      expect(sockets.length).toBe(2);
      client.stop();
    }
  });

  it("the heartbeat timeout closes the socket itself (4002) and reconnects with backoff", () => {
    const sockets: FakeSocket[] = [];
    const timers = new FakeTimers();
    const client = new FeedClient({ url: "ws://feed/ws", newSocket: (u, p) => (sockets.push(new FakeSocket(u, p)), sockets.at(-1)!), timers });
    client.start();
    sockets[0]!.open();
    timers.advance(16_000);
    expect(sockets[0]!.closed).toBe(true);
    timers.advance(10_000);
    expect(sockets.length).toBe(2);
    client.stop();
  });
});

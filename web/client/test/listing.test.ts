// ListInstruments.watch (PROTOCOL.md §6.3): instruments listed after the connection's list reach
// onInstrumentListed; without the option nothing changes (backward compatible).

import { describe, expect, it } from "vitest";
import { FeedClient, type ClientEvents } from "../src/client.js";
import { FakeSocket, FakeTimers } from "./fakes.js";

function setup(events: ClientEvents, watchInstruments?: boolean) {
  const sockets: FakeSocket[] = [];
  const timers = new FakeTimers();
  const client = new FeedClient(
    { url: "ws://feed/ws", newSocket: (u, p) => (sockets.push(new FakeSocket(u, p)), sockets.at(-1)!), timers, rand: () => 0, ...(watchInstruments === undefined ? {} : { watchInstruments }) },
    events,
  );
  client.start();
  sockets[0]!.open();
  return { client, timers, sockets, sock: () => sockets.at(-1)! };
}

const info = (id: string, status = 1) => ({ id, venue: id.split(":")[0]!, symbol: id.split(":")[1]!, priceScale: 2, status });
const list = (...ids: string[]) => ({ messages: [{ kind: { case: "instrumentList" as const, value: { requestId: 1, instruments: ids.map((i) => info(i)) } } }] });
const update = (handle: number, id: string, status = 1) => ({ messages: [{ kind: { case: "instrumentUpdate" as const, value: { handle, info: info(id, status) } } }] });
const listCommands = (s: FakeSocket) => s.sent.filter((m) => m.command.case === "listInstruments").map((m) => (m.command.case === "listInstruments" ? m.command.value.watch : undefined));

describe("ListInstruments.watch", () => {
  it("asks with watch on every connect, and hands later listings to onInstrumentListed once", () => {
    const listed: string[] = [];
    const changed: string[] = [];
    const { sock, timers, sockets } = setup({ onInstrumentListed: (i) => listed.push(i.id), onInstrument: (i) => changed.push(`${i.id} ${i.status}`) }, true);
    expect(listCommands(sock())).toEqual([true]);
    sock().frame(list("synthetic:ACME", "synthetic:BOLT"));
    sock().frame(update(7, "consolidated:ACME"));
    expect(listed).toEqual(["consolidated:ACME"]);
    // Its reference data changing later (a halt) is a change, not a second listing; as is a listed one's.
    sock().frame(update(7, "consolidated:ACME", 2));
    sock().frame(update(3, "synthetic:BOLT", 2));
    expect(listed).toEqual(["consolidated:ACME"]);
    expect(changed).toEqual(["consolidated:ACME 2", "synthetic:BOLT 2"]);
    // A new connection asks again with watch, and announces afresh.
    sock().drop(1006);
    timers.advance(10_000);
    expect(sockets.length).toBe(2);
    sock().open();
    expect(listCommands(sock())).toEqual([true]);
    sock().frame(update(1, "consolidated:BOLT"));
    expect(listed).toEqual(["consolidated:ACME", "consolidated:BOLT"]);
  });

  it("an update just before the list that has it too: announced once", () => {
    const listed: string[] = [];
    const lists: string[][] = [];
    const { sock } = setup({ onInstrumentListed: (i) => listed.push(i.id), onInstruments: (l) => lists.push(l.map((i) => i.id)) }, true);
    sock().frame(update(4, "consolidated:ACME"));
    sock().frame(list("consolidated:ACME", "synthetic:ACME"));
    sock().frame(update(4, "consolidated:ACME", 2));
    expect(listed).toEqual(["consolidated:ACME"]);
    expect(lists).toEqual([["consolidated:ACME", "synthetic:ACME"]]);
  });

  it("without the option: ListInstruments without watch, and updates of instruments not held are dropped as before", () => {
    const listed: string[] = [];
    const changed: string[] = [];
    const { client, sock } = setup({ onInstrumentListed: (i) => listed.push(i.id), onInstrument: (i) => changed.push(i.id) });
    client.listInstruments();
    expect(listCommands(sock())).toEqual([false, false]);
    sock().frame(list("synthetic:ACME"));
    sock().frame(update(9, "consolidated:ACME"));
    sock().frame(update(9, "synthetic:ACME"));
    expect(listed).toEqual([]);
    expect(changed).toEqual([]);
  });
});

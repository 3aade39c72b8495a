// The dashboard: wires the feed client, the store and the views, and paints once per frame.

import "./styles.css";
import { Channel } from "./gen/tickwire/v1/stream_pb";
import { FeedClient, type ClientEvents } from "./net/client";
import { Store } from "./app/store";
import { intervals, type Interval } from "./market/candles";
import { ChartView } from "./views/chart";
import { el } from "./views/dom";
import { HeaderView } from "./views/header";
import { LadderView } from "./views/ladder";
import { StatusView } from "./views/status";
import { TapeView } from "./views/tape";
import { WatchlistView } from "./views/watchlist";

/** The watchlist needs only best prices and session figures of every instrument. */
const listChannels = [Channel.QUOTE, Channel.STATS];
/** The focused instrument adds its book, trades and bars. */
const focusChannels = [Channel.BOOK, Channel.TRADES, Channel.CANDLES];
/** Requested book depth: the feed rounds it up to a depth it offers (50 by default). */
const bookDepth = 20;
const ladderLevels = 15;
const tapeRows = 40;
/**
 * The ladder and the tape repaint at most this often. Their 70 rows of figures cost the browser
 * more layout than everything else together, and no one reads a level that lasted less than
 * 50 ms: 20 paints a second keep them live without taking frames from the chart and the list.
 */
const bookPaintMs = 50;
/** Backlog bounds while the tab is hidden (no animation frames): beyond them, redraw instead. */
const maxPending = 10_000;

function feedURL(): string {
  const override = new URLSearchParams(location.search).get("feed");
  if (override) return override;
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

// The client is built first and reports to the store through this object, filled in below.
const events: ClientEvents = {};
const client = new FeedClient({ url: feedURL() }, events);
const store = new Store(client);
const watchlist = new WatchlistView(store);
const header = new HeaderView(store);
const chart = new ChartView();
const ladder = new LadderView(ladderLevels);
const tape = new TapeView(tapeRows);
const status = new StatusView(store);

Object.assign(events, {
  onState: (s, detail) => store.onState(s, detail),
  onInstruments: (list) => {
    const added = store.setInstruments(list);
    if (added.length > 0) client.subscribe(added, listChannels);
    if (!store.focus) {
      const want = decodeURIComponent(location.hash.slice(1));
      focus(store.rows.has(want) ? want : store.order[0]);
    }
  },
  onSubscribed: (id, m) => store.onSubscribed(id, m.info),
  onSnapshot: (id, ch, snap, sub, t) => store.onSnapshot(id, ch, snap, sub, t),
  onDelta: (id, ch, d, sub, t) => store.onDelta(id, ch, d, sub, t),
  onResync: (id, ch, why) => store.onResync(id, ch, why),
} satisfies ClientEvents);

function focus(id: string | undefined): void {
  if (!id || id === store.focus) return;
  const prev = store.focus;
  if (prev) client.unsubscribe([prev], focusChannels);
  store.setFocus(id);
  client.subscribe([id], focusChannels, bookDepth);
  tape.reset();
  header.resetFlash();
  history.replaceState(null, "", `#${encodeURIComponent(id)}`);
}

function setInterval_(iv: Interval): void {
  chart.setInterval(iv);
  store.chartReset = true;
  store.markersDirty = true;
}

watchlist.onFocus = focus;
chart.onInterval = setInterval_;

// Layout.
const app = document.getElementById("app")!;
app.append(
  el(
    "div",
    { class: "app" },
    el(
      "div",
      { class: "topbar" },
      el("span", { class: "logo" }, "tickwire"),
      el("span", { class: "muted hide-narrow" }, "live market data · exact prices · gaps shown"),
      el("span", { class: "keys muted hide-narrow" }, "↑↓ instrument · / search · 1–4 interval"),
    ),
    el(
      "main",
      { class: "grid" },
      watchlist.root,
      el("div", { class: "center" }, header.root, chart.root),
      el("div", { class: "right" }, ladder.root, tape.root),
    ),
    status.root,
  ),
);

// Keyboard: arrows move in the watchlist, / searches, 1-4 pick the chart interval.
document.addEventListener("keydown", (e) => {
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
  if (e.key === "/" && !typing) {
    e.preventDefault();
    watchlist.search.focus();
    watchlist.search.select();
    return;
  }
  if (typing || e.altKey || e.ctrlKey || e.metaKey) return;
  const moves: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10, j: 1, k: -1 };
  const m = moves[e.key];
  if (m !== undefined) {
    e.preventDefault();
    watchlist.move(m);
    return;
  }
  const iv = intervals[Number(e.key) - 1];
  if (iv && /^[1-4]$/.test(e.key)) setInterval_(iv);
});

// Painting: all state changes are already applied; draw what is dirty, once per frame.
let lastStatus = 0;
let lastBook = 0;
function frame(now: number): void {
  const wall = performance.timeOrigin + performance.now();
  for (const t of store.pendingIngestMs) store.toScreen.add(wall - t);
  store.pendingIngestMs.length = 0;

  if (store.listDirty) {
    store.listDirty = false;
    watchlist.paintList();
    for (const id of watchlist.visible) store.dirtyRows.add(id);
  }
  for (const id of store.dirtyRows) watchlist.paintRow(id);
  store.dirtyRows.clear();

  const sub = store.sub(store.focus);
  const row = store.focus ? store.rows.get(store.focus) : undefined;
  const rep = sub?.replica;
  if (store.chartReset) {
    store.chartReset = false;
    store.chartBars = [];
    chart.setInstrument(row?.info);
    chart.reset(rep?.candles ?? []);
    store.markersDirty = true;
  } else if (store.chartBars.length > 0) {
    chart.update(store.chartBars, rep?.candles ?? []);
    store.chartBars = [];
  }
  if (store.markersDirty) {
    store.markersDirty = false;
    chart.setMarkers(store.focus ? (store.markers.get(store.focus) ?? []) : []);
  }
  const bookDue = now - lastBook >= bookPaintMs;
  if (bookDue && (store.bookDirty || store.tapeDirty)) lastBook = now;
  if (store.bookDirty && bookDue) {
    store.bookDirty = false;
    ladder.paint(rep?.book.bids ?? [], rep?.book.asks ?? [], row?.info, rep?.depth ?? 0, !!rep?.synced(Channel.BOOK));
  }
  if (store.tapeDirty && bookDue) {
    store.tapeDirty = false;
    tape.paint(rep?.trades ?? [], row?.info);
  }
  if (store.headerDirty) {
    store.headerDirty = false;
    header.paint();
  }
  if (now - lastStatus > 250 || store.statusDirty) {
    store.statusDirty = false;
    lastStatus = now;
    status.paint(now);
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

// Hidden tabs get no frames: bound what waits for the next one.
setInterval(() => {
  if (store.pendingIngestMs.length > maxPending) store.pendingIngestMs.length = 0;
  if (store.chartBars.length > maxPending) store.chartReset = true;
  store.checkStale(Date.now());
  if (store.conn !== "connected") store.statusDirty = true;
}, 500);
setInterval(() => (store.listDirty ||= watchlist.filterMoves()), 1000);

client.start();

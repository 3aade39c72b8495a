// The dashboard: wires the feed client, the store and the views, and paints once per frame.

import "./styles.css";
performance.mark("tickwire:script");
import { Channel, ErrorCode } from "@tickwire/client";
import { FeedClient, type ClientEvents, type InstrumentInfo, type Timers } from "@tickwire/client";
import { Session, fetchToken, readGrant, refusesToken } from "./app/session";
import { fragmentFocus, nextFocus, splitFragment } from "./app/fragment";
import { Store } from "./app/store";
import { barsOf, intervals, type Interval } from "./market/candles";
import { HistoryError, fetchHistory, historyBars, historyWindow } from "./market/history";
import { formatUtc, visibleCandles } from "./market/replay";
import { ChartView } from "./views/chart";
import { el } from "./views/dom";
import { HeaderView } from "./views/header";
import { HelpView } from "./views/help";
import { LadderView } from "./views/ladder";
import { ReplayForm, ReplayView } from "./views/replay";
import { SessionView } from "./views/session";
import { StatusView } from "./views/status";
import { TabsView } from "./views/tabs";
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

/** A replay session to watch (/?replay=<session>), or null for the live market. */
const replayId = new URLSearchParams(location.search).get("replay");

function feedURL(): string {
  const override = new URLSearchParams(location.search).get("feed");
  const base = override ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  if (!replayId) return base;
  return `${base}${base.includes("?") ? "&" : "?"}replay=${encodeURIComponent(replayId)}`;
}

/**
 * The sign-in token (docs/PROTOCOL.md, "Authentication"). It is handed over once in the URL
 * fragment (#token=..., printed by `make run`; a browser never sends the fragment to a server),
 * then kept in session storage (this tab only, gone when it closes) and stripped from the
 * address bar so that it is neither bookmarked nor shared. Sent as the first command of every
 * connection, and as a Bearer header on /api requests. Fresh tokens (from the operator's token
 * endpoint, or pasted: app/session.ts) replace it there. Never logged.
 */
const tokenKey = "tickwire.token";
/** The token when session storage is disabled: this page's life only. */
let memToken: string | null = null;
function readToken(): string | null {
  try {
    return sessionStorage.getItem(tokenKey) ?? memToken;
  } catch {
    return memToken; // storage disabled
  }
}
function writeToken(token: string): void {
  memToken = token;
  try {
    sessionStorage.setItem(tokenKey, token);
  } catch {
    // storage disabled: kept in memory only
  }
}
{
  // The token may come first or after the instrument (#synthetic:ACME&token=...): app/fragment.ts.
  const f = splitFragment(location.hash);
  if (f.token !== null) {
    writeToken(f.token);
    history.replaceState(null, "", location.pathname + location.search + (f.rest ? `#${f.rest}` : ""));
  }
}
/** fetch with the token as a Bearer header (/api/candles). */
const authFetch: typeof fetch = (input, init) => {
  const token = readToken();
  if (!token) return fetch(input, init);
  const headers = new Headers(init?.headers);
  headers.set("authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
/** Who the feed says is signed in (subject, expiry in Unix ms), for the status bar and tests. */
const auth = { subject: "", expiresMs: 0, signedIn: false };

/**
 * The operator's token endpoint (feed --dashboard-token-url, put in the page as a meta tag;
 * docs/OPERATIONS.md): asked for a fresh token before this one expires. None: the page asks
 * its user to paste one.
 */
const tokenURL = document.querySelector<HTMLMetaElement>('meta[name="tickwire-token-url"]')?.content.trim() || undefined;
const timers: Timers = {
  now: () => Date.now(),
  setTimeout: (f, ms) => setTimeout(f, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

// The client is built first and reports to the store through this object, filled in below.
const events: ClientEvents = {};
// watchInstruments: instruments the feed lists later (a consolidated instrument starting a few
// seconds after the feed, a venue connecting) join the watchlist live, without a reload. Not in
// a replay: there the page lists again when the replay status names instruments it lacks
// (onReplayStatus), and focuses the fragment's instrument once the session has it.
const client = new FeedClient({ url: feedURL(), token: readToken, watchInstruments: !replayId }, events);
const store = new Store(client, { replay: !!replayId });
const session = new Session(
  {
    authenticate: (t) => client.authenticate(t),
    reconnect: () => {
      if (client.state === "closed") client.start();
    },
    store: writeToken,
    state: () => client.state,
  },
  timers,
  tokenURL ? () => fetchToken(new URL(tokenURL, location.href).href) : undefined,
);
const sessionView = new SessionView(session, client, tokenURL);
const watchlist = new WatchlistView(store);
const header = new HeaderView(store);
const chart = new ChartView();
const ladder = new LadderView(ladderLevels);
const tape = new TapeView(tapeRows);
const status = new StatusView(store);
const tabs = new TabsView(store);
/** The keyboard help (`?`, the top bar's "?" button): every shortcut the handler below takes. */
const help = new HelpView(intervals.map((iv) => iv.label));
const replay = replayId ? new ReplayView(store, replayId) : undefined;
/** On the live market: a form that opens a replay (POST /api/replays, else the tickctl command and the link). */
const replayForm = replayId
  ? undefined
  : new ReplayForm(location.origin, () => auth.subject, undefined, { fetch: (i, init) => fetch(i, init), token: readToken, navigate: (url) => location.assign(url) });
if (replay) {
  replay.onControl = (a) => client.replayControl(a);
  // For "watching only" (display only: the feed enforces): the signed-in subject, and whether
  // the token in use, if it is that subject's, grants replay_control.
  replay.viewer = () => {
    const g = readGrant(readToken());
    return { signedIn: auth.signedIn, subject: auth.subject, replayControl: !!g && g.subject === auth.subject && g.replayControl };
  };
}

/**
 * The way to the first useful paint (issue 12), in ms since navigation (performance.now()): the
 * script running, the connection open, the instrument list, the first quote on screen (the frame
 * that painted it). Also as performance marks "tickwire:*". Until the first quote the watchlist
 * says what the page waits for (index.html shows a loading state before this script runs).
 */
const boot = { scriptMs: performance.now(), connectedMs: 0, instrumentsMs: 0, firstQuoteMs: 0, listed: false };

// For the browser test and for anyone debugging in the console: counters and state, read-only.
(window as unknown as { __tickwire: unknown }).__tickwire = { client, store, chart, stats: client.stats, replay: replayId, auth, session, boot };

/** What the loading state says, and its phase (body[data-loading]); "" once data is on screen. */
function loadingPhase(): [phase: string, text: string] {
  if (boot.firstQuoteMs > 0) return ["", ""];
  if (client.state === "closed") return ["closed", store.connDetail ? `Not connected: ${store.connDetail}` : "Not connected"];
  if (client.state !== "connected") {
    const why = client.state === "disconnected" && store.connDetail ? ` (${store.connDetail})` : "";
    return ["connecting", `Connecting to the feed…${why}`];
  }
  if (!boot.listed) return ["instruments", readToken() ? "Signing in and loading instruments…" : "Loading instruments…"];
  if (store.order.length === 0) return ["instruments", "The feed lists no instruments for you yet…"];
  // Nothing of any instrument is served to this token: there is no quote to wait for.
  if (store.order.every((id) => store.rowDenied(id) || store.denied(id, Channel.QUOTE))) return ["", ""];
  return ["quotes", `Waiting for the first quotes of ${store.order.length} instruments…`];
}
function paintLoading(): void {
  const [phase, text] = loadingPhase();
  watchlist.setLoading(text);
  if (phase) document.body.dataset.loading = phase;
  else delete document.body.dataset.loading;
}

/**
 * A browser WebSocket that fails at the handshake only says 1006; the feed answers a replay
 * connection it cannot serve with an HTTP status (404 no such session, 400 malformed id, 501 no
 * replay support). Ask the same URL over plain HTTP to learn which, and say it plainly.
 */
let probing = false;
async function probeReplay(): Promise<void> {
  if (!replayId || probing) return;
  probing = true;
  try {
    const url = feedURL().replace(/^ws/, "http");
    const r = await fetch(url, { cache: "no-store" });
    const id = JSON.stringify(replayId);
    if (r.status === 404) {
      store.replayError = `No replay session ${id} on this feed (404). Start one with: tickctl replay --session ${replayId} --from -15m; retrying…`;
    } else if (r.status === 400) {
      store.replayError = `${id} is not a valid replay session id (400): lower-case letters, digits and dashes.`;
      client.stop();
    } else if (r.status === 501) {
      store.replayError = "This feed does not serve replay sessions (501).";
      client.stop();
    } else if (r.status === 503) {
      store.replayError = "The feed is not ready yet (503); retrying…";
    }
  } catch {
    // The feed itself is unreachable: the status bar already says so.
  } finally {
    probing = false;
    store.replayDirty = true;
  }
}

/**
 * Instruments listed: the connection's list, or one listed later (ListInstruments.watch). New
 * ones get a row and their quotes. The fragment's instrument is focused once it is listed
 * (a replay session may list it after others); until then the first in order.
 */
function addListed(list: InstrumentInfo[]): void {
  const added = store.setInstruments(list);
  if (added.length > 0) client.subscribe(added, listChannels);
  settleFocus();
}

/** The fragment's instrument until it is focused or the user picks another (app/fragment.ts, nextFocus). */
let wantedFocus = fragmentFocus(location.hash);

function settleFocus(): void {
  const next = nextFocus(store.focus, wantedFocus, (id) => store.rows.has(id), store.order[0]);
  wantedFocus = next.wanted;
  focus(next.focus);
}

Object.assign(events, {
  onState: (s, detail) => {
    store.onState(s, detail);
    if (s === "connected" && !boot.connectedMs) {
      boot.connectedMs = performance.now();
      performance.mark("tickwire:connected");
    }
    if (s === "disconnected" && !client.opened) void probeReplay();
    if (s === "connected" && chart.root.dataset.history === "error") loadHistory(true);
  },
  onInstruments: (list) => {
    if (!boot.listed) {
      boot.listed = true;
      boot.instrumentsMs = performance.now();
      performance.mark("tickwire:instruments");
    }
    addListed(list);
  },
  onSubscribed: (id, m, sub) => store.onSubscribed(id, m, sub),
  onInstrument: (info) => {
    store.setInstruments([info]);
    if (wantedFocus) settleFocus();
  },
  // Listed after this connection's list (ListInstruments.watch, live only): into the watchlist at once.
  onInstrumentListed: (info) => addListed([info]),
  onSnapshot: (id, ch, snap, sub, t) => store.onSnapshot(id, ch, snap, sub, t),
  onDelta: (id, ch, d, sub, t) => store.onDelta(id, ch, d, sub, t),
  onResync: (id, ch, why) => store.onResync(id, ch, why),
  onStreamStatus: (id, ch, _st, sub) => store.onStreamStatus(id, ch, sub),
  onReplayStatus: (st) => {
    if (store.replayStatus && st.generation !== store.replayStatus.generation) tape.reset(); // seqs restart
    store.onReplayStatus(st);
    // A session's instruments reach the feed with their first replayed events, possibly after
    // this connection listed them: ask again while the status names some the list lacked.
    if (client.state === "connected" && st.instruments.some((id) => !store.rows.has(id))) client.listInstruments();
    loadHistory(); // the first status gives the clock the history ends at; a seek moves it
  },
  onAuthenticated: (subject, expiresMs, requestId) => {
    auth.subject = subject;
    auth.expiresMs = expiresMs;
    auth.signedIn = true;
    store.replayDirty = true; // a new token may grant or drop the control of a replay
    session.authenticated(subject, expiresMs, requestId);
    if (!replayId) document.title = `Tickwire · ${subject || "anonymous"}`;
  },
  onNotEntitled: (id, chs) => {
    store.onNotEntitled(id);
    // Candles refused (no history to ask for), or served again (ask for it).
    if (id === store.focus && (chs.length === 0 || chs.includes(Channel.CANDLES))) loadHistory(true);
  },
  onSignInNeeded: (code, reason) => session.closed(code, reason),
  onReplayControlRefused: (e) => replay?.refused(e.message),
  onError: (e) => {
    if (e.code === ErrorCode.NOT_REPLAY && replayId) {
      store.replayError = `The replay session did not answer: ${e.message}`;
      store.replayDirty = true;
    }
    // A token we presented on the live connection (a refresh, a paste) was refused.
    if (refusesToken(e.code, e.instrument)) session.refused(e.requestId, e.message);
  },
} satisfies ClientEvents);

// Connect now, before the layout is put together and first painted (it used to be the last
// line): the handshake goes on meanwhile. Every event of the client arrives in a later task,
// after this module has run, so nothing below is missed.
client.start();

/**
 * Candle history of the focused instrument and interval from the feed's store (/api/candles),
 * up to the current bar by the store's clock (the replay clock in a replay), merged into the
 * chart. Asked again when the instrument, the interval or the replay's generation (a seek)
 * changes; a failure leaves the live bars and says why.
 */
let histCtl: AbortController | undefined;
let histKey = "";
function loadHistory(force = false): void {
  const id = store.focus;
  if (!id) return;
  const iv = chart.interval;
  if (store.replay && store.replayClockMs === 0) return; // the first status brings the clock
  const key = `${id}/${iv.seconds}/${store.replayStatus?.generation ?? 0}`;
  if (!force && key === histKey) return;
  histCtl?.abort();
  histCtl = undefined;
  histKey = key;
  chart.setHistory(undefined);
  store.chartReset = true;
  if (store.denied(id, Channel.CANDLES)) {
    chart.setHistoryState("none", "", "Your token does not cover candles");
    return; // /api/candles would be 403
  }
  const live = barsOf(store.sub(id)?.replica.candles ?? [], iv);
  // In a replay the 1 s bars before the clock are asked for too (the feed reads them from its
  // event store, at most 300); live, 1 s bars are live only.
  const w = historyWindow(iv, BigInt(Math.floor(store.nowMs() / 1000)), live, historyBars, store.replay);
  if (!w) {
    chart.setHistoryState("none", "", iv.note);
    return;
  }
  chart.setHistoryState("loading", "loading history…", `Asking the feed for up to ${historyBars} stored ${iv.label} bars`);
  const ctl = new AbortController();
  histCtl = ctl;
  fetchHistory(id, iv, w, ctl.signal, authFetch).then(
    (bars) => {
      if (histCtl !== ctl) return;
      chart.setHistory({ instrument: id, intervalS: iv.seconds, bars, cutoffS: w.cutoffS });
      const span = `${formatUtc(w.fromS * 1_000_000_000n, false)} → ${formatUtc(w.toS * 1_000_000_000n, false)}`;
      chart.setHistoryState("ok", `history: ${bars.length} bar${bars.length === 1 ? "" : "s"}`, `${bars.length} stored ${iv.label} bars for ${span}; newer bars are live`);
      store.chartReset = true;
    },
    (e: unknown) => {
      if (histCtl !== ctl || ctl.signal.aborted) return;
      const note = e instanceof HistoryError ? e.note : "history failed";
      chart.setHistoryState("error", note, `${note}. The chart shows the bars the feed keeps live.`);
    },
  );
}

function focus(id: string | undefined): void {
  if (!id || id === store.focus) return;
  const prev = store.focus;
  if (prev) client.unsubscribe([prev], focusChannels);
  store.setFocus(id);
  client.subscribe([id], focusChannels, bookDepth);
  tape.reset();
  header.resetFlash();
  history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  loadHistory();
}

function setInterval_(iv: Interval): void {
  chart.setInterval(iv);
  store.chartReset = true;
  store.markersDirty = true;
  loadHistory();
}

watchlist.onFocus = (id) => {
  wantedFocus = ""; // picked by hand: a wanted instrument listed later no longer takes the focus
  focus(id);
};
watchlist.onPick = () => tabs.picked();
header.onToggleHidden = (id) => watchlist.setHidden(id, !store.hidden.has(id));
chart.onInterval = setInterval_;

// Layout.
const app = document.getElementById("app")!;
if (replayId) document.title = `Replay ${replayId} · Tickwire`;
app.append(
  el(
    "div",
    { class: replay ? "app replay" : "app" },
    el(
      "div",
      { class: "topbar" },
      el("span", { class: "logo" }, "tickwire"),
      el("span", { class: "muted hide-narrow" }, replay ? "replay of stored market data · not live · exact prices" : "live market data · exact prices · gaps shown"),
      el("span", { class: "keys muted hide-narrow" }, "↑↓ instrument · / search · 1–6 interval · ? help"),
      ...(replayForm ? [replayForm.root] : []),
      sessionView.who,
      help.button,
    ),
    sessionView.banner,
    ...(replay ? [replay.root] : []),
    tabs.root,
    el(
      "main",
      { class: "grid" },
      watchlist.root,
      el("div", { class: "center" }, header.root, chart.root),
      el("div", { class: "right" }, ladder.root, tape.root),
    ),
    status.root,
  ),
  sessionView.signin,
  help.root,
  ...(replayForm ? [replayForm.panel] : []),
);
// The dashboard replaces index.html's loading state in the same task (no blank frame between):
// from here its watchlist says what the page waits for, until the first quote.
document.getElementById("boot")?.remove();
paintLoading();

// The help overlay (views/help.ts) first (capture phase): while it is open no key reaches the
// page behind it (Esc closes it); `?` opens it from anywhere but a text field.
document.addEventListener(
  "keydown",
  (e) => {
    if (help.onKey(e)) {
      e.stopPropagation();
      return;
    }
    const t = e.target;
    const typing = t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement;
    if (typing || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "?") {
      e.preventDefault();
      e.stopPropagation();
      help.open();
      return;
    }
    // x or Delete hides the focused instrument from the watchlist (or restores a hidden one).
    if (e.key === "x" || e.key === "Delete") {
      e.preventDefault();
      e.stopPropagation();
      watchlist.toggleHiddenFocused();
    }
  },
  true,
);

// Keyboard: arrows move in the watchlist, / searches, 1-6 pick the chart interval (1s 1m 5m 1h 4h 1D).
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
  if (iv && /^[1-6]$/.test(e.key)) setInterval_(iv);
});

// Painting: all state changes are already applied; draw what is dirty, once per frame.
let lastStatus = 0;
let lastBook = 0;
function frame(now: number): void {
  const wall = performance.timeOrigin + performance.now();
  for (const t of store.pendingIngestMs) store.toScreen.add(wall - t);
  store.pendingIngestMs.length = 0;

  const sub = store.sub(store.focus);
  const row = store.focus ? store.rows.get(store.focus) : undefined;
  const rep = sub?.replica;
  // In a replay, nothing later than the replay clock (a seek back leaves the old run's later
  // trades and bars in the feed's snapshots: see visibleTrades).
  const clockNs = BigInt(Math.floor(store.replayClockMs)) * 1_000_000n;
  // The tape first: its newest live trade is "last" for the header, the watchlist row and the
  // chart's label (Store.last), all painted below in this same frame, so no two of them ever
  // show different lasts (issue 12).
  const bookDue = now - lastBook >= bookPaintMs;
  if (bookDue && (store.bookDirty || store.tapeDirty)) lastBook = now;
  if (store.tapeDirty && bookDue) {
    store.tapeDirty = false;
    const trades = store.tapeTrades();
    tape.paint(trades, row?.info, !!sub?.denied(Channel.TRADES));
    store.onTapePainted(trades);
  }

  if (store.listDirty) {
    store.listDirty = false;
    watchlist.paintList();
    for (const id of watchlist.visible) store.dirtyRows.add(id);
  }
  for (const id of store.dirtyRows) watchlist.paintRow(id);
  store.dirtyRows.clear();
  if (!boot.firstQuoteMs) {
    if (watchlist.quoted) {
      boot.firstQuoteMs = performance.now();
      performance.mark("tickwire:first-quote");
    }
    paintLoading();
  }

  const candlesDenied = store.denied(store.focus, Channel.CANDLES);
  const candles = rep && !candlesDenied ? (store.replay ? visibleCandles(rep.candles, clockNs) : rep.candles) : [];
  if (store.chartReset) {
    store.chartReset = false;
    store.chartBars = [];
    chart.setInstrument(row?.info);
    chart.setDenied(candlesDenied ? "candles: not entitled" : "");
    chart.reset(candles);
    store.markersDirty = true;
  } else if (store.chartBars.length > 0) {
    chart.update(store.chartBars, candles);
    store.chartBars = [];
  }
  if (store.markersDirty) {
    store.markersDirty = false;
    chart.setMarkers(store.focus ? (store.markers.get(store.focus) ?? []) : []);
  }
  chart.setLast(store.last(store.focus));
  if (store.bookDirty && bookDue) {
    store.bookDirty = false;
    ladder.paint(rep?.book.bids ?? [], rep?.book.asks ?? [], row?.info, rep?.depth ?? 0, !!sub?.inSync(Channel.BOOK), !!sub?.denied(Channel.BOOK), sub?.awaiting.get(Channel.BOOK));
  }
  if (store.headerDirty) {
    store.headerDirty = false;
    header.paint();
  }
  if (replay && store.replayDirty) {
    store.replayDirty = false;
    replay.paint();
  }
  if (now - lastStatus > 250 || store.statusDirty) {
    store.statusDirty = false;
    lastStatus = now;
    status.paint(now);
    sessionView.paint(Date.now());
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

// Hidden tabs get no frames: bound what waits for the next one.
setInterval(() => {
  if (store.pendingIngestMs.length > maxPending) store.pendingIngestMs.length = 0;
  if (store.chartBars.length > maxPending) store.chartReset = true;
  store.checkStale();
  if (store.conn !== "connected") store.statusDirty = true;
}, 500);
setInterval(() => (store.listDirty ||= watchlist.filterMoves()), 1000);


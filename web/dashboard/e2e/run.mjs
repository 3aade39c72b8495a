// Browser test of the dashboard against the real system, on loopback only.
//
// Starts bin/feed (built with -tags dashboard, so it serves the embedded UI) with an embedded
// NATS server on a temporary store and random free ports, bin/ingest with the synthetic market
// on two venues (synthetic: 20 tickers; synthetic-b: ACME and BOLT) and a second bin/ingest
// (--source consolidated, NATS user consolidator) merging synthetic:ACME and synthetic-b:ACME into
// consolidated:ACME; opens the dashboard in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core) and checks what a trader would see: the watchlist fills, prices move, the
// chart has candles, the header, the tape, the watchlist and the chart's label show one last price
// on every sample, the book has both sides and never crosses, the keyboard works; then stops
// ingest and the feed (SIGTERM to their PIDs), checks the page says so, starts the feed again on
// the same store and checks the page resumes every stream from its position on its own (no
// snapshot, no gap marker), then ingest again and prices move. The 5m chart backfills from
// /api/candles. A replay session is opened from the live page's Replay… form (its POST answered
// 501 here, the form gives the tickctl replay command, which the test runs, and the link) and
// watched at /?replay=<session>:
// banner, moving replay clock, watchlist, speed (the replayer's clock rate follows it), seek
// (book, quotes, tape and chart rebuilt at the new clock, no row STALE meanwhile), pause and
// resume; a page opened fresh on the finished session shows the same book and quotes as the
// page that played it through; a watcher whose token may not control it sees "watching only"
// and the feed's refusal; an unknown session says so. The feed runs with --replay-start: the
// form's Go starts a session of the last minute at 10x in the feed and the page lands on it
// (banner running or finished, the book, the opener its controller); a token without
// replay_control gets the feed's 403 in the form, and the page stays live.
// Authentication is on, as in `make run`: the feed verifies tokens with an HS256 key made for
// the run, and every tab signs in with a token minted by bin/tickctl token, handed over in the
// URL fragment (#token=...), which the dashboard keeps in session storage and strips.
// Entitlements and refresh: the feed runs with --dashboard-token-url pointing at a token
// endpoint served here (it mints with bin/tickctl token for the subject named by a cookie, as an
// identity provider's session would). A tab signed in with a 16 s token for three instruments
// and no book says "book: not entitled", stays on its first connection past that token's exp
// (refreshed in band from the endpoint, the shown expiry moves), and the refresh's narrower
// grant turns the dropped instrument's row into NOT ENTITLED. A tab with a 10 s token whose
// endpoint refuses shows the expiry banner, then the sign-in form (no reconnect loop), and
// signs in again with a pasted token.
// Loading (issue 12): every frame from the first until the first quote shows a loading state,
// and the times from navigation to it and to the first quote are printed. At 1024x768 the
// watchlist and the book lie within the viewport, nothing cut off sideways. On a phone (390x844)
// the tab bar reaches the watchlist, a tap on a row switches the instrument and opens its chart,
// and the top bar, the tabs, the panel, the rows and the status bar never overlap or cover one
// another, whole and inside the viewport, also after scrolling; at 360x740, 768x1024, 1440x900
// and 2560x1440 the page does not scroll and nothing is cut off. The watchlist sorts by a click
// on a column's header, says so when a search matches nothing, keeps a starred favourite first
// across reloads (localStorage), shows a Venue column with several venues listed; the tape
// and the chart say their time zones. The consolidated instrument, selected in its own tab: its
// row says venue "consolidated", the header lists its members, every level of the ladder carries
// venue tags naming members (both across the levels in view, never "?"), its book stays in sync
// (checksums and hashes over the venues verified), nothing is cut off at 1440, 1024, 1920, 390 px.
// A StreamStatus AWAITING_SNAPSHOT sent into a proxied socket marks the ladder and the row until
// a snapshot.
// Screenshots go to test-artifacts/dashboard/.
//
// Every process it starts is killed by PID on the way out, whatever happened.
//
// Usage (from the repository root, after `make feed-ui build`): node web/dashboard/e2e/run.mjs
// Env: CHROMIUM (default /usr/bin/chromium), E2E_KEEP=1 keeps the temporary store.

import { execFileSync, spawn } from "node:child_process";
import { execFile } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const artifacts = join(root, "test-artifacts/dashboard");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
/**
 * The whole run must end well within CI's browser stage budget (~3 min). It takes about 90 s on
 * a busy 2-core machine (the sign-in checks wait ~15 s for a short token to run out), and has
 * taken 130 s when the machine was very busy.
 */
const overallTimeoutMs = 420_000; // a bound for a loaded CI machine (about 240 s there, 160 s on a quiet one); the replay check (about 65 s) plays a 42 s window through and opens a fresh page on it (issue 12)
const t0 = Date.now();

mkdirSync(artifacts, { recursive: true });
const tmp = mkdtempSync(join(tmpdir(), "tickwire-e2e-"));
const procs = new Map(); // name -> ChildProcess
let ctx; // browser context
const results = [];

function log(...a) {
  console.log(`[e2e ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
}

async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function start(name, bin, args) {
  const out = createWriteStream(join(artifacts, `${name}.log`), { flags: "a" });
  out.write(`\n--- ${new Date().toISOString()} ${bin} ${args.join(" ")}\n`);
  const p = spawn(join(root, bin), args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  p.text = "";
  p.stdout.on("data", (d) => (p.text += d));
  p.stdout.pipe(out, { end: false });
  p.stderr.pipe(out, { end: false });
  p.exited = new Promise((res) => p.on("exit", (code, sig) => res({ code, sig })));
  p.on("error", (e) => log(`${name}: ${e.message}`));
  procs.set(name, p);
  log(`started ${name} pid ${p.pid}`);
  return p;
}

/** SIGTERM by PID, SIGKILL after a grace period; resolves when the process is gone. */
async function stop(name, graceMs = 8000) {
  const p = procs.get(name);
  if (!p || p.exitCode !== null || p.signalCode !== null) {
    procs.delete(name);
    return;
  }
  process.kill(p.pid, "SIGTERM");
  const timer = setTimeout(() => {
    log(`${name} pid ${p.pid} did not stop in ${graceMs} ms: SIGKILL`);
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {}
  }, graceMs);
  await p.exited;
  clearTimeout(timer);
  procs.delete(name);
  log(`stopped ${name} pid ${p.pid}`);
}

let tokenServer; // the token endpoint (node:http), closed on the way out

async function cleanup() {
  if (ctx) await ctx.close().catch(() => {});
  ctx = undefined;
  tokenServer?.close();
  tokenServer = undefined;
  // ingest and tickctl first: with the feed (and its embedded NATS) gone, they would wait.
  const rank = (n) => (n === "feed" ? 1 : 0);
  const names = [...procs.keys()].sort((a, b) => rank(a) - rank(b));
  for (const name of names) await stop(name, 5000).catch(() => {});
  if (!process.env.E2E_KEEP) rmSync(tmp, { recursive: true, force: true });
}

async function waitFor(what, f, timeoutMs, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function check(name, f) {
  const started = Date.now();
  try {
    await f();
    results.push({ name, ok: true });
    log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push({ name, ok: false, err: e });
    log(`FAIL ${name}: ${e.stack ?? e}`);
    throw e;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A JWT's exp claim in Unix ms (read, not verified). */
function expMs(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).exp * 1000;
}

/** A protobuf varint. */
function varint(n) {
  const out = [];
  for (; n > 0x7f; n >>>= 7) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
}

/**
 * A ServerFrame (tickwire.v1, binary) holding one ServerMessage.stream_status (field 13):
 * StreamStatus{handle 1, channel 2, state 3 = AWAITING_SNAPSHOT, reason 4}, as the feed sends it.
 */
function serverFrameStreamStatus(handle, channel, reason) {
  const r = [...Buffer.from(reason, "utf8")];
  const st = [0x08, ...varint(handle), 0x10, ...varint(channel), 0x18, 0x01, 0x22, ...varint(r.length), ...r];
  const msg = [(13 << 3) | 2, ...varint(st.length), ...st];
  return Buffer.from([0x0a, ...varint(msg.length), ...msg]);
}

/** Decimal strings at one scale compare as the integers of their digits. */
function mantissa(s) {
  return BigInt(s.replace(".", "").replace(/^(-?)0+(?=\d)/, "$1"));
}

async function main() {
  const httpPort = await freePort();
  const natsPort = await freePort();
  const adminPort = await freePort();
  const base = `http://127.0.0.1:${httpPort}`;
  // NATS refuses anonymous clients: the feed writes its users' passwords here, the others read them.
  const natsAuth = ["--nats-auth-dir", join(tmp, "nats-auth")];
  // Tokens: a key for this run, and a development token with every right (replay and its
  // control too: since c7784fe a watcher's ReplayControl needs replay_control, as make run's token has).
  const keyFile = join(tmp, "feed-hs256.key");
  const token = execFileSync(join(root, "bin/tickctl"), ["token", "--key-file", keyFile, "--new-key", "--sub", "e2e",
    "--instruments", "*", "--replay-control", "--ttl", "1h"], { encoding: "utf8" }).trim();
  // The fragment also names the instrument a fresh page focuses (main.ts: "#token=...&<id>"): the
  // first in the feed's order (by id) is now consolidated:ACME, then synthetic-b:..., whose book
  // may cross (two venues' books merged) and whose symbols repeat synthetic:'s. The checks below
  // were written for synthetic:ACME focused first, as before the second venue.
  const firstFocus = "synthetic:ACME";
  const signIn = `#token=${token}&${encodeURIComponent(firstFocus)}`;
  const mint = (args) =>
    new Promise((res, rej) =>
      execFile(join(root, "bin/tickctl"), ["token", "--key-file", keyFile, ...args], { encoding: "utf8" }, (e, out) => (e ? rej(e) : res(out.trim()))),
    );
  const minted = [token]; // none of them may show up in a log

  // The token endpoint: an identity provider's stand-in. It answers GET with a fresh token for
  // the subject its session cookie names, granting what endpointGrant says for it, and allows
  // the dashboard's origin with credentials (CORS); no cookie, 401.
  const tokenPort = await freePort();
  const tokenURL = `http://127.0.0.1:${tokenPort}/token`;
  const endpointGrant = {}; // subject -> tickctl token flags
  const endpointCalls = [];
  tokenServer = createHttpServer(async (req, res) => {
    res.setHeader("access-control-allow-origin", base);
    res.setHeader("access-control-allow-credentials", "true");
    res.setHeader("vary", "origin");
    res.setHeader("cache-control", "no-store");
    const sub = /(?:^|;\s*)e2e_idp=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
    endpointCalls.push({ sub, origin: req.headers.origin });
    if (req.method !== "GET" || !sub || !endpointGrant[sub]) {
      res.writeHead(401, { "content-type": "text/plain" }).end("no session\n");
      return;
    }
    try {
      const t = await mint(["--sub", sub, ...endpointGrant[sub]]);
      minted.push(t);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: t }));
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  });
  await new Promise((r) => tokenServer.listen(tokenPort, "127.0.0.1", r));

  const feedArgs = [
    "--auth-hs256-key-file", keyFile,
    "--dashboard-token-url", tokenURL,
    "--listen", `127.0.0.1:${httpPort}`,
    "--admin-listen", `127.0.0.1:${adminPort}`,
    "--embed-nats", "--nats-listen", `127.0.0.1:${natsPort}`,
    "--nats-data-dir", join(tmp, "nats"),
    ...natsAuth,
    // POST /api/replays: the dashboard's Replay… form starts sessions in the feed (as make run).
    "--replay-start",
  ];
  // Ready means caught up with the event stream, which ingest creates: wait for health only.
  const startFeed = async () => {
    start("feed", "bin/feed", feedArgs);
    await waitFor("feed /healthz", async () => (await fetch(`${base}/healthz`)).ok, 30_000);
  };
  await startFeed();
  // The synthetic market on two venues: synthetic lists the 20 tickers, synthetic-b the first
  // two (ACME, BOLT) around the same fair values; a second ingest (NATS user consolidator) reads
  // synthetic:ACME's and synthetic-b:ACME's events back from NATS and publishes consolidated:ACME
  // (InstrumentInfo.members, Level.venues). 23 instruments in all.
  const consolidatedId = "consolidated:ACME";
  const consolidatedMembers = ["synthetic:ACME", "synthetic-b:ACME"];
  const startIngest = () => {
    start("ingest", "bin/ingest", [
      "--nats-url", `nats://127.0.0.1:${natsPort}`,
      ...natsAuth,
      "--source", "synthetic",
      "--synthetic-instruments", "20",
      "--synthetic-venues", "synthetic,synthetic-b",
      "--synthetic-cross-listed", "2",
      "--synthetic-rate", "1000",
      "--metrics-listen=",
    ]);
    start("consolidated", "bin/ingest", [
      "--nats-url", `nats://127.0.0.1:${natsPort}`,
      ...natsAuth,
      "--nats-user", "consolidator",
      "--source", "consolidated",
      "--consolidate", `${consolidatedId}=${consolidatedMembers.join(",")}`,
      "--metrics-listen=",
    ]);
  };
  // Both ingests stop before the feed (cleanup stops every process but the feed first, too), the
  // consolidated one first: it reads its members from the feed's NATS.
  const stopIngest = async () => {
    await stop("consolidated");
    await stop("ingest");
  };
  startIngest();

  await waitFor("feed /readyz", async () => (await fetch(`${base}/readyz`)).ok, 30_000);
  // A page learns the instruments listed when it connects: wait for the consolidated one (it
  // starts once its members' reference data has come, within 5 s) before any page opens.
  const listedIds = async () => {
    const r = await fetch(`${base}/api/instruments`, { headers: { authorization: `Bearer ${token}` } });
    return r.ok ? ((await r.json()).instruments ?? []).map((i) => i.id) : [];
  };
  const listed = await waitFor(`${consolidatedId} and its members listed by the feed`, async () => {
    const l = await listedIds();
    return [consolidatedId, ...consolidatedMembers, "synthetic:TIDE", "synthetic-b:BOLT"].every((id) => l.includes(id)) ? l : null;
  }, 30_000);
  log(`${listed.length} instruments listed: ${listed.filter((id) => !id.startsWith("synthetic:")).join(", ")} and synthetic:*`);

  await check("metrics on the admin listener only", async () => {
    const pub = await fetch(`${base}/metrics`);
    if (pub.status !== 404) throw new Error(`public /metrics gave ${pub.status}`);
    const adm = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
    const text = await adm.text();
    if (!adm.ok || !text.includes("tickwire_bus_consumed_total")) throw new Error(`admin /metrics gave ${adm.status}: ${text.slice(0, 200)}`);
  });

  await check("feed serves the embedded dashboard", async () => {
    const r = await fetch(`${base}/`);
    const html = await r.text();
    if (!r.ok || !html.includes('<div id="app">')) throw new Error(`GET / gave ${r.status}: ${html.slice(0, 200)}`);
    if (!html.includes(`<meta name="tickwire-token-url" content="${tokenURL}" />`)) throw new Error(`no token URL meta tag in the page: ${html.slice(0, 600)}`);
    const asset = html.match(/\/assets\/[^"]+\.js/)?.[0];
    const a = await fetch(base + asset);
    if (a.headers.get("cache-control") !== "public, max-age=31536000, immutable") {
      throw new Error(`asset ${asset} cache-control ${a.headers.get("cache-control")}`);
    }
    if (!a.headers.get("content-type")?.startsWith("text/javascript")) throw new Error(`asset content-type ${a.headers.get("content-type")}`);
  });

  await check("authentication is on: /api refuses no token and a bad one, serves a good one", async () => {
    const none = await fetch(`${base}/api/instruments`);
    const bad = await fetch(`${base}/api/instruments`, { headers: { authorization: "Bearer garbage" } });
    const good = await fetch(`${base}/api/instruments`, { headers: { authorization: `Bearer ${token}` } });
    const body = await bad.text();
    if (none.status !== 401 || bad.status !== 401 || !body.includes("malformed") || good.status !== 200) {
      throw new Error(`no token ${none.status}, bad ${bad.status} (${body.trim()}), good ${good.status}`);
    }
  });

  ctx = await chromium.launchPersistentContext(join(tmp, "chromium-profile"), {
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1440, height: 900 },
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(`console: ${m.text()} (${m.location()?.url ?? ""})`);
  });
  // Nothing leaves loopback: abort any request to another host.
  await page.route((url) => !["127.0.0.1", "localhost"].includes(url.hostname), (r) => r.abort());
  // Issue 12, item 4: what is on screen from navigation to the first quote. Before any script of
  // the page runs, sample every rendered frame (a task posted from requestAnimationFrame runs
  // after that frame's rendering, so it sees what was painted): whether a loading state
  // (.loading-state: index.html's, then the watchlist's) or a quote in the watchlist is shown.
  await page.addInitScript(() => {
    const log = (window.__paintLog = { frames: 0, first: null, loadingAt: null, quoteAt: null, blank: [] });
    const loading = () => [...document.querySelectorAll(".loading-state")].some((e) => !e.hidden && e.getClientRects().length > 0 && e.textContent.trim() !== "");
    const quote = () => [...document.querySelectorAll(".wl tbody tr")].some((r) => /\d/.test(["last", "bid", "ask"].map((c) => r.querySelector(`.${c}`)?.textContent ?? "").join("")));
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      if (log.quoteAt !== null || !document.body || document.body.children.length === 0) return;
      const t = performance.now();
      const l = loading();
      const q = quote();
      log.frames++;
      log.first ??= { t, loading: l, quote: q };
      if (l) log.loadingAt ??= t;
      if (q) log.quoteAt = t;
      else if (!l) log.blank.push(t);
    };
    const tick = () => {
      ch.port2.postMessage(0);
      if (log.quoteAt === null) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  await page.goto(`${base}/${signIn}`);

  await check("a loading state from the first frame until the first quote; first paint timed (issue 12, item 4)", async () => {
    const pl = await waitFor("the first quote in the watchlist", () => page.evaluate(() => (window.__paintLog.quoteAt !== null ? window.__paintLog : null)), 30_000, 100);
    const fcp = await page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? -1);
    const b = await page.evaluate(() => window.__tickwire.boot);
    const ms = (x) => `${Math.round(x)} ms`;
    log(`first paint: loading state on screen ${ms(pl.loadingAt)} after navigation (first contentful paint ${ms(fcp)}), first quote in the watchlist ${ms(pl.quoteAt)} ` +
      `(page: script ${ms(b.scriptMs)}, connected ${ms(b.connectedMs)}, instruments ${ms(b.instrumentsMs)}, quote painted ${ms(b.firstQuoteMs)}; ${pl.frames} frames sampled)`);
    // Order and presence, not a time limit: the figures depend on the machine's load.
    if (!pl.first.loading || pl.first.quote) throw new Error(`the first frame did not show the loading state: ${JSON.stringify(pl.first)}`);
    if (!(pl.loadingAt < pl.quoteAt)) throw new Error(`loading state at ${pl.loadingAt}, first quote at ${pl.quoteAt}`);
    if (pl.blank.length > 0) throw new Error(`${pl.blank.length} frames with neither a loading state nor a quote, the first at ${ms(pl.blank[0])}`);
    // And it goes once data is on screen.
    await waitFor("the loading state gone", async () => (await page.getAttribute("body", "data-loading")) === null && !(await page.isVisible(".wl-loading")), 5000);
  });

  await check("the dashboard signs in with the token from the URL fragment and strips it from the address bar", async () => {
    await waitFor("Authenticated", async () => (await page.evaluate(() => window.__tickwire.auth.subject)) === "e2e", 15_000);
    const url = page.url();
    if (url.includes("token")) throw new Error(`the token is still in the address bar: ${url.slice(0, 80)}`);
    const kept = await page.evaluate(() => sessionStorage.getItem("tickwire.token"));
    if (kept !== token) throw new Error("the token is not in session storage");
  });

  const lasts = () =>
    page.$$eval(".wl tbody tr", (rows) => Object.fromEntries(rows.map((r) => [r.dataset.id, [r.querySelector(".last")?.textContent, r.querySelector(".bid")?.textContent, r.querySelector(".ask")?.textContent].join(" ")])));

  await check("the watchlist fills with at least 10 instruments with prices", async () => {
    await waitFor("10 rows with a bid", async () => {
      const m = await lasts();
      return Object.values(m).filter((v) => /\d/.test(v)).length >= 10;
    }, 30_000);
  });

  // Two more tabs whose tokens run out within the next 20 s (see the top of this file).
  const ids = await page.evaluate(() => window.__tickwire.store.order);
  // The first three of the synthetic venue (synthetic:ACME, BOLT, CORA), as before the second venue.
  const [idA, idB, idC] = ids.filter((id) => id.startsWith("synthetic:"));
  const limitedFlags = ["--channels", "quote,stats,trades,candles"];
  const limTok = await mint(["--sub", "e2e-lim", "--instruments", [idA, idB, idC].join(","), ...limitedFlags, "--ttl", "16s"]);
  const shortTok = await mint(["--sub", "e2e-short", "--instruments", [idA, idB].join(","), "--ttl", "10s"]);
  minted.push(limTok, shortTok);
  endpointGrant["e2e-lim"] = ["--instruments", [idA, idB].join(","), ...limitedFlags, "--ttl", "1h"]; // the refresh drops idC
  await ctx.addCookies([{ name: "e2e_idp", value: "e2e-lim", domain: "127.0.0.1", path: "/" }]);
  const p5 = await ctx.newPage();
  p5.on("pageerror", (e) => pageErrors.push(`limited tab: ${e.message}`));
  p5.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(`limited tab console: ${m.text()}`);
  });
  await p5.goto(`${base}/#token=${limTok}`);
  // The short tab's session at the identity provider is gone: its endpoint answers 401.
  const p6 = await ctx.newPage();
  p6.on("pageerror", (e) => pageErrors.push(`short tab: ${e.message}`));
  await p6.route(tokenURL, (r) => r.fulfill({ status: 401, body: "signed out", headers: { "access-control-allow-origin": base, "access-control-allow-credentials": "true" } }));
  await p6.goto(`${base}/#token=${shortTok}`);
  const tw = (p, f) => p.evaluate(f);

  await check("a token for 3 instruments without the book: only those are listed, the book panel says 'book: not entitled', trades and candles flow", async () => {
    await waitFor("the limited tab signed in", async () => (await p5.getAttribute(".who", "data-subject")) === "e2e-lim", 15_000);
    await waitFor("3 rows with prices", async () => {
      const rows = await p5.$$eval(".wl tbody tr", (rs) => rs.map((r) => [r.dataset.id, /\d/.test(r.querySelector(".bid")?.textContent ?? "")]));
      return rows.length === 3 && rows.every(([, priced]) => priced);
    }, 15_000);
    const listed = await p5.$$eval(".wl tbody tr", (rs) => rs.map((r) => r.dataset.id).sort());
    if (listed.join() !== [idA, idB, idC].sort().join()) throw new Error(`listed ${listed}, want ${[idA, idB, idC]}`);
    await waitFor("'book: not entitled' on the ladder", async () => (await p5.textContent(".ladder .panel-note")) === "book: not entitled", 10_000);
    if (await p5.$(".ladder.unsynced")) throw new Error("the refused book is shown as waiting for a sync");
    const who = await waitFor("who is signed in, until when, and the refused channel in the top bar", async () => {
      const t = await p5.textContent(".who");
      return /e2e-lim/.test(t) && /not entitled: book/.test(t) && /token expires \d\d:\d\d:\d\d/.test(t) ? t : null;
    }, 5000);
    log(`limited tab top bar: "${who}"`);
    await waitFor("bars on the chart", async () => Number(await p5.getAttribute(".chart", "data-bars")) > 0, 15_000);
    await waitFor("trades on the tape", async () => ((await p5.textContent(".tape .trade:not(.head) .price")) ?? "") !== "", 15_000);
    if ((await p5.textContent(".tape .panel-note")) !== "") throw new Error("trades said not entitled");
    await p5.screenshot({ path: join(artifacts, "11-not-entitled-book.png") });
  });

  await check("the 16 s token is refreshed in band from the token endpoint: same connection past its exp, the expiry moves, the narrower grant says NOT ENTITLED", async () => {
    const exp1 = expMs(limTok);
    const shown1 = Number(await p5.getAttribute(".who", "data-expires-ms"));
    if (Math.abs(shown1 - exp1) > 1000 && shown1 < exp1) throw new Error(`shown expiry ${shown1}, token exp ${exp1}`);
    await waitFor("the first token's exp to pass", async () => Date.now() > exp1 + 1500, 30_000, 250);
    const st = await tw(p5, () => ({ connects: window.__tickwire.stats.connects, state: window.__tickwire.client.state, refreshes: window.__tickwire.session.refreshes, exp: window.__tickwire.session.expiresMs, phase: window.__tickwire.session.phase }));
    log(`limited tab: ${JSON.stringify(st)}; endpoint calls ${JSON.stringify(endpointCalls)}`);
    if (st.connects !== 1 || st.state !== "connected") throw new Error(`the tab reconnected or is not connected: ${JSON.stringify(st)}`);
    if (st.refreshes < 1 || !(st.exp > exp1 + 30 * 60_000)) throw new Error(`no refresh: ${JSON.stringify(st)}`);
    const shown2 = Number(await p5.getAttribute(".who", "data-expires-ms"));
    if (!(shown2 > exp1 + 30 * 60_000)) throw new Error(`the shown expiry did not move: ${shown1} -> ${shown2}`);
    if (!endpointCalls.some((c) => c.sub === "e2e-lim" && c.origin === base)) throw new Error("the endpoint was not asked with the session cookie from the page's origin");
    await waitFor(`${idC} NOT ENTITLED after the narrower refresh`, async () => {
      const row = await p5.$eval(`.wl tbody tr[data-id="${idC}"]`, (r) => ({ badge: r.querySelector(".badge")?.textContent, figures: r.querySelector(".last")?.textContent }));
      return row.badge === "NOT ENTITLED" && row.figures === "";
    }, 5000);
    const others = await p5.$$eval(".wl tbody tr .badge.denied", (bs) => bs.length);
    if (others !== 1) throw new Error(`${others} rows say NOT ENTITLED, want 1`);
    await p5.click(`.wl tbody tr[data-id="${idC}"]`);
    await waitFor("the focused instrument says NOT ENTITLED in the header and every panel", async () =>
      (await p5.textContent(".inst .badge")) === "NOT ENTITLED" &&
      (await p5.textContent(".ladder .panel-note")) === "book: not entitled" &&
      (await p5.textContent(".tape .panel-note")) === "trades: not entitled" &&
      (await p5.textContent(".chart .panel-note")) === "candles: not entitled", 5000);
    const errs = await tw(p5, () => window.__tickwire.stats.serverErrors);
    await sleep(1000);
    if ((await tw(p5, () => window.__tickwire.stats.serverErrors)) !== errs) throw new Error("the refused instrument is being asked for again");
    await p5.screenshot({ path: join(artifacts, "12-refreshed-narrowed.png") });
    await p5.close();
  });

  await check("a token running out with a refusing endpoint: expiry banner, then the sign-in form and no reconnect; a pasted token signs in again", async () => {
    const exp = expMs(shortTok);
    await waitFor("the sign-in form", async () => (await p6.getAttribute("body", "data-session")) === "signin" && (await p6.isVisible(".signin")), Math.max(1000, exp - Date.now() + 8000));
    const st = await tw(p6, () => ({ connects: window.__tickwire.stats.connects, state: window.__tickwire.client.state, warned: window.__tickwire.session.warnedAtMs, exp: window.__tickwire.session.expiresMs, reason: window.__tickwire.session.reason }));
    log(`short tab: ${JSON.stringify(st)}; form says "${await p6.textContent(".signin-why")}"`);
    if (!(st.warned > 0 && st.warned < st.exp)) throw new Error(`the expiry banner was not shown before exp: ${JSON.stringify(st)}`);
    if (!/token expired/.test(await p6.textContent(".signin-why"))) throw new Error(`form says "${await p6.textContent(".signin-why")}"`);
    await p6.screenshot({ path: join(artifacts, "13-sign-in.png") });
    await sleep(1000); // a reconnect would come within 0.5 s (the first backoff)
    const again = await tw(p6, () => ({ connects: window.__tickwire.stats.connects, state: window.__tickwire.client.state }));
    if (again.connects !== 1 || again.state !== "closed") throw new Error(`reconnected after the close: ${JSON.stringify(again)}`);
    const fresh = await mint(["--sub", "e2e-short", "--instruments", "*", "--ttl", "1h"]);
    minted.push(fresh);
    await p6.fill(".signin .token-input", fresh);
    await p6.press(".signin .token-input", "Enter");
    await waitFor("signed in again", async () =>
      (await p6.getAttribute("body", "data-conn")) === "connected" && (await p6.getAttribute("body", "data-session")) === "ok" && !(await p6.isVisible(".signin")), 10_000);
    if ((await p6.inputValue(".signin .token-input")) !== "") throw new Error("the token stays in the form");
    if ((await tw(p6, () => window.__tickwire.stats.connects)) !== 2) throw new Error("not one new connection");
    if (p6.url().includes("token")) throw new Error("a token in the address bar");
    await p6.close();
  });

  await check("prices change over a few seconds", async () => {
    const before = await lasts();
    await sleep(3000);
    const after = await lasts();
    const moved = Object.keys(after).filter((id) => before[id] !== after[id]).length;
    if (moved < 3) throw new Error(`only ${moved} instruments moved in 3 s`);
    log(`${moved} of ${Object.keys(after).length} instruments moved in 3 s`);
  });

  await check("the chart has candles", async () => {
    await waitFor("bars on the chart", async () => Number(await page.getAttribute(".chart", "data-bars")) > 0, 15_000);
  });

  await check("one last price: header, tape, watchlist row and the chart's price label agree on every sample while the market runs (issue 12)", async () => {
    // Each sample reads the four in one synchronous evaluate: the page paints all of them in one
    // animation-frame callback (main.ts frame), and no callback runs during an evaluate, so the
    // sample sees one paint, whatever the machine's load: equality is required, no tolerance.
    // (The chart's own last-value label used to be painted on the chart's next frame, from the
    // last visible bar's close: 2-7 ticks behind the header on a busy machine.)
    const sample = () =>
      page.evaluate(() => {
        const live = [...document.querySelectorAll(".tape-body .trade")].find((r) => !r.classList.contains("history") && r.querySelector(".price")?.textContent);
        const label = document.querySelector(".chart .last-label");
        return {
          header: document.querySelector(".inst-last")?.textContent ?? "",
          tape: live?.querySelector(".price")?.textContent ?? "",
          list: document.querySelector(".wl tbody tr.focused .last")?.textContent ?? "",
          chart: label?.classList.contains("shown") ? label.textContent : `(hidden: ${label?.textContent})`,
        };
      });
    await waitFor("a last price on the tape", async () => (await sample()).tape !== "", 10_000);
    const seen = new Set();
    const n = 25;
    for (let i = 0; i < n; i++) {
      const s = await sample();
      if (!/^\d+\.\d\d$/.test(s.header) || s.tape !== s.header || s.list !== s.header || s.chart !== s.header) {
        throw new Error(`sample ${i}: header "${s.header}", tape "${s.tape}", watchlist "${s.list}", chart label "${s.chart}"`);
      }
      seen.add(s.header);
      await sleep(150);
    }
    log(`${n} samples agreed; last took ${seen.size} values (${[...seen].join(" ")})`);
    if (seen.size < 2) throw new Error(`last did not move in ${n} samples: ${[...seen]}`);
  });

  const bestPrices = () =>
    page.evaluate(() => {
      const bid = document.querySelector(".ladder .side.bids .lvl .price")?.textContent ?? "";
      const askRows = document.querySelectorAll(".ladder .side.asks .lvl .price");
      const ask = askRows[askRows.length - 1]?.textContent ?? "";
      return { bid, ask };
    });

  await check("the book has both sides and never crosses (best bid < best ask on every sample)", async () => {
    await waitFor("both sides of the book", async () => {
      const { bid, ask } = await bestPrices();
      return bid !== "" && ask !== "";
    }, 15_000);
    let samples = 0;
    for (let i = 0; i < 40; i++) {
      const { bid, ask } = await bestPrices();
      if (bid === "" || ask === "") throw new Error(`sample ${i}: empty side (bid "${bid}", ask "${ask}")`);
      if (!(mantissa(bid) < mantissa(ask))) throw new Error(`sample ${i}: crossed book, bid ${bid} >= ask ${ask}`);
      samples++;
      await sleep(100);
    }
    log(`${samples} book samples, none crossed`);
  });

  await check("the chart's legend shows the hovered bar's UTC time and exact OHLCV; its close is that bar's close in the replica (issue 12)", async () => {
    const host = await page.$(".chart .chart-host");
    const box = await host.boundingBox();
    // Sweep the crosshair leftwards from the newest bars until it rests on a bar that is not the
    // newest (the newest may change between the legend's paint and this read).
    let got;
    for (let dx = 110; dx < box.width - 40 && !got; dx += 6) {
      await page.mouse.move(box.x + box.width - dx, box.y + box.height / 2);
      await sleep(60);
      got = await page.evaluate(() => {
        const t = window.__tickwire;
        const lg = document.querySelector(".chart .chart-legend");
        if (lg?.dataset.source !== "hover" || !lg.querySelector(".lg-c")) return undefined;
        const time = BigInt(lg.dataset.time);
        const bars = t.client.subs.get(t.store.focus)?.replica.candles.filter((c) => c.intervalS === 1) ?? [];
        const bar = bars.find((c) => c.startS === time);
        const newest = bars[bars.length - 1];
        if (!bar || !newest || bar.startS === newest.startS) return undefined;
        const v = (k) => lg.querySelector(`.lg-${k} .v`)?.textContent ?? "";
        return {
          time: lg.dataset.time,
          text: lg.querySelector(".lg-time")?.textContent ?? "",
          o: v("o"), h: v("h"), l: v("l"), c: v("c"), vol: v("v"),
          bar: { o: bar.open.toString(), h: bar.high.toString(), l: bar.low.toString(), c: bar.close.toString(), v: bar.volume.toString() },
          sizeScale: t.store.rows.get(t.store.focus)?.info?.sizeScale ?? 0,
        };
      });
    }
    if (!got) throw new Error("the crosshair never rested on a bar older than the newest");
    const iso = new Date(Number(got.time) * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    if (got.text !== iso) throw new Error(`legend time "${got.text}", the bar starts ${iso}`);
    for (const [k, want] of [["o", got.bar.o], ["h", got.bar.h], ["l", got.bar.l], ["c", got.bar.c]]) {
      if (!/^\d+\.\d\d$/.test(got[k]) || mantissa(got[k]) !== BigInt(want)) throw new Error(`legend ${k} "${got[k]}", the bar's mantissa ${want}`);
    }
    if (mantissa(got.vol.replace(/,/g, "")) !== BigInt(got.bar.v)) throw new Error(`legend volume "${got.vol}", the bar's ${got.bar.v}`);
    log(`legend over the bar at ${got.text}: O ${got.o} H ${got.h} L ${got.l} C ${got.c} V ${got.vol}`);
    await page.screenshot({ path: join(artifacts, "1b-legend.png") });
    // Without a crosshair it shows the newest bar.
    await page.mouse.move(box.x + 5, box.y - 30);
    await waitFor("the legend back on the newest bar", async () =>
      page.evaluate(() => {
        const t = window.__tickwire;
        const lg = document.querySelector(".chart .chart-legend");
        const bars = t.client.subs.get(t.store.focus)?.replica.candles.filter((c) => c.intervalS === 1) ?? [];
        return lg?.dataset.source === "latest" && lg.dataset.time === String(bars[bars.length - 1]?.startS);
      }), 5000);
  });

  await check("VWAP and MA20 overlays: each toggle removes and brings back its line, the choice kept in localStorage (issue 12)", async () => {
    const ov = () => page.evaluate(() => ({ ...window.__tickwire.chart.overlays(), kept: localStorage.getItem("tickwire.chart.overlays") }));
    await page.evaluate(() => localStorage.removeItem("tickwire.chart.overlays"));
    // MA20 needs 20 bars: the page has run for a while on 1 s bars.
    const on = await waitFor("both overlays drawn", async () => {
      const o = await ov();
      return o.ma.visible && o.vwap.visible && o.ma.points > 0 && o.vwap.points > 0 ? o : null;
    }, 20_000);
    for (const k of ["ma", "vwap"]) {
      await page.click(`.chart .ov-${k}`);
      const off = await ov();
      if (off[k].visible || (await page.getAttribute(".chart", `data-${k}`)) !== "off") throw new Error(`${k} still shown after its toggle: ${JSON.stringify(off)}`);
      if (JSON.parse(off.kept ?? "{}")[k] !== false) throw new Error(`${k} off not kept: ${off.kept}`);
      const other = k === "ma" ? "vwap" : "ma";
      if (!off[other].visible) throw new Error(`${other} hidden by the ${k} toggle`);
      if (k === "ma") await page.screenshot({ path: join(artifacts, "1c-ma-off.png") });
      await page.click(`.chart .ov-${k}`);
      const back = await ov();
      if (!back[k].visible || back[k].points === 0) throw new Error(`${k} not back: ${JSON.stringify(back)}`);
    }
    log(`overlays: MA20 ${on.ma.points} points, VWAP ${on.vwap.points} points; kept ${(await ov()).kept}`);
  });

  await check("the depth chart under the ladder is drawn, and its best bid/ask cumulative sizes are the ladder's top sizes (issue 12)", async () => {
    const read = () =>
      page.evaluate(() => {
        const d = document.querySelector(".ladder .depth");
        const c = d?.querySelector("canvas");
        const askSizes = document.querySelectorAll(".ladder .side.asks .lvl .size");
        let inked = 0;
        if (c && c.width > 0 && c.height > 0) {
          const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          for (let i = 3; i < px.length; i += 4) if (px[i] > 0) inked++;
        }
        const r = d?.getBoundingClientRect();
        return {
          ...d?.dataset,
          inked,
          h: r?.height ?? 0,
          ladderBid: document.querySelector(".ladder .side.bids .lvl .size")?.textContent ?? "",
          ladderAsk: askSizes[askSizes.length - 1]?.textContent ?? "",
          levels: (() => {
            const t = window.__tickwire;
            const b = t.client.subs.get(t.store.focus)?.replica.book;
            return `${b?.bids.length ?? 0}/${b?.asks.length ?? 0}`;
          })(),
        };
      });
    const d = await waitFor("the depth chart drawn", async () => {
      const v = await read();
      return v.inked > 100 && v.bestBidCum && v.bestAskCum ? v : null;
    }, 10_000);
    if (d.h < 40) throw new Error(`depth chart ${d.h} px high`);
    for (let i = 0; i < 10; i++) {
      const v = await read();
      if (v.bestBidCum !== v.ladderBid || v.bestAskCum !== v.ladderAsk) throw new Error(`sample ${i}: depth best bid/ask cumulative ${v.bestBidCum}/${v.bestAskCum}, the ladder's top sizes ${v.ladderBid}/${v.ladderAsk}`);
      if (`${v.bidLevels}/${v.askLevels}` !== v.levels) throw new Error(`sample ${i}: depth over ${v.bidLevels}/${v.askLevels} levels, the book holds ${v.levels}`);
      await sleep(120);
    }
    log(`depth: best ${d.bestBidCum}/${d.bestAskCum} (= the ladder's), totals ${d.bidTotal}/${d.askTotal} over ${d.bidLevels}/${d.askLevels} levels, ${d.inked} px inked, ${d.h} px high`);
  });

  await page.waitForTimeout(1500); // let a few more 1 s bars form for the screenshot
  await page.screenshot({ path: join(artifacts, "1-desktop.png") });

  await check("arrows move the focus, / searches", async () => {
    const name = () => page.textContent(".inst-name");
    const first = await name();
    await page.keyboard.press("ArrowDown");
    await waitFor("focus to move", async () => (await name()) !== first, 5000);
    const second = await name();
    await waitFor("the new instrument's book", async () => (await bestPrices()).bid !== "", 10_000);
    await page.keyboard.press("/");
    const focused = await page.evaluate(() => document.activeElement?.classList.contains("search"));
    if (!focused) throw new Error("/ did not focus the search box");
    const sym = second.slice(0, 3);
    await page.keyboard.type(sym);
    await waitFor("the list to filter", async () => {
      const ids = Object.keys(await lasts());
      return ids.length >= 1 && ids.every((id) => id.toLowerCase().includes(sym.toLowerCase()));
    }, 5000);
    await page.keyboard.press("Escape");
    await waitFor("the list to come back", async () => Object.keys(await lasts()).length >= 10, 5000);
    await page.keyboard.press("ArrowUp");
    await waitFor("focus to move back", async () => (await name()) === first, 5000);
  });

  await check("the keyboard help: ? opens a dialog listing every shortcut (intervals 1–N as the chart offers them, x/Delete to hide), keys do not reach the page behind it, Esc closes it and gives the focus back; the ? button opens it, a click outside closes it (issue 12)", async () => {
    const inst = () => page.evaluate(() => window.__tickwire.store.focus);
    const before = await inst();
    await page.evaluate(() => document.activeElement?.blur());
    await page.keyboard.press("?");
    await waitFor("the help open", async () => page.isVisible('.help[role="dialog"][aria-modal="true"]'), 3000, 100);
    const h = await page.evaluate(() => ({
      keys: [...document.querySelectorAll(".help kbd")].map((k) => k.textContent),
      focusIn: document.querySelector(".help").contains(document.activeElement),
      label: document.getElementById(document.querySelector(".help").getAttribute("aria-labelledby"))?.textContent,
      intervals: document.querySelectorAll(".chart .iv").length,
    }));
    const want = ["?", "Esc", "/", "↑", "↓", "j", "k", "PgUp", "PgDn", "1", String(h.intervals), "x", "Delete"];
    const missing = want.filter((k) => !h.keys.includes(k));
    if (missing.length > 0) throw new Error(`the help lacks ${missing.join(", ")}: it lists ${h.keys.join(" ")}`);
    if (!h.focusIn) throw new Error("the focus did not move into the help");
    if (h.label !== "Keyboard shortcuts") throw new Error(`the dialog's label: ${h.label}`);
    await page.screenshot({ path: join(artifacts, "26-help.png") });
    // Keys are the dialog's while it is open: no instrument change behind it.
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("j");
    await page.waitForTimeout(300);
    if ((await inst()) !== before) throw new Error("a key moved the watchlist behind the open help");
    await page.keyboard.press("Escape");
    await waitFor("the help closed by Esc", async () => !(await page.isVisible(".help")), 3000, 100);
    // The button: opens it, a click outside closes it, the focus back on the button.
    await page.click(".help-btn");
    await waitFor("the help open from the button", async () => page.isVisible(".help"), 3000, 100);
    const vp = page.viewportSize();
    await page.mouse.click(5, vp.height - 5);
    await waitFor("the help closed by a click outside", async () => !(await page.isVisible(".help")), 3000, 100);
    const back = await page.evaluate(() => document.activeElement?.classList.contains("help-btn"));
    if (!back) throw new Error("the focus did not go back to the ? button");
    if ((await inst()) !== before) throw new Error("the instrument changed");
    await page.evaluate(() => document.activeElement?.blur?.()); // the next checks' keys go to the page
    log(`help lists: ${h.keys.join(" ")}`);
  });

  await check("the header's Seq (epoch / seq) is hidden until the status bar's 'details' is toggled, kept across reloads; latency, staleness, breaks and resyncs stay shown (issue 12)", async () => {
    const seq = ".inst .kv.raw-detail";
    if (await page.isVisible(seq)) throw new Error("the Seq is shown without details");
    const header = await page.textContent(".inst");
    if (/\bSeq\b/.test(await page.evaluate(() => document.querySelector(".inst").innerText))) throw new Error(`the header says Seq: ${header}`);
    for (const k of ["event→screen", "breaks"]) if (!(await page.evaluate((k) => document.querySelector(".status").innerText.includes(k), k))) throw new Error(`the status bar lacks ${k}`);
    if (!/\d+ · resyncs \d+/.test(await page.evaluate(() => document.querySelector(".status").innerText))) throw new Error("the status bar lacks breaks · resyncs");
    await page.click(".details-toggle");
    await waitFor("the Seq shown with details", async () => (await page.isVisible(seq)) && /^\d+ \/ \d+$/.test((await page.textContent(`${seq} .num`)) ?? ""), 5000, 100);
    if ((await page.getAttribute(".details-toggle", "aria-pressed")) !== "true") throw new Error("the toggle does not say it is on");
    // Kept for the next page of this browser.
    const p10 = await ctx.newPage();
    p10.on("pageerror", (e) => pageErrors.push(`details tab: ${e.message}`));
    await p10.goto(`${base}/${signIn}`);
    await waitFor("the Seq shown after a reload", async () => (await p10.isVisible(seq)) && (await p10.getAttribute(".details-toggle", "aria-pressed")) === "true", 30_000, 200);
    await p10.close();
    await page.click(".details-toggle");
    await waitFor("the Seq hidden again", async () => !(await page.isVisible(seq)), 3000, 100);
    if ((await page.evaluate(() => localStorage.getItem("tickwire.details"))) !== null) throw new Error("details off is still kept");
  });

  await check("readable on a narrow screen", async () => {
    await page.setViewportSize({ width: 420, height: 900 });
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(artifacts, "2-narrow.png") });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 2) throw new Error(`page is ${overflow}px wider than a 420px screen`);
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  await check("usable at 1024x768: the watchlist and the book within the viewport, neither cut off sideways (issue 12, item 3)", async () => {
    await page.setViewportSize({ width: 1024, height: 768 });
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(artifacts, "14-1024x768.png") });
    const m = await page.evaluate(() => {
      const box = (e) => {
        const r = e.getBoundingClientRect();
        return { left: Math.round(r.left), top: Math.round(r.top), right: Math.round(r.right), bottom: Math.round(r.bottom) };
      };
      const scroller = document.querySelector(".watchlist .scroll");
      const table = document.querySelector(".watchlist table.wl");
      // Figures wider than their cell in the ladder's rows with a level.
      const clipped = [...document.querySelectorAll(".ladder .lvl span")].filter((e) => e.textContent && e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent);
      const asks = document.querySelectorAll(".ladder .side.asks .lvl");
      return {
        vw: document.documentElement.clientWidth,
        vh: document.documentElement.clientHeight,
        pageW: document.documentElement.scrollWidth,
        pageH: document.documentElement.scrollHeight,
        watchlist: box(document.querySelector(".watchlist")),
        ladder: box(document.querySelector(".ladder")),
        bestBid: box(document.querySelector(".ladder .side.bids .lvl")),
        bestAsk: box(asks[asks.length - 1]),
        table: table.scrollWidth,
        list: scroller.clientWidth,
        clipped,
      };
    });
    log(`1024x768: ${JSON.stringify(m)}`);
    const inside = (b) => b.left >= 0 && b.top >= 0 && b.right <= m.vw && b.bottom <= m.vh;
    for (const k of ["watchlist", "ladder"]) if (!inside(m[k])) throw new Error(`the ${k} (${JSON.stringify(m[k])}) is not within the ${m.vw}x${m.vh} viewport`);
    if (m.pageW > m.vw + 1) throw new Error(`the page is ${m.pageW - m.vw}px wider than the viewport`);
    if (m.table > m.list + 1) throw new Error(`the watchlist's table is ${m.table}px wide in a ${m.list}px list: columns cut off`);
    if (m.clipped.length > 0) throw new Error(`ladder figures cut off: ${m.clipped.slice(0, 5).join(", ")}`);
    for (const k of ["bestBid", "bestAsk"]) if (!(m[k].top >= m.ladder.top && m[k].bottom <= m.ladder.bottom)) throw new Error(`the ${k} row is outside the ladder`);
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  // Issue 12, item 3: every width from 360 to 2560 usable. The geometry of the bars and panels,
  // measured in the page: boxes, whether the page scrolls, what is cut off, and what is on top at
  // the centre of each watchlist row and bar (elementFromPoint: nothing may cover them).
  const layout = (p = page) =>
    p.evaluate(() => {
      const box = (e) => {
        if (!e || e.getClientRects().length === 0) return null;
        const r = e.getBoundingClientRect();
        return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, w: r.width, h: r.height };
      };
      const q = (s) => document.querySelector(s);
      const de = document.documentElement;
      const scroller = q(".watchlist .scroll");
      const sb = box(scroller);
      // Rows wholly inside the list's scrolled box, and whether each is what is on top at its centre.
      const rows = sb
        ? [...document.querySelectorAll(".wl tbody tr")]
            .map((r) => ({ id: r.dataset.id, b: box(r) }))
            .filter((r) => r.b && r.b.top >= sb.top + (q(".wl thead")?.getBoundingClientRect().height ?? 0) - 0.5 && r.b.bottom <= sb.bottom + 0.5)
            .map((r) => {
              const hit = document.elementFromPoint((r.b.left + r.b.right) / 2, (r.b.top + r.b.bottom) / 2);
              return { ...r, onTop: !!hit?.closest(`tr[data-id="${CSS.escape(r.id)}"]`) };
            })
        : [];
      const onTop = (sel) => {
        const b = box(q(sel));
        if (!b) return null;
        const hit = document.elementFromPoint(Math.min(b.right - 1, b.left + 20), (b.top + b.bottom) / 2);
        return !!hit?.closest(sel);
      };
      // Children of a box that stick out of it (cut off by it), or figures wider than their cell.
      const outside = (sel) => {
        const p = box(q(sel));
        if (!p) return [];
        return [...q(sel).querySelectorAll("*")]
          .filter((e) => e.getClientRects().length > 0 && e.textContent.trim() !== "" && e.children.length === 0)
          .filter((e) => {
            const b = e.getBoundingClientRect();
            return b.left < p.left - 0.5 || b.right > p.right + 0.5 || b.top < p.top - 0.5 || b.bottom > p.bottom + 0.5;
          })
          .map((e) => e.textContent.trim().slice(0, 30));
      };
      const clipped = (sel) =>
        [...document.querySelectorAll(sel)].filter((e) => e.getClientRects().length > 0 && e.textContent && e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent);
      return {
        vw: de.clientWidth,
        vh: de.clientHeight,
        pageW: de.scrollWidth,
        pageH: de.scrollHeight,
        tab: document.body.dataset.tab,
        boxes: Object.fromEntries(
          [".topbar", ".tabs", ".watchlist", ".inst", ".chart", ".ladder", ".tape", ".status"].map((s) => [s.slice(1), box(q(s))]),
        ),
        tabHeights: [...document.querySelectorAll(".tabs .tab")].map((t) => t.getBoundingClientRect().height),
        rows,
        table: q(".watchlist table.wl")?.scrollWidth ?? 0,
        list: scroller?.clientWidth ?? 0,
        onTop: { topbar: onTop(".topbar"), status: onTop(".status"), tabs: onTop(".tabs") },
        statusOut: outside(".status"),
        topbarOut: outside(".topbar"),
        clipped: clipped(".ladder .lvl span, .tape .trade span, .wl td, .status .kv, .inst-name, .inst-last"),
        // Anything fixed over the page that is drawn (no banner, form or dialog is open here).
        fixedShown: [...document.querySelectorAll("body *")]
          .filter((e) => getComputedStyle(e).position === "fixed" && e.getClientRects().length > 0)
          .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join(".")}`),
      };
    });
  const overlap = (a, b) => a && b && a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const within = (b, m) => b.left >= -0.5 && b.top >= -0.5 && b.right <= m.vw + 0.5 && b.bottom <= m.vh + 0.5;
  const fmt = (b) => (b ? `[${Math.round(b.left)},${Math.round(b.top)} ${Math.round(b.right)},${Math.round(b.bottom)}]` : "hidden");
  /** What every width must hold: no page scroll either way, the shown panels and bars inside the
   * viewport and apart, the bars on top and whole, the list's columns and the figures not cut off. */
  const usable = (m, what) => {
    const errs = [];
    if (m.pageW > m.vw + 1) errs.push(`the page is ${m.pageW - m.vw}px wider than the viewport`);
    if (m.pageH > m.vh + 1) errs.push(`the page scrolls: ${m.pageH}px in a ${m.vh}px viewport`);
    const shown = Object.entries(m.boxes).filter(([, b]) => b);
    for (const [k, b] of shown) if (!within(b, m)) errs.push(`the ${k} ${fmt(b)} is not within the viewport`);
    for (let i = 0; i < shown.length; i++)
      for (let j = i + 1; j < shown.length; j++) {
        const [ka, a] = shown[i];
        const [kb, b] = shown[j];
        if (overlap(a, b)) errs.push(`the ${ka} ${fmt(a)} overlaps the ${kb} ${fmt(b)}`);
      }
    for (const [k, v] of Object.entries(m.onTop)) if (v === false) errs.push(`something covers the ${k}`);
    const covered = m.rows.filter((r) => !r.onTop).map((r) => r.id);
    if (covered.length > 0) errs.push(`watchlist rows covered: ${covered.join(", ")}`);
    for (const r of m.rows) for (const k of ["topbar", "tabs", "status"]) if (overlap(r.b, m.boxes[k])) errs.push(`row ${r.id} ${fmt(r.b)} overlaps the ${k}`);
    if (m.boxes.watchlist && m.table > m.list + 1) errs.push(`the watchlist's table is ${m.table}px wide in a ${m.list}px list: columns cut off`);
    if (m.statusOut.length > 0) errs.push(`status bar cut off: ${m.statusOut.join(" | ")}`);
    if (m.topbarOut.length > 0) errs.push(`top bar cut off: ${m.topbarOut.join(" | ")}`);
    if (m.clipped.length > 0) errs.push(`figures cut off: ${m.clipped.slice(0, 6).join(", ")}`);
    if (m.fixedShown.length > 0) errs.push(`fixed over the page: ${m.fixedShown.join(", ")}`);
    if (errs.length > 0) throw new Error(`${what}: ${errs.join("; ")}`);
  };
  const describe = (m) => `${m.vw}x${m.vh} tab ${m.tab}: ${Object.entries(m.boxes).map(([k, b]) => `${k} ${fmt(b)}`).join(", ")}; ${m.rows.length} rows in view`;

  await check("a phone, 390x844: tabs reach the watchlist, a tap switches the instrument, nothing covers the rows, the bars stay whole and on top (issue 12, item 3)", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(600);
    if (!(await page.isVisible(".tabs"))) throw new Error("no tab bar on a phone: the watchlist cannot be reached");
    await page.click('.tabs .tab[data-tab="list"]');
    await waitFor("the watchlist rows on screen", async () => (await layout()).rows.length >= 8, 5000);
    let m = await layout();
    log(`phone, Markets: ${describe(m)}`);
    usable(m, "Markets");
    const short = m.tabHeights.filter((h) => h < 44);
    if (m.tabHeights.length < 4 || short.length > 0) throw new Error(`tabs ${m.tabHeights.join(", ")} px high: touch targets under 44 px`);
    const low = m.rows.filter((r) => r.b.h < 40);
    if (low.length > 0) throw new Error(`watchlist rows ${low[0].b.h} px high: touch targets under 40 px`);
    await page.screenshot({ path: join(artifacts, "16-phone-390x844.png") });

    // Switch instrument with a tap on a row other than the focused one: its chart opens.
    const focusedId = await page.evaluate(() => window.__tickwire.store.focus);
    const pick = m.rows.find((r) => r.id !== focusedId && m.rows.indexOf(r) >= 2) ?? m.rows.find((r) => r.id !== focusedId);
    const sym = await page.textContent(`.wl tbody tr[data-id="${pick.id}"] .symtext`);
    await page.click(`.wl tbody tr[data-id="${pick.id}"]`);
    await waitFor(`${sym} focused and its chart shown`, async () =>
      (await page.evaluate(() => window.__tickwire.store.focus)) === pick.id &&
      (await page.textContent(".inst-name")) === sym &&
      (await page.getAttribute("body", "data-tab")) === "chart" &&
      (await page.isVisible(".chart .chart-host")), 5000);
    await waitFor("bars on its chart", async () => Number(await page.getAttribute(".chart", "data-bars")) > 0, 15_000);
    await page.waitForTimeout(600);
    m = await layout();
    log(`phone, Chart: ${describe(m)}`);
    usable(m, "Chart");
    if (!(m.boxes.chart.h >= 250)) throw new Error(`the chart is ${m.boxes.chart.h}px high`);
    await page.screenshot({ path: join(artifacts, "17-phone-chart.png") });

    // Scrolling (a wheel over the header, the page asked to scroll): the top bar stays on top, above the chart.
    await page.mouse.move(195, m.boxes.inst.top + 10);
    await page.mouse.wheel(0, 600);
    await page.evaluate(() => window.scrollTo(0, 600));
    await page.waitForTimeout(300);
    m = await layout();
    if (m.boxes.topbar.top !== 0 || overlap(m.boxes.topbar, m.boxes.chart) || (await page.evaluate(() => window.scrollY)) !== 0) {
      throw new Error(`after scrolling: top bar ${fmt(m.boxes.topbar)}, chart ${fmt(m.boxes.chart)}, scrollY ${await page.evaluate(() => window.scrollY)}`);
    }
    usable(m, "Chart after scrolling");

    for (const [tab, sel] of [["book", ".ladder"], ["trades", ".tape"]]) {
      await page.click(`.tabs .tab[data-tab="${tab}"]`);
      await waitFor(`the ${tab} tab`, async () => (await layout()).boxes[sel.slice(1)] !== null, 5000);
      await page.waitForTimeout(300);
      m = await layout();
      log(`phone, ${tab}: ${describe(m)}`);
      usable(m, tab);
      if ((await page.textContent(".inst-name")) !== sym) throw new Error(`the ${tab} tab does not name ${sym}`);
      if (tab === "book") {
        await waitFor("both sides of the phone's book", async () => {
          const { bid, ask } = await bestPrices();
          return bid !== "" && ask !== "";
        }, 10_000);
        await page.screenshot({ path: join(artifacts, "18-phone-book.png") });
      }
    }

    // Back in Markets, the picked instrument is the focused row, in view.
    await page.click('.tabs .tab[data-tab="list"]');
    await waitFor("the picked row focused and in view", async () => (await layout()).rows.some((r) => r.id === pick.id) && (await page.getAttribute(".wl tr.focused", "data-id")) === pick.id, 5000);
  });

  await check("every width from 360 to 2560: no horizontal scroll, nothing cut off or covered (360x740, 1440x900, 2560x1440; issue 12, item 3)", async () => {
    for (const [w, h, shot] of [[360, 740, ""], [768, 1024, ""], [1440, 900, "19-1440x900.png"], [2560, 1440, "20-2560x1440.png"]]) {
      await page.setViewportSize({ width: w, height: h });
      await page.waitForTimeout(700);
      const m = await layout();
      log(`${describe(m)}`);
      usable(m, `${w}x${h}`);
      if (w >= 1100) {
        for (const k of ["watchlist", "inst", "chart", "ladder", "tape"]) if (!m.boxes[k]) throw new Error(`${w}x${h}: the ${k} is not shown`);
        if (m.boxes.tabs) throw new Error(`${w}x${h}: the tab bar is shown`);
      }
      if (shot) await page.screenshot({ path: join(artifacts, shot) });
    }
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  await check("the watchlist sorts by a click on any column's header: Instrument A→Z, Z→A, then the feed's order; Last highest first (issue 12, item 3)", async () => {
    const shown = () => page.$$eval(".wl tbody tr", (rs) => rs.map((r) => ({ id: r.dataset.id, sym: r.querySelector(".symtext")?.textContent ?? "", last: r.querySelector(".last")?.textContent ?? "" })));
    const sorted = (a, dir) => a.every((x, i) => i === 0 || dir * a[i - 1].localeCompare(x) <= 0);
    const sortBy = async (key, want) => {
      await page.click(`.wl th[data-sort="${key}"] .sort`);
      await waitFor(`aria-sort ${want} on ${key}`, async () => (await page.getAttribute(`.wl th[data-sort="${key}"]`, "aria-sort")) === want, 3000, 100);
      await page.waitForTimeout(100);
      return shown();
    };
    const up = await sortBy("sym", "ascending");
    if (!sorted(up.map((r) => r.sym), 1)) throw new Error(`not A→Z: ${up.map((r) => r.sym).join(" ")}`);
    const down = await sortBy("sym", "descending");
    if (!sorted(down.map((r) => r.sym), -1)) throw new Error(`not Z→A: ${down.map((r) => r.sym).join(" ")}`);
    const feed = await sortBy("sym", "none");
    const order = await page.evaluate(() => window.__tickwire.store.order);
    if (feed.map((r) => r.id).join() !== order.join()) throw new Error("the third click did not restore the feed's order");
    const byLast = (await sortBy("last", "descending")).map((r) => Number(r.last.replace(/,/g, ""))).filter((x) => !Number.isNaN(x));
    // Figures move between the once-a-second re-sorts: the highest first and the lowest last, within 2 %.
    const max = Math.max(...byLast);
    const min = Math.min(...byLast);
    if (byLast.length < 10 || byLast[0] < max * 0.98 || byLast[byLast.length - 1] > min * 1.02) throw new Error(`Last not highest first: ${byLast.join(" ")}`);
    await page.click('.wl th[data-sort="last"] .sort'); // ascending
    await page.click('.wl th[data-sort="last"] .sort'); // the feed's order again
    await waitFor("no sort", async () => (await page.$$('.wl th[aria-sort="ascending"], .wl th[aria-sort="descending"]')).length === 0, 3000, 100);
  });

  await check("a search with no result says so, and 'Show all' brings the list back (issue 12, item 3)", async () => {
    await page.fill(".watchlist .search", "zzqq");
    await waitFor("the empty-state message", async () => (await page.isVisible(".wl-empty")) && (await page.textContent(".wl-empty-text")) === "No instrument matches “zzqq”.", 3000, 100);
    if ((await page.$$(".wl tbody tr")).length !== 0) throw new Error("rows shown for a search with no match");
    await page.click(".wl-empty .wl-clear");
    await waitFor("the list back", async () => !(await page.isVisible(".wl-empty")) && (await page.$$(".wl tbody tr")).length >= 10, 3000, 100);
  });

  await check("favourites: the star puts an instrument first and is kept across reloads (localStorage); the time zone is shown; a Venue column with several venues (issue 12, item 3)", async () => {
    const ids = await page.evaluate(() => window.__tickwire.store.order);
    const fav = ids[4];
    const focusBefore = await page.evaluate(() => window.__tickwire.store.focus);
    await page.click(`.wl tbody tr[data-id="${fav}"] .fav`);
    await waitFor("the favourite first", async () => (await page.getAttribute(".wl tbody tr:first-child", "data-id")) === fav && (await page.getAttribute(`.wl tbody tr[data-id="${fav}"] .fav`, "aria-pressed")) === "true", 3000, 100);
    if ((await page.evaluate(() => window.__tickwire.store.focus)) !== focusBefore) throw new Error("the star also focused its row");
    // A fresh page of the same browser (a reload, without disturbing this tab's connection).
    const p8 = await ctx.newPage();
    p8.on("pageerror", (e) => pageErrors.push(`favourites tab: ${e.message}`));
    await p8.goto(`${base}/${signIn}`);
    await waitFor("the favourite first after a reload", async () => (await p8.getAttribute(".wl tbody tr:first-child", "data-id")) === fav && (await p8.getAttribute(".wl tbody tr:first-child .fav", "aria-pressed")) === "true", 30_000);
    await p8.selectOption(".watchlist .filter", "fav");
    await waitFor("the Favourites filter", async () => (await p8.$$eval(".wl tbody tr", (rs) => rs.map((r) => r.dataset.id))).join() === fav, 3000, 100);
    await p8.selectOption(".watchlist .filter", "all");
    // Times: the tape's zone is this browser's offset from UTC, the chart's axis says UTC.
    const zone = await p8.evaluate(() => {
      const o = -new Date().getTimezoneOffset();
      return o === 0 ? "UTC" : `UTC${o > 0 ? "+" : "-"}${Math.floor(Math.abs(o) / 60)}${Math.abs(o) % 60 ? `:${String(Math.abs(o) % 60).padStart(2, "0")}` : ""}`;
    });
    const tz = { tape: await p8.getAttribute(".tape .tz", "data-zone"), tapeText: await p8.textContent(".tape .tz"), chart: await p8.textContent(".chart .tz") };
    if (tz.tape !== zone || tz.tapeText !== `times ${zone}` || tz.chart !== "UTC") throw new Error(`time zones shown: ${JSON.stringify(tz)}, browser ${zone}`);
    // Three venues listed (synthetic, synthetic-b, consolidated): the Venue column shows each
    // row's venue.
    const venueOf = (id) => p8.textContent(`.wl tbody tr[data-id="${id}"] td.venue`);
    await waitFor("the Venue column", async () => (await p8.isVisible(".wl th.venue")) && (await venueOf("synthetic:BOLT")) === "synthetic" && (await venueOf("synthetic-b:BOLT")) === "synthetic-b" && (await venueOf(consolidatedId)) === "consolidated", 3000, 100);
    // One venue: no column. Every row's info saying one venue (put in this tab's store, as
    // InstrumentUpdates would), then the feed's own infos back and the column with them.
    await p8.evaluate(() => {
      const s = window.__tickwire.store;
      window.__e2eInfos = [...s.rows.values()].map((r) => r.info);
      s.setInstruments(window.__e2eInfos.map((i) => ({ ...i, venue: "synthetic" })));
      s.listDirty = true;
    });
    await waitFor("no Venue column with one venue", async () => !(await p8.isVisible(".wl th.venue")), 3000, 100);
    await p8.evaluate(() => {
      const s = window.__tickwire.store;
      s.setInstruments(window.__e2eInfos);
      s.listDirty = true;
    });
    await waitFor("the Venue column back", async () => (await p8.isVisible(".wl th.venue")) && (await venueOf(consolidatedId)) === "consolidated", 3000, 100);
    for (const [w, h] of [[1440, 900], [1024, 768], [390, 844]]) {
      await p8.setViewportSize({ width: w, height: h });
      if (w === 390) await p8.click('.tabs .tab[data-tab="list"]');
      await p8.waitForTimeout(400);
      const fit = await p8.evaluate(() => ({ table: document.querySelector(".wl").scrollWidth, list: document.querySelector(".watchlist .scroll").clientWidth }));
      if (fit.table > fit.list + 1) throw new Error(`${w}x${h} with a Venue column: the table is ${fit.table}px wide in a ${fit.list}px list`);
    }
    await p8.setViewportSize({ width: 1440, height: 900 });
    await p8.waitForTimeout(300);
    await p8.screenshot({ path: join(artifacts, "21-watchlist-venue-favourite.png") });
    // Unstar: the favourite is gone for the next page too.
    await p8.click(`.wl tbody tr[data-id="${fav}"] .fav`);
    await waitFor("unstarred", async () => (await p8.evaluate(() => localStorage.getItem("tickwire.favourites"))) === "[]", 3000, 100);
    await p8.close();
    await page.click(`.wl tbody tr[data-id="${fav}"] .fav`); // this tab's copy too
  });

  await check("hiding an instrument: x removes the focused row (the focus moves on), it stays hidden across a reload (localStorage), the Hidden filter lists it and restores it; the header's hide and Delete too; the empty state says so (issue 12)", async () => {
    const victim = "synthetic:BOLT";
    const rowIds = (p) => p.$$eval(".wl tbody tr", (rs) => rs.map((r) => r.dataset.id));
    const kept = (p) => p.evaluate(() => localStorage.getItem("tickwire.hidden"));
    const p11 = await ctx.newPage();
    p11.on("pageerror", (e) => pageErrors.push(`hidden tab: ${e.message}`));
    await p11.goto(`${base}/${signIn}`);
    const total = await waitFor("every instrument's row", async () => {
      const n = await p11.evaluate(() => window.__tickwire.store.order.length);
      return n >= 10 && (await rowIds(p11)).length === n ? n : 0;
    }, 30_000);
    await p11.click(`.wl tbody tr[data-id="${victim}"] .symtext`);
    await waitFor(`${victim} focused`, async () => (await p11.evaluate(() => window.__tickwire.store.focus)) === victim, 5000, 100);
    await p11.keyboard.press("x");
    await waitFor(`${victim}'s row gone`, async () => {
      const ids = await rowIds(p11);
      return !ids.includes(victim) && ids.length === total - 1 && (await kept(p11)) === JSON.stringify([victim]);
    }, 3000, 100);
    await waitFor("the focus on another row", async () => {
      const next = await p11.evaluate(() => window.__tickwire.store.focus);
      return next && next !== victim && (await p11.getAttribute(".wl tr.focused", "data-id")) === next;
    }, 3000, 100);
    // A reload: still hidden; the filter says how many.
    await p11.reload();
    await waitFor("the list after a reload, without the hidden row", async () => {
      const ids = await rowIds(p11);
      return ids.length === total - 1 && !ids.includes(victim);
    }, 30_000);
    const opt = await p11.$eval('.watchlist .filter option[value="hidden"]', (o) => o.textContent);
    if (opt !== "Hidden (1)") throw new Error(`the Hidden filter's option says "${opt}"`);
    await p11.selectOption(".watchlist .filter", "hidden");
    await waitFor("the Hidden filter lists it", async () => (await rowIds(p11)).join() === victim, 3000, 100);
    await p11.screenshot({ path: join(artifacts, "27-watchlist-hidden.png") });
    await p11.click(`.wl tbody tr[data-id="${victim}"] .fav.restore`);
    await waitFor("restored: the Hidden filter empty, and says so", async () =>
      (await rowIds(p11)).length === 0 && (await p11.isVisible(".wl-empty")) && /No instrument among hidden/.test((await p11.textContent(".wl-empty-text")) ?? ""), 3000, 100);
    await p11.click(".wl-clear");
    await waitFor("the row back in All", async () => (await rowIds(p11)).includes(victim) && (await rowIds(p11)).length === total && (await kept(p11)) === "[]", 3000, 100);
    // The header's hide button, then Delete on the row in the Hidden filter restores it.
    await p11.click(`.wl tbody tr[data-id="${victim}"] .symtext`);
    await waitFor(`${victim} focused again`, async () => (await p11.evaluate(() => window.__tickwire.store.focus)) === victim && (await p11.textContent(".inst-hide")) === "hide", 5000, 100);
    await p11.click(".inst-hide");
    await waitFor("hidden by the header's button", async () => !(await rowIds(p11)).includes(victim) && (await kept(p11)) === JSON.stringify([victim]), 3000, 100);
    await p11.selectOption(".watchlist .filter", "hidden");
    await waitFor("listed hidden", async () => (await rowIds(p11)).join() === victim, 3000, 100);
    await p11.click(`.wl tbody tr[data-id="${victim}"] .symtext`);
    await waitFor(`${victim} focused in Hidden`, async () => (await p11.evaluate(() => window.__tickwire.store.focus)) === victim && (await p11.textContent(".inst-hide")) === "restore", 5000, 100);
    await p11.keyboard.press("Delete");
    await waitFor("restored by Delete", async () => (await kept(p11)) === "[]" && (await rowIds(p11)).length === 0, 3000, 100);
    await p11.selectOption(".watchlist .filter", "all");
    await waitFor("every row back", async () => (await rowIds(p11)).length === total, 3000, 100);
    await p11.close();
  });

  await check("a fragment with the token after the instrument (#synthetic:BOLT&token=...) signs in and focuses that instrument; the address keeps one # and no token (issue 12)", async () => {
    const want = "synthetic:BOLT";
    const p10 = await ctx.newPage();
    p10.on("pageerror", (e) => pageErrors.push(`fragment tab: ${e.message}`));
    await p10.goto(`${base}/#${want}&token=${token}`);
    await waitFor(`${want} focused`, async () => (await p10.evaluate(() => window.__tickwire.store.focus)) === want && (await p10.getAttribute(".wl tr.focused", "data-id")) === want, 30_000);
    const url = p10.url();
    if (url.includes("token") || url.includes("##")) throw new Error(`the address: ${url.slice(0, 120)}`);
    if (new URL(url).hash !== `#${encodeURIComponent(want)}`) throw new Error(`the address's fragment: ${new URL(url).hash}`);
    if ((await p10.evaluate(() => window.__tickwire.auth.subject)) !== "e2e") throw new Error("not signed in with the token from the fragment");
    await p10.close();
  });

  await check("a consolidated instrument: listed with venue consolidated; selected, the header names its members, every level of the ladder carries venue tags (both members across the levels, no '?'), the book in sync; nothing cut off at 1440, 1024, 1920 and 390 px", async () => {
    // A tab of its own: the main page keeps synthetic:ACME focused for the checks after this one.
    const p9 = await ctx.newPage();
    p9.on("pageerror", (e) => pageErrors.push(`consolidated tab: ${e.message}`));
    p9.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(`consolidated tab console: ${m.text()}`);
    });
    await p9.goto(`${base}/${signIn}`);
    const row = `.wl tbody tr[data-id="${consolidatedId}"]`;
    await waitFor(`${consolidatedId} in the watchlist with venue "consolidated" and a quote`, async () =>
      (await p9.textContent(`${row} td.venue`)) === "consolidated" && /\d/.test((await p9.textContent(`${row} .bid`)) ?? ""), 30_000);
    const cellTitle = await p9.getAttribute(`${row} td.venue`, "title");
    if (!consolidatedMembers.every((m) => cellTitle?.includes(m))) throw new Error(`the Venue cell's tooltip does not name the members: "${cellTitle}"`);
    // Selected with a click, as a trader would.
    await p9.click(`${row} .symtext`);
    await waitFor(`${consolidatedId} focused`, async () => (await p9.evaluate(() => window.__tickwire.store.focus)) === consolidatedId && (await p9.getAttribute(".wl tr.focused", "data-id")) === consolidatedId, 5000);
    const header = () =>
      p9.evaluate(() => {
        const e = document.querySelector(".inst-members");
        return {
          shown: !!e && !e.hidden && e.getClientRects().length > 0,
          text: e?.textContent ?? "",
          tags: [...document.querySelectorAll(".inst-members-list .vt")].map((t) => ({ label: t.textContent, title: t.title, cls: t.className })),
          sub: document.querySelector(".inst-sub")?.textContent ?? "",
        };
      });
    const h = await waitFor("the header's 'Consolidated of' line naming both members", async () => {
      const v = await header();
      return v.shown && v.text.startsWith("Consolidated of") && v.tags.map((t) => t.label).join() === consolidatedMembers.join() ? v : null;
    }, 5000).catch(async (e) => {
      throw new Error(`${e.message}; header ${JSON.stringify(await header())}`);
    });
    if (!h.sub.startsWith("consolidated · ")) throw new Error(`the header's venue line: "${h.sub}"`);
    if (h.tags.some((t) => t.label === "?" || /unknown/.test(t.cls))) throw new Error(`a '?' among the members' tags: ${JSON.stringify(h.tags)}`);

    // The ladder: consolidated (a Venues column), live, and in sync.
    await waitFor("the consolidated ladder live with both sides", async () =>
      (await p9.$(".ladder.consolidated:not(.unsynced)")) !== null && (await p9.getAttribute(".ladder", "data-book")) === "live" &&
      (await p9.$$(".ladder .side.bids .lvl .price:not(:empty)")).length > 0 && (await p9.$$(".ladder .side.asks .lvl .price:not(:empty)")).length > 0, 15_000);
    // The levels in view (inside the ladder's scrolled body), each with its tags, in one evaluate.
    const ladder = () =>
      p9.evaluate(() => {
        const body = document.querySelector(".ladder .book-body").getBoundingClientRect();
        return [...document.querySelectorAll(".ladder .side .lvl")]
          .filter((r) => r.querySelector(".price")?.textContent)
          .filter((r) => {
            const b = r.getBoundingClientRect();
            return b.height > 0 && b.top >= body.top - 0.5 && b.bottom <= body.bottom + 0.5;
          })
          .map((r) => ({
            side: r.dataset.side,
            price: r.querySelector(".price").textContent,
            tags: [...r.querySelectorAll(".vens .vt")].map((t) => ({ label: t.textContent, title: t.title, cls: t.className })),
            title: r.querySelector(".vens").title,
          }));
      });
    const labels = consolidatedMembers.map((m) => m.slice(0, m.indexOf(":"))); // synthetic, synthetic-b
    const seen = new Set();
    let samples = 0;
    let levels = 0;
    await waitFor("both member venues among the levels in view", async () => {
      const ls = await ladder();
      samples++;
      if (ls.length < 4) throw new Error(`${ls.length} levels in view`);
      for (const l of ls) {
        const where = `${l.side} ${l.price}: ${JSON.stringify(l.tags)}`;
        if (l.tags.length === 0) throw new Error(`a level without a venue tag: ${where}`);
        if (l.tags.some((t) => t.label === "?" || /unknown/.test(t.cls))) throw new Error(`a '?' venue tag: ${where}`);
        for (const t of l.tags) {
          const i = labels.indexOf(t.label);
          if (i < 0 || t.title !== consolidatedMembers[i] || !t.cls.includes(`vt-${i}`)) throw new Error(`a tag that names no member: ${where}`);
          seen.add(t.label);
        }
        if (new Set(l.tags.map((t) => t.label)).size !== l.tags.length) throw new Error(`a venue twice on a level: ${where}`);
        if (l.title !== l.tags.map((t) => t.title).join(", ")) throw new Error(`level tooltip "${l.title}" for ${where}`);
      }
      levels = ls.length;
      return labels.every((l) => seen.has(l));
    }, 15_000, 300).catch((e) => {
      throw new Error(`${e.message} (venues seen in ${samples} samples: ${[...seen].join(", ") || "none"})`);
    });
    log(`consolidated ladder: ${levels} levels in view, venues ${[...seen].join(", ")} (${samples} samples)`);

    // In sync: the replica follows the book (deltas applied, each checked against the checksum
    // and the full-depth hash, venues included), and no check fails meanwhile; every level of
    // the replica's book names venues within the members.
    const replica = () =>
      p9.evaluate((id) => {
        const t = window.__tickwire;
        const rep = t.client.subs.get(id)?.replica;
        const n = t.store.rows.get(id)?.info?.members?.length ?? 0;
        const lv = rep ? [...rep.book.bids, ...rep.book.asks] : [];
        return {
          synced: !!rep?.synced(2),
          seq: String(rep?.pos[2]?.seq ?? 0n),
          levels: lv.length,
          badVenues: lv.filter((l) => l.venues === 0 || l.venues >>> n !== 0).map((l) => `${l.price}:${l.venues}`),
          breaks: { gaps: t.stats.gaps, checksum: t.stats.checksum, epochs: t.stats.epochs },
          book: document.querySelector(".ladder").dataset.book,
          rowBadge: document.querySelector(`.wl tbody tr[data-id="${CSS.escape(id)}"] .badge`)?.textContent ?? "",
        };
      }, consolidatedId);
    const r1 = await replica();
    await sleep(2500);
    const r2 = await replica();
    log(`consolidated book: ${JSON.stringify(r1)} -> ${JSON.stringify(r2)}`);
    for (const r of [r1, r2]) {
      if (!r.synced || r.book !== "live") throw new Error(`the consolidated book is not in sync: ${JSON.stringify(r)}`);
      if (r.levels === 0 || r.badVenues.length > 0) throw new Error(`replica levels without venues or past the members: ${r.badVenues.slice(0, 5).join(", ")}`);
      if (r.breaks.checksum !== 0) throw new Error(`checksum failures in the tab: ${JSON.stringify(r.breaks)}`);
      if (/RESYNC|WAIT|STALE/.test(r.rowBadge)) throw new Error(`the consolidated row says ${r.rowBadge}`);
    }
    if (!(BigInt(r2.seq) > BigInt(r1.seq))) throw new Error(`the consolidated book did not move in 2.5 s: seq ${r1.seq} -> ${r2.seq}`);
    if (JSON.stringify(r2.breaks) !== JSON.stringify(r1.breaks)) throw new Error(`breaks while following the book: ${JSON.stringify(r1.breaks)} -> ${JSON.stringify(r2.breaks)}`);
    await p9.screenshot({ path: join(artifacts, "22-consolidated.png") });

    // Nothing cut off with the Venues column and the members line: the layout checks of every
    // width (usable), the venue tags whole, the members line inside the header.
    const tagsWhole = () =>
      p9.evaluate(() => {
        const inst = document.querySelector(".inst").getBoundingClientRect();
        const cut = [...document.querySelectorAll(".ladder .lvl .vt, .inst-members .vt, .inst-members .k")]
          .filter((e) => e.getClientRects().length > 0 && e.scrollWidth > e.clientWidth + 1)
          .map((e) => e.textContent);
        const vens = [...document.querySelectorAll(".ladder .lvl .vens")].filter((v) => v.getClientRects().length > 0);
        const outOfCell = vens.flatMap((v) => {
          const b = v.getBoundingClientRect();
          return [...v.children].filter((t) => t.getBoundingClientRect().right > b.right + 0.5).map((t) => t.textContent);
        });
        const outOfHeader = [...document.querySelectorAll(".inst-members .vt, .inst-members .k")]
          .filter((e) => {
            const b = e.getBoundingClientRect();
            return b.width > 0 && (b.left < inst.left - 0.5 || b.right > inst.right + 0.5 || b.top < inst.top - 0.5 || b.bottom > inst.bottom + 0.5);
          })
          .map((e) => e.textContent);
        return { cut, outOfCell, outOfHeader, tagsShown: document.querySelectorAll(".ladder .lvl .vens .vt").length, cum: getComputedStyle(document.querySelector(".ladder .lvl:not(.head) .cum")).display };
      });
    // The watchlist's Venue cells that are cut off (an ellipsis: styles.css caps the column), with
    // what they need.
    const venueCellsCut = () =>
      p9.evaluate(() =>
        [...document.querySelectorAll(".wl td.venue")]
          .filter((e) => e.getClientRects().length > 0 && e.textContent && e.scrollWidth > e.clientWidth + 1)
          .map((e) => ({ id: e.closest("tr").dataset.id, text: e.textContent, title: e.title, need: e.scrollWidth, has: e.clientWidth })),
      );
    const errs = [];
    for (const [w, h, shot] of [[1440, 900, ""], [1024, 768, "23-consolidated-1024x768.png"], [1920, 1080, "24-consolidated-1920x1080.png"], [390, 844, "25-consolidated-phone-book.png"]]) {
      await p9.setViewportSize({ width: w, height: h });
      if (w <= 900) await p9.click('.tabs .tab[data-tab="book"]');
      await p9.waitForTimeout(700);
      const m = await layout(p9);
      log(`consolidated, ${describe(m)}`);
      // Every Venue cell whole ("consolidated" too: strict since the column fits it, styles.css);
      // on a phone the list is in the Markets tab.
      if (w <= 900) {
        await p9.click('.tabs .tab[data-tab="list"]');
        await p9.waitForTimeout(300);
      }
      const cut = await venueCellsCut();
      if (w <= 900) {
        if (!(await p9.isVisible(`.wl tbody tr[data-id="${consolidatedId}"] td.venue`))) errs.push(`${w}x${h}: the Venue cell of ${consolidatedId} is not shown in Markets`);
        await p9.click('.tabs .tab[data-tab="book"]');
        await p9.waitForTimeout(300);
      }
      for (const c of cut) errs.push(`${w}x${h}: the Venue cell of ${c.id} cut off: ${JSON.stringify(c)}`);
      try {
        usable(m, `consolidated ${w}x${h}`);
      } catch (e) {
        errs.push(e.message);
      }
      const t = await tagsWhole();
      if (t.tagsShown === 0) errs.push(`${w}x${h}: no venue tags shown`);
      if (t.cut.length > 0 || t.outOfCell.length > 0 || t.outOfHeader.length > 0) errs.push(`${w}x${h}: venue tags cut off: ${JSON.stringify(t)}`);
      // The Total column gives way to the Venues below 1800 px, and comes back from it.
      if ((w >= 1800) !== (t.cum !== "none")) errs.push(`${w}x${h}: the Total column is display ${t.cum}`);
      if (!(await p9.isVisible(".inst-members"))) errs.push(`${w}x${h}: the members line is not shown`);
      if (shot) await p9.screenshot({ path: join(artifacts, shot) });
    }
    if (errs.length > 0) throw new Error(errs.join("; "));
    await p9.close();
  });

  await check("frames lost in transit are detected as gaps and resynced (second tab, proxied socket)", async () => {
    // A second tab whose WebSocket goes through Playwright, which drops a few server frames:
    // the deltas after them no longer follow on, so the client must see the breaks, ask for
    // resyncs, and come back to a whole, uncrossed book on its own.
    const p2 = await ctx.newPage();
    p2.on("pageerror", (e) => pageErrors.push(`tab 2: ${e.message}`));
    let drop = 0;
    let dropped = 0;
    let toPage; // the page's side of the proxied socket, to send it a frame of our own
    await p2.routeWebSocket(/\/ws$/, (ws) => {
      toPage = ws;
      const server = ws.connectToServer();
      ws.onMessage((m) => server.send(m));
      server.onMessage((m) => {
        if (drop > 0 && typeof m !== "string") {
          drop--;
          dropped++;
          return;
        }
        ws.send(m);
      });
    });
    await p2.goto(`${base}/${signIn}`);
    const breaks = async () => (await p2.textContent(".status"))?.match(/breaks(\d+) · resyncs (\d+)/);
    await waitFor("tab 2 connected with a book", async () => {
      const b = await p2.$(".ladder .side.bids .lvl .price");
      return (await p2.getAttribute("body", "data-conn")) === "connected" && b && (await b.textContent()) !== "";
    }, 20_000);
    await p2.waitForTimeout(1000);
    const before = await breaks();
    if (!before || before[1] !== "0") throw new Error(`breaks before dropping: ${before?.[0]}`);
    drop = 3;
    const m = await waitFor("breaks and resyncs on screen", async () => {
      const b = await breaks();
      return b && Number(b[1]) > 0 && Number(b[2]) > 0 ? b : null;
    }, 10_000);
    log(`dropped ${dropped} frames: status says "${m[0]}"`);
    await waitFor("every stream back in sync (no RESYNC badge, book synced)", async () => {
      const unsynced = await p2.$(".ladder.unsynced");
      const badges = await p2.$$(".wl .badge.resync");
      return !unsynced && badges.length === 0;
    }, 15_000);
    await p2.screenshot({ path: join(artifacts, "5-after-gap.png") });

    // The feed's StreamStatus AWAITING_SNAPSHOT for the focused book (its copy broke; PROTOCOL.md
    // §6.6), sent to the page through the proxy as the feed would: the ladder keeps the last book,
    // dimmed, and says "awaiting snapshot"; the row has a WAIT badge. Subscribing the book again
    // (focus away and back: a new Subscribed and snapshot) ends it.
    const handle = await p2.evaluate(() => {
      const tw = window.__tickwire;
      for (const [h, sub] of tw.client.byHandle) if (sub.id === tw.store.focus && sub.channels.has(2)) return h;
      return 0;
    });
    if (!handle) throw new Error("no handle for the focused book");
    toPage.send(serverFrameStreamStatus(handle, 2 /* BOOK */, "the feed missed an event of this instrument (e2e)"));
    await waitFor("the ladder awaiting its snapshot, the row marked", async () =>
      (await p2.getAttribute(".ladder", "data-book")) === "awaiting" &&
      /awaiting snapshot/.test((await p2.textContent(".ladder .panel-head")) ?? "") &&
      (await p2.textContent(".ladder .panel-note")) === "awaiting snapshot · not live" &&
      (await p2.textContent(".wl tbody tr.focused .badge")) === "WAIT", 5000);
    const kept = await p2.textContent(".ladder .side.bids .lvl .price");
    if (!kept) throw new Error("the last book is not kept while awaiting its snapshot");
    await p2.screenshot({ path: join(artifacts, "15-book-awaiting-snapshot.png") });
    await p2.keyboard.press("ArrowDown");
    await sleep(300);
    await p2.keyboard.press("ArrowUp");
    await waitFor("the book live again after its snapshot", async () => (await p2.getAttribute(".ladder", "data-book")) === "live" && (await p2.textContent(".wl tbody tr.focused .badge")) !== "WAIT", 10_000);
    await p2.close();
  });

  const stats = () => page.evaluate(() => ({ ...window.__tickwire.stats }));
  const gapMarkers = async () => Number((await page.getAttribute(".chart", "data-gap-markers")) ?? "0");
  let before;

  await check("a stopped feed shows as disconnected and stale", async () => {
    // Ingest stops first: with the feed's embedded NATS gone it would fail to publish and start
    // new epochs (data lost upstream, which the page would rightly mark as gaps). Here nothing is
    // lost, so every stream must come back by resuming, without a snapshot or a gap marker.
    await stopIngest();
    await sleep(300); // the last events reach the page
    before = await stats();
    await stop("feed");
    await waitFor("data-conn != connected", async () => (await page.getAttribute("body", "data-conn")) !== "connected", 10_000);
    await waitFor("the status bar to say so", async () => /Disconnected|Connecting/.test((await page.textContent(".status .conn-text")) ?? ""), 5000);
    await waitFor("stale badges", async () => (await page.$$(".wl .badge.stale")).length >= 10, 10_000);
    if (!(await page.$(".ladder.unsynced"))) throw new Error("the ladder still shows a book kept from the lost connection as in sync");
    await page.screenshot({ path: join(artifacts, "3-disconnected.png") });
  });

  await check("the feed restarted on the same store: the page resumes every stream from its position, no snapshot, no gap marker", async () => {
    await startFeed();
    await waitFor("data-conn = connected", async () => (await page.getAttribute("body", "data-conn")) === "connected", 30_000);
    const after = await waitFor("streams resumed", async () => {
      const st = await stats();
      return st.resumed > before.resumed ? st : null;
    }, 10_000);
    await waitFor("the ladder back in sync", async () => !(await page.$(".ladder.unsynced")), 5000);
    await sleep(500);
    const st = await stats();
    const resumed = st.resumed - before.resumed;
    const snapshots = st.snapshots - before.snapshots;
    log(`resumed ${resumed} streams; snapshots since the restart ${snapshots} (history gone ${st.historyGone}, new epochs ${st.newEpochs}); gap markers ${await gapMarkers()}`);
    // Every stream of the 23 instruments (quote, stats) and the focused one's book, trades, bars.
    const n = (await page.evaluate(() => window.__tickwire.store.order)).length;
    if (resumed < n * 2 + 3) throw new Error(`only ${resumed} streams resumed of ${n} instruments' ${n * 2 + 3}`);
    if (snapshots !== 0) throw new Error(`${snapshots} snapshots after the restart: streams were rebuilt, not resumed`);
    if ((await gapMarkers()) !== 0) throw new Error(`gap markers on the chart: ${await gapMarkers()}`);
    if (st.gaps + st.checksum + st.epochs !== before.gaps + before.checksum + before.epochs) throw new Error(`breaks after the restart: ${JSON.stringify(st)}`);
    void after;
  });

  await check("ingest back: prices move again, the book is whole and uncrossed", async () => {
    startIngest();
    await waitFor("stale badges to clear", async () => (await page.$$(".wl .badge.stale")).length < 3, 20_000);
    const before = await lasts();
    await sleep(3000);
    const after = await lasts();
    const moved = Object.keys(after).filter((id) => before[id] !== after[id]).length;
    if (moved < 3) throw new Error(`only ${moved} instruments moved in 3 s after the restart`);
    const { bid, ask } = await bestPrices();
    if (!(bid && ask && mantissa(bid) < mantissa(ask))) throw new Error(`book after restart: bid "${bid}", ask "${ask}"`);
    log(`after ingest restart: ${JSON.stringify(await stats())}, gap markers ${await gapMarkers()}`);
    await page.screenshot({ path: join(artifacts, "4-recovered.png") });
  });

  await check("the 5m chart backfills from /api/candles", async () => {
    const asked = page.waitForResponse((r) => r.url().includes("/api/candles") && r.url().includes("interval=300"), { timeout: 10_000 });
    await page.click('.chart .iv[data-iv="300"]');
    const r = await asked;
    if (r.status() !== 200) throw new Error(`/api/candles answered ${r.status()}: ${await r.text()}`);
    const body = await r.json();
    await waitFor("history state ok", async () => (await page.getAttribute(".chart", "data-history")) === "ok", 10_000);
    const hist = Number(await page.getAttribute(".chart", "data-history-bars"));
    const bars = Number(await page.getAttribute(".chart", "data-bars"));
    const note = await page.textContent(".chart .chart-note");
    log(`5m: ${r.url().replace(base, "")} gave ${body.candles?.length ?? 0} bars, chart has ${bars}; note "${note}"`);
    if (!(hist >= 1 && hist === (body.candles?.length ?? 0))) throw new Error(`history bars ${hist}, response ${body.candles?.length}`);
    if (bars < 1) throw new Error("no bars on the 5m chart");
    if (!/history/.test(note ?? "")) throw new Error(`history note "${note}"`);
    await page.screenshot({ path: join(artifacts, "6-5m-history.png") });
    await page.click('.chart .iv[data-iv="1"]');
  });

  await check("4h and 1D: keys 5 and 6 pick them, each backfills from /api/candles and shows bars; 1 goes back to 1s (issue 12)", async () => {
    await page.evaluate(() => document.activeElement?.blur?.());
    for (const [key, iv] of [["5", 14400], ["6", 86400]]) {
      const asked = page.waitForResponse((r) => r.url().includes("/api/candles") && r.url().includes(`interval=${iv}&`), { timeout: 10_000 });
      await page.keyboard.press(key);
      const r = await asked;
      if (r.status() !== 200) throw new Error(`/api/candles interval ${iv} answered ${r.status()}: ${await r.text()}`);
      const body = await r.json();
      await waitFor(`the ${iv} s interval active with history`, async () =>
        (await page.getAttribute(`.chart .iv[data-iv="${iv}"]`, "class")).includes("active") && (await page.getAttribute(".chart", "data-history")) === "ok", 10_000);
      const bars = await waitFor(`bars on the ${iv} s chart`, async () => Number(await page.getAttribute(".chart", "data-bars")), 10_000);
      const legend = await page.textContent(".chart .chart-legend .lg-time");
      log(`key ${key}: ${r.url().replace(base, "")} gave ${body.candles?.length ?? 0} bars, chart has ${bars}; legend "${legend}"; note "${await page.getAttribute(`.chart .iv[data-iv="${iv}"]`, "title")}"`);
      if (iv === 86400 && !/^\d{4}-\d\d-\d\d UTC$/.test(legend ?? "")) throw new Error(`1D legend time "${legend}"`);
      await page.screenshot({ path: join(artifacts, `6b-${key === "5" ? "4h" : "1D"}.png`) });
    }
    await page.keyboard.press("1");
    await waitFor("back on 1s", async () => (await page.getAttribute('.chart .iv[data-iv="1"]', "class")).includes("active"), 5000);
  });

  await check("a replay session opened from the dashboard's form: banner, moving replay clock, watchlist, speed, seek, pause and resume; a fresh page on the finished session shows its end state (issue 12, item 2)", async () => {
    // DOM clicks: Playwright's click waits for animation frames, which a busy tab on a loaded
    // machine gives few (the tab is not what is tested there).
    const tap = (sel) => p3.$eval(sel, (b) => b.click());
    // The live page's Replay… form gives the exact tickctl command (window resolved to UTC, the
    // signed-in subject as controller) and the link; the test runs the command as an operator
    // would (plus this run's NATS flags).
    // In one round trip, with DOM events: the live tab is busy painting the market, and each
    // Playwright action waits for it (for animation frames too, which a loaded machine gives few).
    // The feed starts sessions itself (--replay-start: checked below); here it answers 501, as
    // a feed without --replay-start does, and the form falls back to the command and the link.
    await page.route("**/api/replays", (r) =>
      r.fulfill({ status: 501, contentType: "application/json", body: '{"code":"not_enabled","message":"this feed does not start replay sessions (feed --replay-start); an operator runs: tickctl replay"}\n' }),
    );
    await page.evaluate(() => {
      document.querySelector(".rf-open").click();
      const set = (sel, v) => {
        const e = document.querySelector(sel);
        e.value = v;
        e.dispatchEvent(new Event("input", { bubbles: true }));
      };
      set(".rf-from", "-45s");
      set(".rf-to", "-3s");
      set(".rf-speed", "5");
      set(".rf-session", "e2e-replay");
      document.querySelector(".rf-go").click();
    });
    const { cmd, link, note } = await waitFor("the form's answer to a 501: the command and the link", async () =>
      page.evaluate(() => {
        const f = document.querySelector(".replay-form");
        if (f.dataset.state === "invalid") return { cmd: `(none: ${document.querySelector(".rf-error").textContent})` };
        return f.dataset.state === "command" ? { cmd: f.dataset.command, link: f.dataset.link, note: document.querySelector(".rf-note").textContent } : null;
      }), 10_000, 100);
    await page.unroute("**/api/replays");
    log(`replay form: ${cmd}; note "${note}"`);
    if (!/does not start replays \(501\)/.test(note ?? "")) throw new Error(`the form's note on a 501: ${note}`);
    if (!/^tickctl replay --from \S+Z --to \S+Z --speed 5 --session e2e-replay --controller e2e --feed-url \S+$/.test(cmd)) throw new Error(`form command: ${cmd}`);
    if (link !== `${base}/?replay=e2e-replay`) throw new Error(`form link: ${link}`);
    await page.$eval(".rf-open", (b) => b.click()); // closes it
    const tc = start("tickctl", "bin/tickctl", [...cmd.split(" ").slice(1), "--nats-url", `nats://127.0.0.1:${natsPort}`, ...natsAuth]);
    await waitFor("tickctl replay to start", async () => tc.text.includes("?replay=e2e-replay") || (tc.exitCode !== null ? Promise.reject(new Error(`tickctl exited ${tc.exitCode}`)) : false), 10_000, 100);
    // The replayer's own clock and speed (over NATS, not through a browser that may lag).
    const serverStatus = () =>
      new Promise((res, rej) =>
        execFile(join(root, "bin/tickctl"), ["replay-control", "--session", "e2e-replay", "--nats-url", `nats://127.0.0.1:${natsPort}`, ...natsAuth, "status"], { encoding: "utf8", timeout: 15_000 }, (e, out) => {
          if (e) return rej(e);
          out = String(out);
          const m = /(RUNNING|PAUSED|FINISHED) at (\S+), speed ([\d.]+|max)/.exec(out);
          if (!m) return rej(new Error(`replay-control status: ${out}`));
          res({ state: m[1], clockMs: Date.parse(m[2]), speed: m[3], wallMs: Date.now() });
        }),
      );
    const p3 = await ctx.newPage();
    p3.on("pageerror", (e) => pageErrors.push(`replay tab: ${e.message}`));
    p3.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(`replay tab console: ${m.text()}`);
    });
    await p3.goto(`${link}${signIn}`);
    const banner = async () => ({
      text: (await p3.textContent(".replay-bar")) ?? "",
      clock: BigInt((await p3.getAttribute(".replay-bar", "data-clock-ns")) || "0"),
      state: await p3.getAttribute(".replay-bar", "data-state"),
    });
    await waitFor("the banner with the session and a clock", async () => {
      const b = await banner();
      return b.text.includes("REPLAY") && b.text.includes("e2e-replay") && b.clock > 0n;
    }, 15_000);
    // Slow it to 1x and seek back to its start, which also exercises both controls.
    await tap('.replay-speed[data-speed="1"]');
    await waitFor("speed 1x active", async () => (await p3.$('.replay-speed.active[data-speed="1"]')) !== null, 5000);
    const box = await p3.locator(".replay-progress").boundingBox();
    const from = BigInt(await p3.evaluate(() => window.__tickwire.store.replayStatus.fromNs.toString()));
    const to = BigInt(await p3.evaluate(() => window.__tickwire.store.replayStatus.toNs.toString()));
    // The seek starts a new generation: wait for it, not just for a clock near the start, which
    // the session may still show from before the seek, and would then be set back by the seek
    // between the two clock readings below.
    const generation = async () => Number(await p3.evaluate(() => window.__tickwire.store.replayStatus.generation ?? 0));
    const genBefore = await generation();
    // Until the new generation's snapshots arrive (the replayer first reads a minute of
    // lookback: seconds on a loaded machine) no row may turn STALE (issue 12: every row did).
    const staleSeen = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const n = await p3.$$eval(".wl .badge.stale", (es) => es.length).catch(() => 0);
        if (n > 0) staleSeen.push(n);
        await sleep(100);
      }
    })();
    await p3.mouse.click(box.x + box.width * 0.05, box.y + box.height / 2);
    await waitFor("the seek: a new generation, running near the window start", async () => {
      const b = await banner();
      return (await generation()) > genBefore && b.state === "running" && b.clock < from + (to - from) / 3n;
    }, 8000);
    // The clock moves once the new generation's first events are published. Then it moves at 1x.
    const c1 = (await banner()).clock;
    const seekAt = Date.now();
    let c2 = c1;
    await waitFor("the replay clock to move after the seek", async () => {
      c2 = (await banner()).clock;
      return c2 > c1;
    }, 15_000);
    log(`replay clock moved ${Number(c2 - c1) / 1e6} ms, ${Date.now() - seekAt} ms after the seek at 1x: "${(await p3.textContent(".replay-clock"))}"`);
    // Rebuilt at the new clock: quotes, the book, the tape and the chart of the focused instrument.
    const view = () =>
      p3.evaluate(() => {
        const t = window.__tickwire;
        const rep = t.client.subs.get(t.store.focus)?.replica;
        const rows = {};
        for (const r of document.querySelectorAll(".wl tbody tr")) rows[r.dataset.id] = `${r.querySelector(".bid")?.textContent ?? ""}/${r.querySelector(".ask")?.textContent ?? ""}`;
        return {
          focus: t.store.focus,
          bid: rep?.book.bids[0]?.price.toString() ?? "",
          ask: rep?.book.asks[0]?.price.toString() ?? "",
          ladder: document.querySelectorAll(".ladder .lvl:not(.head) .price:not(:empty)").length,
          tape: [...document.querySelectorAll(".tape .trade:not(.head) .price")].filter((e) => e.textContent).length,
          bars: Number(document.querySelector(".chart")?.dataset.bars ?? 0),
          last: document.querySelector(".inst-last")?.textContent ?? "",
          quoted: Object.values(rows).filter((v) => /\d/.test(v)).length,
          rows,
        };
      });
    const rebuilt = await waitFor("book, quotes, tape and chart after the seek", async () => {
      const v = await view();
      return v.quoted >= 10 && v.bid && v.ask && v.ladder >= 2 && v.tape >= 1 && v.bars >= 1 ? v : null;
    }, 10_000);
    sampling = false;
    await sampler;
    if (staleSeen.length > 0) throw new Error(`rows STALE after the seek (${staleSeen.slice(0, 5).join(", ")} rows at samples)`);
    log(`after the seek: ${rebuilt.quoted} rows quoted, book ${rebuilt.bid}/${rebuilt.ask}, tape ${rebuilt.tape}, bars ${rebuilt.bars}, last ${rebuilt.last}`);
    const lat = await p3.textContent(".status");
    if (!/n\/a in replay/.test(lat ?? "")) throw new Error(`latency not labelled in replay: ${lat}`);
    // The speed takes: the replayer answers with the new speed (the banner shows the status it
    // sends), and its clock advances at that rate (asked over NATS, not through a browser that
    // may lag behind on a loaded machine; not measured if the window ends meanwhile).
    await p3.$eval('.replay-speed[data-speed="5"]', (b) => b.click());
    await waitFor("speed 5x in the replayer's status", async () => (await p3.evaluate(() => window.__tickwire.store.replayStatus.speed)) === 5 && (await p3.$('.replay-speed.active[data-speed="5"]')) !== null, 10_000);
    const a5 = await serverStatus();
    await sleep(2000);
    const b5 = await serverStatus();
    if (a5.speed !== "5" || b5.speed !== "5") throw new Error(`the replayer's speed is ${a5.speed}, ${b5.speed}, not 5`);
    if (a5.state === "RUNNING" && b5.state === "RUNNING") {
      const r5 = (b5.clockMs - a5.clockMs) / (b5.wallMs - a5.wallMs);
      log(`replayer clock rate at 5x: ${r5.toFixed(2)}`);
      if (!(r5 > 2.5)) throw new Error(`at 5x the replay clock advanced ${r5.toFixed(2)} s per s`);
    } else log(`replayer clock rate at 5x not measured: ${a5.state}, ${b5.state}`);
    await p3.$eval('.replay-speed[data-speed="1"]', (b) => b.click());
    await p3.screenshot({ path: join(artifacts, "7-replay.png") });

    if ((await p3.getAttribute(".replay-bar", "data-control")) !== "controller") throw new Error("a replay_control token is not shown as a controller");
    if ((await banner()).state === "finished") await tap(".replay-toggle"); // restart
    await waitFor("running", async () => (await banner()).state === "running", 5000);
    await tap(".replay-toggle");
    await waitFor("paused", async () => (await banner()).state === "paused", 5000);
    await sleep(1200); // an event already on its way at the pause may still move the clock once
    const p1 = (await banner()).clock;
    await sleep(1500);
    const p2 = (await banner()).clock;
    if (p2 !== p1) throw new Error(`clock moved while paused: ${p1} -> ${p2}`);
    if ((await p3.$$(".wl .badge.stale")).length > 0) throw new Error("stale badges on a paused replay (stale must follow the replay clock)");
    await p3.screenshot({ path: join(artifacts, "8-replay-paused.png") });
    await tap(".replay-toggle");
    await waitFor("running again", async () => (await banner()).state === "running", 5000);
    // The clock moves with the next published event or status (a second apart), later on a
    // loaded machine; a window that ran out meanwhile ends FINISHED at its end, past p2 too.
    await waitFor("the clock moving again", async () => (await banner()).clock > p2, 15_000);
    await p3.setViewportSize({ width: 420, height: 900 });
    await p3.waitForTimeout(600);
    await p3.screenshot({ path: join(artifacts, "10-replay-narrow.png") });
    const overflow = await p3.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 2) throw new Error(`replay page is ${overflow}px wider than a 420px screen`);
    await p3.setViewportSize({ width: 1440, height: 900 });

    // Play it through to the end (as fast as possible), then open a fresh page on the finished
    // session once this one has left: it must show the same state at the end (issue 12: the
    // printed link opened an empty dashboard).
    await tap('.replay-speed[data-speed="0"]');
    await waitFor("the window played through", async () => (await banner()).state === "finished", 20_000);
    let updates = -1;
    await waitFor("the played-through page settled", async () => {
      await sleep(700);
      const u = await p3.evaluate(() => window.__tickwire.store.updates);
      const settled = u === updates;
      updates = u;
      return settled;
    }, 15_000, 0);
    await sleep(300); // the ladder repaints at most every 50 ms
    const end = await view();
    // Both pages were opened on the fragment's instrument. This page joined the session when
    // the feed followed it afresh, so the first list could lack it: it must be focused once
    // listed, not whichever came first (CI once saw consolidated:ACME here).
    if (end.focus !== firstFocus) throw new Error(`the played-through page focuses ${end.focus}, not the fragment's ${firstFocus}`);
    await p3.close();
    const p5 = await ctx.newPage();
    p5.on("pageerror", (e) => pageErrors.push(`fresh replay tab: ${e.message}`));
    await p5.goto(`${link}${signIn}`);
    const fresh = await waitFor("a fresh page on the finished session shows its book and quotes", async () => {
      if ((await p5.getAttribute(".replay-bar", "data-state")) !== "finished") return null;
      const v = await p5.evaluate(() => window.__tickwire.store.focus) === end.focus ? await (async () => {
        const t = await p5.evaluate(() => {
          const t = window.__tickwire;
          const rep = t.client.subs.get(t.store.focus)?.replica;
          const rows = {};
          for (const r of document.querySelectorAll(".wl tbody tr")) rows[r.dataset.id] = `${r.querySelector(".bid")?.textContent ?? ""}/${r.querySelector(".ask")?.textContent ?? ""}`;
          return {
            bid: rep?.book.bids[0]?.price.toString() ?? "",
            ask: rep?.book.asks[0]?.price.toString() ?? "",
            ladder: document.querySelectorAll(".ladder .lvl:not(.head) .price:not(:empty)").length,
            tape: [...document.querySelectorAll(".tape .trade:not(.head) .price")].filter((e) => e.textContent).length,
            bars: Number(document.querySelector(".chart")?.dataset.bars ?? 0),
            last: document.querySelector(".inst-last")?.textContent ?? "",
            rows,
          };
        });
        return t;
      })() : null;
      return v && v.bid === end.bid && v.ask === end.ask && v.ladder >= 2 && Object.keys(end.rows).every((id) => v.rows[id] === end.rows[id]) ? v : null;
    }, 15_000).catch(async (e) => {
      const v = await p5.evaluate(() => [...document.querySelectorAll(".wl tbody tr")].slice(0, 3).map((r) => r.textContent)).catch(() => []);
      // What differs: the focus, the focused book, the ladder, the rows that do not match.
      const f = await p5
        .evaluate(() => {
          const t = window.__tickwire;
          const rep = t.client.subs.get(t.store.focus)?.replica;
          const rows = {};
          for (const r of document.querySelectorAll(".wl tbody tr")) rows[r.dataset.id] = `${r.querySelector(".bid")?.textContent ?? ""}/${r.querySelector(".ask")?.textContent ?? ""}`;
          return { focus: t.store.focus, bid: rep?.book.bids[0]?.price.toString() ?? "", ask: rep?.book.asks[0]?.price.toString() ?? "", ladder: document.querySelectorAll(".ladder .lvl:not(.head) .price:not(:empty)").length, state: document.querySelector(".replay-bar")?.dataset.state, rows };
        })
        .catch((x) => ({ error: String(x) }));
      const differ = f.rows ? Object.keys(end.rows).filter((id) => f.rows[id] !== end.rows[id]).map((id) => `${id}: ${end.rows[id]} vs ${f.rows[id]}`) : [];
      throw new Error(`${e.message}; played through: focus ${end.focus}, book ${end.bid}/${end.ask}, rows ${JSON.stringify(Object.entries(end.rows).slice(0, 3))}; fresh page rows ${JSON.stringify(v)}; fresh page: focus ${f.focus}, book ${f.bid}/${f.ask}, ladder ${f.ladder}, state ${f.state} ${f.error ?? ""}; rows that differ (played through vs fresh): ${differ.slice(0, 8).join("; ")}`);
    });
    log(`finished session, played through vs fresh page: book ${end.bid}/${end.ask} both; last "${end.last}" vs "${fresh.last}", tape ${end.tape} vs ${fresh.tape} trades, chart ${end.bars} vs ${fresh.bars} bars`);
    if (fresh.last !== end.last || fresh.tape === 0) {
      // A (re)joined session's chains start with reference data, a book snapshot and (since
      // 0660b8a) the recent trades as history trades: the last and the tape should match now.
      const lacks = [fresh.last !== end.last && "last", fresh.tape === 0 && "tape"].filter(Boolean);
      log(`KNOWN GAP (a fresh page on a finished replay session): it lacks the played-through page's ${lacks.join(", ")}`);
    }
    // The bars before the clock are not replayed: the 1 s chart asks /api/candles?interval=1 for
    // the 300 s up to the replay clock (the feed reads them from its event store).
    const hist = await waitFor("the fresh page's 1 s chart loaded its history up to the replay clock", async () => {
      const h = await p5.evaluate(() => {
        const c = document.querySelector(".chart");
        return { state: c?.dataset.history, hist: Number(c?.dataset.historyBars ?? 0), bars: Number(c?.dataset.bars ?? 0), note: c?.querySelector(".chart-note")?.textContent ?? "", iv: c?.querySelector(".iv.active")?.dataset.iv };
      });
      if (h.state === "error") throw new Error(`history refused: "${h.note}"`);
      // "none": the replica's own 1 s bars already reach back over the window (nothing to ask).
      return (h.state === "ok" || h.state === "none") && h.bars > 0 ? h : null;
    }, 15_000);
    log(`fresh page's 1 s chart (interval ${hist.iv}): ${hist.hist} stored 1 s bars up to the replay clock, ${hist.bars} bars drawn; note "${hist.note}"`);
    if (hist.iv !== "1" || (hist.state === "ok" && hist.hist === 0)) throw new Error(`fresh page's chart: interval ${hist.iv}, ${hist.hist} history bars`);
    await p5.screenshot({ path: join(artifacts, "11-replay-fresh-finished.png") });
    await p5.close();
  });

  await check("a replay watcher who is no controller: 'watching only', no working controls, and a control sent anyway is refused in the banner", async () => {
    // The session names no controllers (tickctl replay without --controller or --token), and
    // this token may watch replays but not control them.
    const watchTok = await mint(["--sub", "e2e-watch", "--instruments", "*", "--replay", "--ttl", "10m"]);
    minted.push(watchTok);
    const p7 = await ctx.newPage();
    p7.on("pageerror", (e) => pageErrors.push(`watcher tab: ${e.message}`));
    await p7.goto(`${base}/?replay=e2e-replay#token=${watchTok}`);
    await waitFor("watching only", async () => (await p7.getAttribute(".replay-bar", "data-control")) === "watching" && (await p7.isVisible(".replay-watching")), 15_000);
    const disabled = await p7.$$eval(".replay-toggle, .replay-speed, .replay-seek", (es) => es.every((e) => e.disabled));
    if (!disabled) throw new Error("a watcher's replay controls are enabled");
    // The feed decides: a ReplayControl sent anyway (as a modified page would) is refused, and said.
    await p7.evaluate(() => window.__tickwire.client.replayControl({ case: "pause", value: true }));
    const said = await waitFor("the refusal in the banner", async () => {
      const t = await p7.textContent(".replay-error");
      return /^watching only/.test(t ?? "") ? t : null;
    }, 5000);
    log(`watcher banner: "${said}"`);
    await p7.close();
  });

  await check("an unknown replay session is said plainly (404)", async () => {
    const p4 = await ctx.newPage();
    await p4.goto(`${base}/?replay=no-such-session${signIn}`);
    await waitFor("the 404 message", async () => /No replay session "no-such-session".*404/.test((await p4.textContent(".replay-error")) ?? ""), 10_000);
    await p4.screenshot({ path: join(artifacts, "9-replay-404.png") });
    await p4.close();
    await stop("tickctl");
  });

  // A tab signed in as the live page is: Replay…, a window, Go, and the page is on the session.
  const replayTab = async (tok, name) => {
    const p = await ctx.newPage();
    p.on("pageerror", (e) => pageErrors.push(`${name}: ${e.message}`));
    p.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(`${name} console: ${m.text()} (${m.location()?.url ?? ""})`);
    });
    await p.goto(`${base}/#token=${tok}`);
    await waitFor(`${name}: the Replay… button`, async () => (await p.$(".rf-open")) !== null, 15_000);
    // DOM events in one round trip (a busy live tab gives Playwright's actions few frames).
    await p.evaluate(() => {
      document.querySelector(".rf-open").click();
      const set = (sel, v) => {
        const e = document.querySelector(sel);
        e.value = v;
        e.dispatchEvent(new Event("input", { bubbles: true }));
      };
      set(".rf-from", "-1m");
      set(".rf-to", "now");
      set(".rf-speed", "10");
      document.querySelector(".rf-go").click();
    });
    return p;
  };

  await check("the Replay… form's Go starts the session in the feed (POST /api/replays, --replay-start): the last minute at 10x, the page lands on /?replay=<id> signed in, the banner shows it running or finished with the book (issue 12)", async () => {
    const p = await replayTab(token, "started replay tab");
    const url = await waitFor("the page on /?replay=<id>", async () => (/\/\?replay=[a-z0-9-]+$/.test(p.url()) ? p.url() : null), 15_000, 100);
    if (!url.startsWith(`${base}/?replay=`) || url.includes("token=")) throw new Error(`landed on ${url}`);
    const id = new URL(url).searchParams.get("replay");
    const seen = await waitFor("the banner: the session running or finished, the book's rows", async () => {
      const v = await p.evaluate(() => ({
        text: document.querySelector(".replay-bar")?.textContent ?? "",
        state: document.querySelector(".replay-bar")?.dataset.state,
        control: document.querySelector(".replay-bar")?.dataset.control,
        error: document.querySelector(".replay-error")?.textContent ?? "",
        ladder: document.querySelectorAll(".ladder .lvl:not(.head) .price:not(:empty)").length,
        subject: document.querySelector(".who")?.dataset.subject,
      }));
      return (v.state === "running" || v.state === "finished") && v.text.includes(id) && v.ladder >= 1 ? v : null;
    }, 20_000);
    log(`started from the form: ${url.slice(base.length)}, ${seen.state}, control "${seen.control}", signed in as "${seen.subject}", ${seen.ladder} book rows`);
    if (seen.subject !== "e2e") throw new Error(`the replay page is signed in as "${seen.subject}", not e2e`);
    if (seen.control !== "controller") throw new Error(`the form's opener is not the session's controller: ${seen.control}`);
    await p.screenshot({ path: join(artifacts, "12-replay-started-from-form.png") });
    await p.close();
  });

  await check("a token without replay_control: Go shows the feed's 403 in the form, which stays open, and the page stays live (issue 12)", async () => {
    const noCtl = await mint(["--sub", "e2e-norc", "--instruments", "*", "--replay", "--ttl", "10m"]);
    minted.push(noCtl);
    const p = await replayTab(noCtl, "no-replay-control tab");
    const v = await waitFor("the 403 in the form", async () => {
      const v = await p.evaluate(() => ({
        error: document.querySelector(".rf-error")?.textContent ?? "",
        state: document.querySelector(".replay-form")?.dataset.state,
        open: !document.querySelector(".replay-form")?.hidden,
        box: (({ width, height }) => ({ width, height }))(document.querySelector(".replay-form").getBoundingClientRect()),
        goEnabled: !document.querySelector(".rf-go")?.disabled,
        command: document.querySelector(".rf-command")?.textContent ?? "",
        href: location.href,
      }));
      return v.state === "refused" ? v : null;
    }, 15_000, 100);
    log(`no replay_control: "${v.error}"; command shown: ${v.command.slice(0, 40)}…`);
    if (!/^Not entitled \(403\): .*replay_control/.test(v.error)) throw new Error(`form error: ${v.error}`);
    if (!v.open || !v.goEnabled) throw new Error(`the form after a 403: open ${v.open}, Go enabled ${v.goEnabled}`);
    // Seen, not only in the DOM: the panel's contain: strict once shrank the fixed form to 22 px.
    if (!(v.box.width >= 300 && v.box.height >= 150)) throw new Error(`the form is ${v.box.width}x${v.box.height} px`);
    if (!v.command.startsWith("tickctl replay ")) throw new Error(`no command as the alternative: ${v.command}`);
    if (new URL(v.href).search !== "" || new URL(v.href).pathname !== "/") throw new Error(`left the live page: ${v.href}`);
    await p.screenshot({ path: join(artifacts, "13-replay-form-403.png") });
    await p.close();
  });

  await check("no errors in the page", async () => {
    // The browser logs a failed WebSocket connect while the feed is down: expected.
    // So does a replay tab asking for a session that does not exist (404, on purpose).
    // And the Replay… form's refused starts: the 501 answered on purpose, the 403 of a token without replay_control.
    const real = pageErrors.filter((e) => !/WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|status of 404|status of (403|501) .*\/api\/replays/.test(e));
    if (real.length > 0) throw new Error(real.join("\n"));
  });

  await check("no token in the feed's log", async () => {
    const text = readFileSync(join(artifacts, "feed.log"), "utf8");
    const leaked = minted.filter((t) => text.includes(t) || text.includes(t.split(".")[2]));
    if (leaked.length > 0) throw new Error(`${leaked.length} tokens in feed.log`);
  });
}

const guard = setTimeout(() => {
  log(`overall timeout ${overallTimeoutMs} ms`);
  results.push({ name: "overall timeout", ok: false });
  cleanup().finally(() => process.exit(1));
}, overallTimeoutMs);

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

let failed = false;
try {
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} not found: apt-get install -y chromium`);
  for (const b of ["bin/feed", "bin/ingest", "bin/tickctl"]) {
    if (!existsSync(join(root, b))) throw new Error(`${b} missing: run make feed-ui build`);
  }
  await main();
} catch (e) {
  failed = true;
  if (!results.some((r) => !r.ok)) log(`error: ${e.stack ?? e}`);
  try {
    const pages = ctx?.pages() ?? [];
    for (const [i, p] of pages.entries()) await p.screenshot({ path: join(artifacts, i === 0 ? "failure.png" : `failure-tab${i + 1}.png`) });
  } catch {}
} finally {
  clearTimeout(guard);
  await cleanup();
}
const passed = results.filter((r) => r.ok).length;
const nfailed = results.length - passed + (failed && results.every((r) => r.ok) ? 1 : 0);
log(`screenshots and logs in ${artifacts}`);
console.log(`e2e: ${passed} passed, ${nfailed} failed`);
process.exit(failed || nfailed > 0 ? 1 : 0);

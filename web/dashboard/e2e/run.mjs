// Browser test of the dashboard against the real system, on loopback only.
//
// Starts bin/feed (built with -tags dashboard, so it serves the embedded UI) with an embedded
// NATS server on a temporary store and random free ports, and bin/ingest with the synthetic
// market; opens the dashboard in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core) and checks what a trader would see: the watchlist fills, prices move, the
// chart has candles, the book has both sides and never crosses, the keyboard works; then stops
// ingest and the feed (SIGTERM to their PIDs), checks the page says so, starts the feed again on
// the same store and checks the page resumes every stream from its position on its own (no
// snapshot, no gap marker), then ingest again and prices move. The 5m chart backfills from
// /api/candles. A replay session (bin/tickctl replay) is watched at /?replay=<session>: banner,
// moving replay clock, watchlist, speed, seek, pause and resume; an unknown session says so.
// Authentication is on, as in `make run`: the feed verifies tokens with an HS256 key made for
// the run, and every tab signs in with a token minted by bin/tickctl token, handed over in the
// URL fragment (#token=...), which the dashboard keeps in session storage and strips.
// Screenshots go to test-artifacts/dashboard/.
//
// Every process it starts is killed by PID on the way out, whatever happened.
//
// Usage (from the repository root, after `make feed-ui build`): node web/dashboard/e2e/run.mjs
// Env: CHROMIUM (default /usr/bin/chromium), E2E_KEEP=1 keeps the temporary store.

import { execFileSync, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const artifacts = join(root, "test-artifacts/dashboard");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
/** The whole run must end well within CI's browser stage budget (~3 min). */
const overallTimeoutMs = 150_000;
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

async function cleanup() {
  if (ctx) await ctx.close().catch(() => {});
  ctx = undefined;
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
  // Tokens: a key for this run, and a development token with every right (replay too).
  const keyFile = join(tmp, "feed-hs256.key");
  const token = execFileSync(join(root, "bin/tickctl"), ["token", "--key-file", keyFile, "--new-key", "--sub", "e2e",
    "--instruments", "*", "--replay", "--ttl", "1h"], { encoding: "utf8" }).trim();
  const signIn = `#token=${token}`;
  const feedArgs = [
    "--auth-hs256-key-file", keyFile,
    "--listen", `127.0.0.1:${httpPort}`,
    "--admin-listen", `127.0.0.1:${adminPort}`,
    "--embed-nats", "--nats-listen", `127.0.0.1:${natsPort}`,
    "--nats-data-dir", join(tmp, "nats"),
    ...natsAuth,
  ];
  // Ready means caught up with the event stream, which ingest creates: wait for health only.
  const startFeed = async () => {
    start("feed", "bin/feed", feedArgs);
    await waitFor("feed /healthz", async () => (await fetch(`${base}/healthz`)).ok, 30_000);
  };
  await startFeed();
  const startIngest = () =>
    start("ingest", "bin/ingest", [
      "--nats-url", `nats://127.0.0.1:${natsPort}`,
      ...natsAuth,
      "--source", "synthetic",
      "--synthetic-instruments", "20",
      "--synthetic-rate", "1000",
      "--metrics-listen=",
    ]);
  startIngest();

  await waitFor("feed /readyz", async () => (await fetch(`${base}/readyz`)).ok, 30_000);

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
    if (m.type() === "error") pageErrors.push(`console: ${m.text()}`);
  });
  // Nothing leaves loopback: abort any request to another host.
  await page.route((url) => !["127.0.0.1", "localhost"].includes(url.hostname), (r) => r.abort());
  await page.goto(`${base}/${signIn}`);

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

  await check("readable on a narrow screen", async () => {
    await page.setViewportSize({ width: 420, height: 900 });
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(artifacts, "2-narrow.png") });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 2) throw new Error(`page is ${overflow}px wider than a 420px screen`);
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  await check("frames lost in transit are detected as gaps and resynced (second tab, proxied socket)", async () => {
    // A second tab whose WebSocket goes through Playwright, which drops a few server frames:
    // the deltas after them no longer follow on, so the client must see the breaks, ask for
    // resyncs, and come back to a whole, uncrossed book on its own.
    const p2 = await ctx.newPage();
    p2.on("pageerror", (e) => pageErrors.push(`tab 2: ${e.message}`));
    let drop = 0;
    let dropped = 0;
    await p2.routeWebSocket(/\/ws$/, (ws) => {
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
    await p2.close();
  });

  const stats = () => page.evaluate(() => ({ ...window.__tickwire.stats }));
  const gapMarkers = async () => Number((await page.getAttribute(".chart", "data-gap-markers")) ?? "0");
  let before;

  await check("a stopped feed shows as disconnected and stale", async () => {
    // Ingest stops first: with the feed's embedded NATS gone it would fail to publish and start
    // new epochs (data lost upstream, which the page would rightly mark as gaps). Here nothing is
    // lost, so every stream must come back by resuming, without a snapshot or a gap marker.
    await stop("ingest");
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
    // Every stream of 20 instruments (quote, stats) and the focused one's book, trades, bars.
    if (resumed < 20 * 2 + 3) throw new Error(`only ${resumed} streams resumed`);
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

  await check("a replay session: banner, moving replay clock, watchlist, speed, seek, pause and resume", async () => {
    const tc = start("tickctl", "bin/tickctl", [
      "replay", "--nats-url", `nats://127.0.0.1:${natsPort}`, ...natsAuth,
      "--from", "-20s", "--to", "-3s", "--speed", "5", "--session", "e2e-replay", "--feed-url", base,
    ]);
    await waitFor("tickctl replay to start", async () => tc.text.includes("?replay=e2e-replay") || (tc.exitCode !== null ? Promise.reject(new Error(`tickctl exited ${tc.exitCode}`)) : false), 10_000, 100);
    const p3 = await ctx.newPage();
    p3.on("pageerror", (e) => pageErrors.push(`replay tab: ${e.message}`));
    p3.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(`replay tab console: ${m.text()}`);
    });
    await p3.goto(`${base}/?replay=e2e-replay${signIn}`);
    const banner = async () => ({
      text: (await p3.textContent(".replay-bar")) ?? "",
      clock: BigInt((await p3.getAttribute(".replay-bar", "data-clock-ns")) || "0"),
      state: await p3.getAttribute(".replay-bar", "data-state"),
    });
    await waitFor("the banner with the session and a clock", async () => {
      const b = await banner();
      return b.text.includes("REPLAY") && b.text.includes("e2e-replay") && b.clock > 0n;
    }, 15_000);
    // At 5x the 17 s window lasts under 4 s: slow it to 1x and seek back to its start, which
    // also exercises both controls.
    await p3.click('.replay-speed[data-speed="1"]');
    await waitFor("speed 1x active", async () => (await p3.$('.replay-speed.active[data-speed="1"]')) !== null, 5000);
    const box = await p3.locator(".replay-progress").boundingBox();
    const from = BigInt(await p3.evaluate(() => window.__tickwire.store.replayStatus.fromNs.toString()));
    const to = BigInt(await p3.evaluate(() => window.__tickwire.store.replayStatus.toNs.toString()));
    await p3.mouse.click(box.x + box.width * 0.05, box.y + box.height / 2);
    await waitFor("the seek: running near the window start", async () => {
      const b = await banner();
      return b.state === "running" && b.clock < from + (to - from) / 3n;
    }, 8000);
    const c1 = (await banner()).clock;
    await sleep(2200);
    const c2 = (await banner()).clock;
    if (!(c2 > c1)) throw new Error(`replay clock did not move: ${c1} -> ${c2}`);
    log(`replay clock moved ${Number(c2 - c1) / 1e6} ms in 2.2 s at 1x: "${(await p3.textContent(".replay-clock"))}"`);
    await waitFor("the replay watchlist fills", async () => {
      const n = await p3.$$eval(".wl tbody tr", (rows) => rows.filter((r) => /\d/.test(r.querySelector(".bid")?.textContent ?? "")).length);
      return n >= 10;
    }, 10_000);
    const lat = await p3.textContent(".status");
    if (!/n\/a in replay/.test(lat ?? "")) throw new Error(`latency not labelled in replay: ${lat}`);
    await p3.screenshot({ path: join(artifacts, "7-replay.png") });

    await p3.click(".replay-toggle");
    await waitFor("paused", async () => (await banner()).state === "paused", 5000);
    await sleep(1200); // an event already on its way at the pause may still move the clock once
    const p1 = (await banner()).clock;
    await sleep(1500);
    const p2 = (await banner()).clock;
    if (p2 !== p1) throw new Error(`clock moved while paused: ${p1} -> ${p2}`);
    if ((await p3.$$(".wl .badge.stale")).length > 0) throw new Error("stale badges on a paused replay (stale must follow the replay clock)");
    await p3.screenshot({ path: join(artifacts, "8-replay-paused.png") });
    await p3.click(".replay-toggle");
    await waitFor("running again", async () => (await banner()).state === "running", 5000);
    await waitFor("the clock moving again", async () => (await banner()).clock > p2, 5000);
    await p3.setViewportSize({ width: 420, height: 900 });
    await p3.waitForTimeout(600);
    await p3.screenshot({ path: join(artifacts, "10-replay-narrow.png") });
    const overflow = await p3.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 2) throw new Error(`replay page is ${overflow}px wider than a 420px screen`);
    await p3.close();
  });

  await check("an unknown replay session is said plainly (404)", async () => {
    const p4 = await ctx.newPage();
    await p4.goto(`${base}/?replay=no-such-session${signIn}`);
    await waitFor("the 404 message", async () => /No replay session "no-such-session".*404/.test((await p4.textContent(".replay-error")) ?? ""), 10_000);
    await p4.screenshot({ path: join(artifacts, "9-replay-404.png") });
    await p4.close();
    await stop("tickctl");
  });

  await check("no errors in the page", async () => {
    // The browser logs a failed WebSocket connect while the feed is down: expected.
    // So does a replay tab asking for a session that does not exist (404, on purpose).
    const real = pageErrors.filter((e) => !/WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|status of 404/.test(e));
    if (real.length > 0) throw new Error(real.join("\n"));
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

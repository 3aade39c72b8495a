// The status bar: connection state, end-to-end latency, update rate and stream breaks, in a
// trader's terms. Internal figures (the book stream's epoch / seq in the header: class
// raw-detail) show only with its "details" toggle on (body[data-details="on"]), kept in
// localStorage.

import type { Store } from "../app/store";
import { el, setClass, setText } from "./dom";

/** Where the "details" toggle is kept (localStorage: this browser, across reloads). */
export const detailsKey = "tickwire.details";

/** Whether the details are shown (off when storage is disabled or holds something else). */
export function loadDetails(storage: Pick<Storage, "getItem"> | undefined): boolean {
  try {
    return storage?.getItem(detailsKey) === "on";
  } catch {
    return false;
  }
}

export function saveDetails(storage: Pick<Storage, "setItem" | "removeItem"> | undefined, on: boolean): void {
  try {
    if (on) storage?.setItem(detailsKey, "on");
    else storage?.removeItem(detailsKey);
  } catch {
    // storage disabled: this page only
  }
}

function localStore(): Storage | undefined {
  try {
    return window.localStorage;
  } catch {
    return undefined;
  }
}

export class StatusView {
  readonly root: HTMLElement;
  private readonly dot = el("span", { class: "dot" });
  private readonly conn = el("span", { class: "conn-text" });
  private readonly detail = el("span", { class: "conn-detail muted" });
  private readonly latency = el("span", { class: "num" });
  private readonly latencyBox: HTMLElement;
  private readonly resumed = el("span", { class: "num" });
  private readonly feedLat = el("span", { class: "num" });
  private readonly rate = el("span", { class: "num" });
  private readonly breaks = el("span", { class: "num" });
  private lastUpdates = 0;
  private lastAt = 0;
  /** Shows or hides the raw details (the header's epoch / seq). */
  readonly detailsToggle: HTMLButtonElement;
  details = loadDetails(localStore());

  constructor(private readonly store: Store) {
    this.latencyBox = el(
      "span",
      {
        class: "kv",
        title: store.replay
          ? "Not meaningful in a replay: the events' ingest times are historical, so event-to-screen latency would be the age of the recording."
          : "End-to-end latency, event to screen: from when ingest received the event (ingest_time_ns on each delta) to the frame that painted it, median and 99th percentile over recent updates. Uses this computer's clock against the server's.",
      },
      el("span", { class: "k" }, "event→screen"),
      this.latency,
    );
    this.detailsToggle = el(
      "button",
      { class: "details-toggle", type: "button", title: "Technical details: the book stream's position (epoch / seq) in the instrument header" },
      "details",
    );
    this.detailsToggle.addEventListener("click", () => {
      this.setDetails(!this.details);
      saveDetails(localStore(), this.details);
    });
    this.setDetails(this.details);
    this.root = el(
      "footer",
      { class: "status", role: "status" },
      el("span", { class: "conn" }, this.dot, this.conn, this.detail),
      this.latencyBox,
      el(
        "span",
        { class: "kv hide-narrow", title: "From when the feed wrote the frame (send_time_ns) to when the browser decoded it: median and 99th percentile." },
        el("span", { class: "k" }, "feed→browser"),
        this.feedLat,
      ),
      el("span", { class: "kv", title: "Updates applied per second, all instruments" }, el("span", { class: "k" }, "upd/s"), this.rate),
      el(
        "span",
        { class: "kv", title: "Breaks detected (sequence gaps, checksum mismatches, new epochs) and resyncs asked for, since the page opened" },
        el("span", { class: "k" }, "breaks"),
        this.breaks,
      ),
      el(
        "span",
        {
          class: "kv hide-narrow",
          title:
            "Streams resumed from their position after a reconnect (nothing lost, no snapshot), and streams the feed could not resume (history gone: replaced by a snapshot, a gap on the chart)",
        },
        el("span", { class: "k" }, "resumed"),
        this.resumed,
      ),
      this.detailsToggle,
    );
  }

  /** Shows the raw details (body[data-details="on"]: styles.css shows .raw-detail) or hides them. */
  setDetails(on: boolean): void {
    this.details = on;
    this.detailsToggle.setAttribute("aria-pressed", String(on));
    if (on) document.body.dataset.details = "on";
    else delete document.body.dataset.details;
  }

  paint(now: number): void {
    const s = this.store;
    const label: Record<string, string> = {
      connected: "Connected",
      connecting: "Connecting…",
      disconnected: "Disconnected",
      closed: "Closed",
    };
    setText(this.conn, label[s.conn] ?? s.conn);
    for (const c of ["connected", "connecting", "disconnected", "closed"]) setClass(this.dot, c, s.conn === c);
    let detail = s.connDetail;
    if (s.conn !== "connected" && s.lostAtMs > 0) detail = `offline ${((Date.now() - s.lostAtMs) / 1000).toFixed(0)} s · ${detail}`;
    setText(this.detail, detail);
    const ms = (v: number) => (Number.isNaN(v) ? "—" : v < 10 ? v.toFixed(1) : v.toFixed(0));
    setText(this.latency, s.replay ? "n/a in replay" : `${ms(s.toScreen.quantile(0.5))} / ${ms(s.toScreen.quantile(0.99))} ms`);
    setText(this.feedLat, `${ms(s.feedToBrowser.quantile(0.5))} / ${ms(s.feedToBrowser.quantile(0.99))} ms`);
    if (this.lastAt > 0 && now > this.lastAt) {
      setText(this.rate, ((s.updates - this.lastUpdates) * 1000 / (now - this.lastAt)).toFixed(0));
    }
    this.lastUpdates = s.updates;
    this.lastAt = now;
    const st = s.client.stats;
    setText(this.breaks, `${st.gaps + st.checksum + st.epochs} · resyncs ${st.resyncs}`);
    setText(this.resumed, st.historyGone > 0 ? `${st.resumed} · gone ${st.historyGone}` : String(st.resumed));
    document.body.dataset.conn = s.conn;
  }
}

// The focused instrument's header: name, last, change, session range, VWAP, volume, position in
// its sequence (a raw detail: only with the status bar's "details" on), and its honesty badges (live, stale, resyncing). A consolidated instrument says
// so and lists its members, each tagged as the ladder tags its venues.

import type { Store } from "../app/store";
import { formatCompact, formatDecimal, formatPercentChange, formatSigned } from "@tickwire/client";
import { Channel } from "@tickwire/client";
import { memberTags } from "../market/venues";
import { el, flash, setClass, setText } from "./dom";
import { paintVenueTags } from "./venues";

export class HeaderView {
  readonly root: HTMLElement;
  private readonly name = el("span", { class: "inst-name" });
  private readonly sub = el("span", { class: "inst-sub" });
  private readonly last = el("span", { class: "inst-last num" });
  private readonly chg = el("span", { class: "inst-chg num" });
  private readonly badge = el("span", { class: "badge" });
  /** "Consolidated of" and the members' tags; hidden unless the instrument has members. */
  private readonly members = el("span", { class: "inst-members-list" });
  private readonly consolidated = el(
    "div",
    { class: "inst-members", title: "A consolidated book: one asset's books from these venues, merged" },
    el("span", { class: "k" }, "Consolidated of"),
    this.members,
  );
  /** The members painted (joined). */
  private pMembers = "";
  private readonly fields = new Map<string, HTMLElement>();
  private pLast: bigint | undefined;
  /** Hides the instrument from the watchlist, or restores a hidden one (as x does). */
  private readonly hideBtn = el("button", { class: "inst-hide", type: "button" });
  onToggleHidden: (id: string) => void = () => {};

  constructor(private readonly store: Store) {
    const stats = el("div", { class: "inst-stats" });
    const add = (key: string, label: string, title: string, cls = "") => {
      const v = el("span", { class: "num" });
      this.fields.set(key, v);
      stats.append(el("span", { class: cls ? `kv ${cls}` : "kv", title }, el("span", { class: "k" }, label), v));
    };
    add("open", "Open", "Session open (UTC day)");
    add("high", "High", "Session high");
    add("low", "Low", "Session low");
    add("vwap", "VWAP", "Session volume-weighted average price, rounded toward zero by the feed");
    add("vol", "Volume", "Session volume");
    add("trades", "Trades", "Trades this session");
    // An internal figure, not a trader's: shown only with the status bar's "details" on.
    add("pos", "Seq", "Position of the book stream: epoch / seq", "raw-detail");
    this.root = el(
      "header",
      { class: "inst" },
      el("div", { class: "inst-title" }, this.name, this.badge, this.hideBtn, this.sub),
      el("div", { class: "inst-price" }, this.last, this.chg),
      this.consolidated,
      stats,
    );
    this.consolidated.hidden = true;
    this.hideBtn.addEventListener("click", () => {
      if (this.store.focus) this.onToggleHidden(this.store.focus);
    });
    this.hideBtn.hidden = true;
  }

  paint(): void {
    const id = this.store.focus;
    const row = id ? this.store.rows.get(id) : undefined;
    const sub = this.store.sub(id);
    const info = row?.info;
    setText(this.name, info?.symbol || id || "—");
    setText(this.sub, info ? `${info.venue} · ${info.base}/${info.quote} · tick ${info.tickSize > 0n ? formatDecimal(info.tickSize, info.priceScale) : "unknown"}` : "");
    this.paintMembers(info?.members ?? []);
    const hidden = !!id && this.store.hidden.has(id);
    this.hideBtn.hidden = !id;
    setText(this.hideBtn, hidden ? "restore" : "hide");
    this.hideBtn.title = hidden ? "Hidden from the watchlist: restore it (x)" : "Hide from the watchlist; the Hidden filter lists it to restore (x)";
    setClass(this.hideBtn, "is-hidden", hidden);
    const stale = !!row?.stale;
    // Nothing of an instrument the token does not cover will come: say that, not OFFLINE or STALE.
    const denied = !!sub?.allDenied();
    // Waiting for a Resync's snapshot, or for a snapshot after a reconnect that could not resume.
    const resyncing = (sub?.resync.size ?? 0) > 0 || (this.store.conn === "connected" && (sub?.stale.size ?? 0) > 0);
    setText(this.badge, denied ? "NOT ENTITLED" : this.store.conn !== "connected" ? "OFFLINE" : stale ? "STALE" : resyncing ? "RESYNCING" : this.store.replay ? "REPLAY" : "LIVE");
    this.badge.title = denied ? "Your token does not cover this instrument" : "";
    setClass(this.badge, "denied", denied);
    setClass(this.badge, "live", !denied && this.store.conn === "connected" && !stale && !resyncing);
    setClass(this.badge, "stale", !denied && (this.store.conn !== "connected" || stale));
    setClass(this.badge, "resync", !denied && this.store.conn === "connected" && !stale && resyncing);
    const rep = sub?.replica;
    const st = sub?.denied(Channel.STATS) ? undefined : rep?.stats;
    const ps = info?.priceScale ?? 0;
    const ss = info?.sizeScale ?? 0;
    const f = (k: string, s: string) => setText(this.fields.get(k)!, s);
    // "last" is the store's one value (market/last.ts), as the tape and the chart's label show it.
    const last = denied ? undefined : this.store.last(id);
    setText(this.last, last ? formatDecimal(last.price, ps) : "—");
    setClass(this.last, "history", last?.source === "history");
    this.last.title = last?.source === "history" ? "The venue's last trade before ingest connected (no live trade yet)" : "";
    if (last && this.pLast !== undefined && last.price !== this.pLast) flash(this.last, last.price > this.pLast);
    this.pLast = last?.price;
    if (last && last.source !== "history" && st && st.tradeCount > 0n) {
      const d = last.price - st.open;
      setText(this.chg, `${formatSigned(d, ps)}  ${formatPercentChange(st.open, last.price)}`);
      setClass(this.chg, "pos", d > 0n);
      setClass(this.chg, "neg", d < 0n);
    } else {
      setText(this.chg, "");
    }
    if (st && st.tradeCount > 0n) {
      f("open", formatDecimal(st.open, ps));
      f("high", formatDecimal(st.high, ps));
      f("low", formatDecimal(st.low, ps));
      f("vwap", formatDecimal(st.vwap, ps));
      f("vol", formatCompact(st.volume, ss));
      f("trades", st.tradeCount.toString());
    } else {
      for (const k of ["open", "high", "low", "vwap", "vol", "trades"]) f(k, "—");
    }
    const p = sub?.denied(Channel.BOOK) ? undefined : rep?.pos[Channel.BOOK];
    f("pos", p && p.epoch > 0n ? `${p.epoch} / ${p.seq}` : "—");
  }

  /** Shows a consolidated instrument's members ("synthetic:ACME", ...), hides the line otherwise. */
  private paintMembers(members: readonly string[]): void {
    const key = members.join(" ");
    if (key === this.pMembers) return;
    this.pMembers = key;
    this.consolidated.hidden = members.length === 0;
    // The tags say the member ids here; their colours are the ladder's venue tags'.
    paintVenueTags(this.members, memberTags(members).map((t, i) => ({ ...t, label: members[i]! })));
  }

  resetFlash(): void {
    this.pLast = undefined;
  }
}

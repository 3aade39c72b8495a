// The order book ladder: asks above (best ask at the bottom of them), the spread and mid in the
// middle, bids below; each level with its size, the cumulative size from the best price, and a
// depth bar proportional to the cumulative size. Rows are built once and updated in place. On a
// consolidated instrument (InstrumentInfo.members) each level also shows the venues quoting
// there, one tag per venue (market/venues.ts). Under the levels, the depth chart (views/depth.ts)
// draws every level the page holds, cumulated from the best price, when the ladder paints.

import type { InstrumentInfo } from "@tickwire/client";
import type { BookLevel as Level } from "@tickwire/client";
import { formatDecimal, groupThousands } from "@tickwire/client";
import { venueLabels, venueTags, venuesTitle } from "../market/venues";
import { DepthView } from "./depth";
import { el, setClass, setText } from "./dom";
import { paintVenueTags } from "./venues";

interface LevelRow {
  row: HTMLElement;
  bar: HTMLElement;
  price: HTMLElement;
  size: HTMLElement;
  cum: HTMLElement;
  /** The venues' tags: empty unless the book is consolidated. */
  vens: HTMLElement;
  pPrice?: bigint;
  pSize?: bigint;
  /** The venues painted (undefined: none painted, or the members changed). */
  pVenues?: number;
}

export class LadderView {
  readonly root: HTMLElement;
  private readonly asks: LevelRow[] = [];
  private readonly bids: LevelRow[] = [];
  private readonly spread: HTMLElement;
  private readonly mid: HTMLElement;
  private readonly depthLabel: HTMLElement;
  /** Says why the ladder is empty (the token does not cover the book) or not live (awaiting snapshot). */
  private readonly note = el("div", { class: "panel-note" });
  /** The members the venue tags were painted for (joined): other members repaint every tag. */
  private membersKey = "";
  /** Their tags' labels (venueLabels). */
  private labels: string[] = [];
  /** The depth chart under the levels. */
  readonly depth = new DepthView();

  constructor(readonly levels: number) {
    const mk = (side: "bid" | "ask"): LevelRow => {
      const bar = el("div", { class: "bar" });
      const price = el("span", { class: "price" });
      const size = el("span", { class: "size" });
      const cum = el("span", { class: "cum" });
      const vens = el("span", { class: "vens" });
      const row = el("div", { class: `lvl ${side}`, "data-side": side }, bar, price, size, cum, vens);
      return { row, bar, price, size, cum, vens };
    };
    const askBox = el("div", { class: "side asks" });
    const bidBox = el("div", { class: "side bids" });
    for (let i = 0; i < levels; i++) {
      this.asks.push(mk("ask"));
      this.bids.push(mk("bid"));
    }
    // Asks are listed worst first, so the best ask sits just above the spread.
    for (let i = levels - 1; i >= 0; i--) askBox.append(this.asks[i]!.row);
    for (const r of this.bids) bidBox.append(r.row);
    this.spread = el("span", { class: "spread-val" });
    this.mid = el("span", { class: "mid-val" });
    this.depthLabel = el("span", { class: "muted" });
    this.root = el(
      "section",
      { class: "panel ladder", "aria-label": "Order book" },
      el("div", { class: "panel-head" }, el("h2", {}, "Order book"), this.depthLabel),
      el(
        "div",
        { class: "lvl head" },
        el("span", { class: "price" }, "Price"),
        el("span", { class: "size" }, "Size"),
        el("span", { class: "cum" }, "Total"),
        el("span", { class: "vens", title: "The venues with orders at the price (size is their total)" }, "Venues"),
      ),
      el("div", { class: "book-body" }, askBox, el("div", { class: "spread" }, el("span", { class: "muted" }, "Spread "), this.spread, el("span", { class: "muted" }, "  Mid "), this.mid), bidBox),
      this.depth.root,
      this.note,
    );
  }

  /**
   * denied: the token does not cover the book (or the instrument): the ladder says so, empty.
   * awaiting: the feed's reason when it stopped the book until its next snapshot (StreamStatus
   * AWAITING_SNAPSHOT): the last book stays, dimmed, under "awaiting snapshot".
   * A consolidated instrument (info.members) gets a Venues column: each level's venue tags.
   */
  paint(bids: readonly Level[], asks: readonly Level[], info: InstrumentInfo | undefined, depth: number, synced: boolean, denied = false, awaiting?: string): void {
    const ps = info?.priceScale ?? 0;
    const ss = info?.sizeScale ?? 0;
    if (denied) bids = asks = [];
    const st = ladderStatus(depth, synced, denied, awaiting);
    setText(this.note, st.note);
    this.note.title = st.title;
    setClass(this.root, "denied", denied);
    setClass(this.root, "awaiting", st.state === "awaiting");
    setText(this.depthLabel, st.label);
    setClass(this.root, "unsynced", st.state === "unsynced" || st.state === "awaiting");
    this.root.dataset.book = st.state;
    const members = info?.members ?? [];
    setClass(this.root, "consolidated", members.length > 0);
    const key = members.join(" ");
    if (key !== this.membersKey) {
      this.membersKey = key;
      this.labels = venueLabels(members);
      for (const r of [...this.bids, ...this.asks]) r.pVenues = undefined;
    }
    // The depth bars share one scale: the larger cumulative size over the levels shown.
    const n = this.levels;
    let cb = 0n;
    let ca = 0n;
    for (let i = 0; i < Math.min(n, bids.length); i++) cb += bids[i]!.size;
    for (let i = 0; i < Math.min(n, asks.length); i++) ca += asks[i]!.size;
    const max = cb > ca ? cb : ca;
    this.depth.paint(bids, asks, info);
    this.paintSide(this.bids, bids, ps, ss, max, members);
    this.paintSide(this.asks, asks, ps, ss, max, members);
    const b = bids[0];
    const a = asks[0];
    if (b && a) {
      const sp = a.price - b.price;
      const tick = info && info.tickSize > 0n ? info.tickSize : 1n;
      setText(this.spread, `${formatDecimal(sp, ps)} (${sp / tick} tick${sp / tick === 1n ? "" : "s"})`);
      setText(this.mid, midText(b.price, a.price, ps));
    } else {
      setText(this.spread, "—");
      setText(this.mid, "—");
    }
  }

  private paintSide(rows: LevelRow[], levels: readonly Level[], ps: number, ss: number, max: bigint, members: readonly string[]): void {
    let cum = 0n;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const l = levels[i];
      if (!l) {
        if (r.pPrice !== undefined) {
          setText(r.price, "");
          setText(r.size, "");
          setText(r.cum, "");
          r.bar.style.transform = "scaleX(0)";
          r.pPrice = r.pSize = undefined;
        }
        if (r.pVenues !== 0) {
          paintVenueTags(r.vens, []);
          r.vens.title = "";
          r.pVenues = 0;
        }
        continue;
      }
      cum += l.size;
      setText(r.price, formatDecimal(l.price, ps));
      setText(r.size, groupThousands(formatDecimal(l.size, ss)));
      setText(r.cum, groupThousands(formatDecimal(cum, ss)));
      // A float for a bar width is fine: it is a coordinate, not a figure anyone reads.
      // A transform, not a width: the compositor scales it without a layout of the ladder.
      const w = max > 0n ? Number((cum * 10000n) / max) / 10000 : 0;
      r.bar.style.transform = `scaleX(${w})`;
      // Mark a level whose size changed at the same price: levels update in place.
      if (r.pPrice === l.price && r.pSize !== undefined && r.pSize !== l.size) tick(r.size);
      if (r.pVenues !== l.venues) {
        const tags = venueTags(l.venues, members, this.labels);
        paintVenueTags(r.vens, tags);
        r.vens.title = venuesTitle(tags);
        // Venues that changed at the same price (a venues-only change is a change too).
        if (r.pPrice === l.price && r.pVenues !== undefined) tick(r.vens);
        r.pVenues = l.venues;
      }
      r.pPrice = l.price;
      r.pSize = l.size;
    }
  }
}

/** What the ladder shows of its book: live, not in sync, awaiting the feed's snapshot, or not entitled. */
export type LadderState = "live" | "unsynced" | "awaiting" | "denied";

/**
 * The ladder's state, its head label and its note (over the book) with a tooltip. Not entitled
 * wins (nothing is served); then the feed's AWAITING_SNAPSHOT, which is not live even while
 * the replica still counts as following (the feed sends no deltas until the snapshot); then
 * not in sync (a resync, a kept book after a lost connection, a first snapshot to come).
 */
export function ladderStatus(depth: number, synced: boolean, denied: boolean, awaiting: string | undefined): { state: LadderState; label: string; note: string; title: string } {
  if (denied) return { state: "denied", label: "not entitled", note: "book: not entitled", title: "" };
  const d = depth ? `depth ${depth} · ` : "";
  if (awaiting !== undefined) {
    return { state: "awaiting", label: `${d}awaiting snapshot`, note: "awaiting snapshot · not live", title: `${awaiting}. The last book received is shown dimmed until the feed sends a fresh one.` };
  }
  if (!synced) return { state: "unsynced", label: depth ? `${d}not in sync` : "", note: "", title: "" };
  return { state: "live", label: depth ? `depth ${depth}` : "", note: "", title: "" };
}

/** Restarts the size highlight by switching between two identical animations (no reflow). */
function tick(e: HTMLElement): void {
  const next = e.classList.contains("tick-a") ? "tick-b" : "tick-a";
  e.classList.remove("tick-a", "tick-b");
  e.classList.add(next);
}

/** The exact mid: (bid + ask) / 2 with one more decimal when the sum is odd. */
export function midText(bid: bigint, ask: bigint, scale: number): string {
  const sum = bid + ask;
  if (sum % 2n === 0n) return formatDecimal(sum / 2n, scale);
  return formatDecimal(sum * 5n, scale + 1);
}

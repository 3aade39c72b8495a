// The trade tape: the most recent trades, newest first, with side, price, size and time. Its newest
// live trade is "last" on every other view (Store.onTapePainted, market/last.ts).

import type { InstrumentInfo } from "@tickwire/client";
import { Side, type Trade } from "@tickwire/client";
import type { TradeRecord } from "@tickwire/client";
import { formatDecimal, groupThousands } from "@tickwire/client";
import { el, flash, setClass, setText, timeOfNs } from "./dom";

/**
 * The time zone the tape's times are in (this computer's: timeOfNs), as its offset from UTC at
 * the given moment: "UTC", "UTC+1", "UTC-3:30". offsetMin is Date.getTimezoneOffset(): minutes
 * to add to local time for UTC (so UTC+1 is -60).
 */
export function tzLabel(offsetMin: number): string {
  if (offsetMin === 0) return "UTC";
  const east = -offsetMin;
  const a = Math.abs(east);
  const m = a % 60;
  return `UTC${east > 0 ? "+" : "-"}${Math.floor(a / 60)}${m ? `:${String(m).padStart(2, "0")}` : ""}`;
}

/** This computer's time zone: its name (Europe/Berlin) and its offset now. */
export function localZone(now = new Date()): { name: string; label: string } {
  let name = "";
  try {
    name = Intl.DateTimeFormat().resolvedOptions().timeZone ?? "";
  } catch {
    // no Intl time zone support: the offset alone
  }
  return { name, label: tzLabel(now.getTimezoneOffset()) };
}

interface TapeRow {
  row: HTMLElement;
  time: HTMLElement;
  side: HTMLElement;
  price: HTMLElement;
  size: HTMLElement;
}

export class TapeView {
  readonly root: HTMLElement;
  private readonly rows: TapeRow[] = [];
  private newestSeq = -1n;
  /** Says why the tape is empty when the token does not cover trades. */
  private readonly note = el("div", { class: "panel-note" });
  /** The time zone of the Time column, in the panel's head (issue 12: times without a zone). */
  private readonly tz = el("span", { class: "tz muted" });

  constructor(readonly max: number) {
    const body = el("div", { class: "tape-body" });
    for (let i = 0; i < max; i++) {
      const r: TapeRow = {
        row: el("div", { class: "trade" }),
        time: el("span", { class: "time" }),
        side: el("span", { class: "side" }),
        price: el("span", { class: "price" }),
        size: el("span", { class: "size" }),
      };
      r.row.append(r.time, r.side, r.price, r.size);
      this.rows.push(r);
      body.append(r.row);
    }
    this.root = el(
      "section",
      { class: "panel tape", "aria-label": "Trades" },
      el("div", { class: "panel-head" }, el("h2", {}, "Trades"), this.tz),
      el("div", { class: "trade head" }, el("span", { class: "time" }, "Time"), el("span", { class: "side" }, "Side"), el("span", { class: "price" }, "Price"), el("span", { class: "size" }, "Size")),
      body,
      this.note,
    );
    this.paintZone();
  }

  reset(): void {
    this.newestSeq = -1n;
    this.paintZone();
  }

  /** The zone label (it changes with daylight saving time: repainted on each instrument change). */
  paintZone(): void {
    const z = localZone();
    setText(this.tz, `times ${z.label}`);
    this.tz.title = `The tape's times are this computer's local time${z.name ? ` (${z.name})` : ""}, ${z.label}; the chart's time axis is UTC.`;
    this.tz.dataset.zone = z.label;
  }

  /** denied: the token does not cover trades (or the instrument): the tape says so, empty. */
  paint(trades: readonly TradeRecord[], info: InstrumentInfo | undefined, denied = false): void {
    if (denied) trades = [];
    setText(this.note, denied ? "trades: not entitled" : "");
    setClass(this.root, "denied", denied);
    const ps = info?.priceScale ?? 0;
    const ss = info?.sizeScale ?? 0;
    const n = trades.length;
    const newest = n > 0 ? trades[n - 1]!.seq : -1n;
    for (let i = 0; i < this.rows.length; i++) {
      const r = this.rows[i]!;
      const rec = trades[n - 1 - i];
      const t: Trade | undefined = rec?.trade;
      if (!rec || !t) {
        setText(r.time, "");
        setText(r.side, "");
        setText(r.price, "");
        setText(r.size, "");
        setClass(r.row, "buy", false);
        setClass(r.row, "sell", false);
        setClass(r.row, "history", false);
        r.row.title = "";
        continue;
      }
      const buy = t.side === Side.BUY;
      const sell = t.side === Side.SELL;
      setText(r.time, timeOfNs(rec.venueTimeNs));
      setText(r.side, buy ? "BUY" : sell ? "SELL" : "—");
      setText(r.price, formatDecimal(t.price, ps));
      setText(r.size, groupThousands(formatDecimal(t.size, ss)));
      setClass(r.row, "buy", buy);
      setClass(r.row, "sell", sell);
      // The venue's tape from before ingest connected (PROTOCOL.md §8.3): shown, but not counted
      // in candles and stats, and never "last" once a live trade is known (market/last.ts).
      setClass(r.row, "history", t.history);
      r.row.title = t.history ? "Before ingest connected: not counted in candles and stats" : "";
      // Flash the trades that arrived since the last paint.
      if (this.newestSeq >= 0n && rec.seq > this.newestSeq) flash(r.row, buy);
    }
    this.newestSeq = newest;
  }
}

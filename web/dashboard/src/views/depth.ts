// The depth chart under the ladder: the cumulative bid size (left, green) and ask size (right,
// red) against price, for every level of the book the page holds (the replica's book), drawn on a
// canvas when the ladder paints. The figures (market/depth.ts) are exact; only the coordinates
// are floats. The best levels' cumulative sizes and the total are on the element's data
// attributes, as the ladder prints sizes, for the browser test.

import { formatDecimal, groupThousands, type InstrumentInfo } from "@tickwire/client";
import { depthCurve, type DepthCurve, type DepthLevel, type DepthStep } from "../market/depth";
import { el } from "./dom";

const colors = {
  bid: "#26a69a",
  bidFill: "rgba(38,166,154,0.22)",
  ask: "#ef5350",
  askFill: "rgba(239,83,80,0.22)",
  text: "#8b98a9",
  mid: "rgba(139,152,169,0.35)",
};

export class DepthView {
  readonly root: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private curve: DepthCurve = { bids: [], asks: [], max: 0n };
  private info: InstrumentInfo | undefined;
  private paints = 0;

  constructor() {
    this.canvas = el("canvas", { class: "depth-canvas", "aria-hidden": "true" });
    this.root = el("div", { class: "depth", role: "img", "aria-label": "Depth chart: cumulative bid and ask size against price" }, this.canvas);
    // Redraw at the new size (the panel's width changes with the layout).
    if (typeof ResizeObserver !== "undefined") new ResizeObserver(() => this.draw()).observe(this.root);
  }

  /** The book to draw (levels best first); called when the ladder paints. */
  paint(bids: readonly DepthLevel[], asks: readonly DepthLevel[], info: InstrumentInfo | undefined): void {
    this.curve = depthCurve(bids, asks);
    this.info = info;
    const ss = info?.sizeScale ?? 0;
    const fmt = (s: DepthStep | undefined) => (s ? groupThousands(formatDecimal(s.cum, ss)) : "");
    const d = this.root.dataset;
    d.bestBidCum = fmt(this.curve.bids[0]);
    d.bestAskCum = fmt(this.curve.asks[0]);
    d.bidTotal = fmt(this.curve.bids[this.curve.bids.length - 1]);
    d.askTotal = fmt(this.curve.asks[this.curve.asks.length - 1]);
    d.bidLevels = String(this.curve.bids.length);
    d.askLevels = String(this.curve.asks.length);
    this.draw();
  }

  private draw(): void {
    const c = this.canvas;
    const w = this.root.clientWidth;
    const h = this.root.clientHeight;
    if (w <= 0 || h <= 0) return; // hidden (another tab of the compact layout)
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
      c.style.width = `${w}px`;
      c.style.height = `${h}px`;
    }
    const g = c.getContext("2d");
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const { bids, asks, max, lo, hi } = this.curve;
    this.root.dataset.drawn = String(++this.paints);
    if (lo === undefined || hi === undefined || max <= 0n) return;
    const ps = this.info?.priceScale ?? 0;
    const ss = this.info?.sizeScale ?? 0;
    const top = 12; // room for the labels
    const bottom = h - 12;
    const span = Number(hi - lo) || 1;
    // Coordinates only: floats from exact differences.
    const x = (p: bigint) => (Number(p - lo) / span) * w;
    const y = (cum: bigint) => bottom - (Number((cum * 10000n) / max) / 10000) * (bottom - top);
    const side = (steps: DepthStep[], edge: number, line: string, fill: string) => {
      const s0 = steps[0];
      if (!s0) return;
      g.beginPath();
      g.moveTo(x(s0.price), bottom);
      let prev = 0n;
      for (const s of steps) {
        g.lineTo(x(s.price), y(prev));
        g.lineTo(x(s.price), y(s.cum));
        prev = s.cum;
      }
      g.lineTo(edge, y(prev));
      g.strokeStyle = line;
      g.lineWidth = 1.25;
      g.stroke();
      g.lineTo(edge, bottom);
      g.closePath();
      g.fillStyle = fill;
      g.fill();
    };
    side(bids, 0, colors.bid, colors.bidFill);
    side(asks, w, colors.ask, colors.askFill);
    // The mid, and the range and the larger side's total as exact text.
    const b0 = bids[0];
    const a0 = asks[0];
    if (b0 && a0) {
      const xm = (x(b0.price) + x(a0.price)) / 2;
      g.strokeStyle = colors.mid;
      g.setLineDash([2, 3]);
      g.beginPath();
      g.moveTo(xm, top);
      g.lineTo(xm, bottom);
      g.stroke();
      g.setLineDash([]);
    }
    g.fillStyle = colors.text;
    g.font = "10px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
    g.textBaseline = "bottom";
    g.textAlign = "left";
    g.fillText(formatDecimal(lo, ps), 2, h);
    g.textAlign = "right";
    g.fillText(formatDecimal(hi, ps), w - 2, h);
    g.textBaseline = "top";
    g.textAlign = "left";
    g.fillText(`Σ ${groupThousands(formatDecimal(max, ss))}`, 2, 0);
  }
}

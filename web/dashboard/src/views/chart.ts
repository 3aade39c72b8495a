// The candlestick chart with volume for the focused instrument (lightweight-charts 5).
//
// A candles snapshot (on open, resync, reconnect) redraws the series with setData; a candles
// delta only updates the bars it changed with series.update(), so nothing is redrawn from
// scratch at 100 updates per second. Intervals without any bar (no trades, or an outage) are
// whitespace points, so the time axis stays honest and an outage shows as a hole, not as bars
// pulled together; gap, resync and reconnect events are markers on the bar where they happened.
// Bars older than the replica holds come from the feed's store (setHistory), merged by start.
//
// The last price on the price axis is not lightweight-charts' own label: that one is the close
// of the last *visible* bar, formatted from a float, and painted on the chart's next animation
// frame, a frame after the header and the tape (issue 12: 2-7 ticks apart on a busy market, every
// time). It is a DOM label (setLast) with the store's one "last" (market/last.ts), written in the
// same frame as the header and the tape, exact from the mantissa; only its height comes from the
// chart's float coordinates.
//
// Overlays: a 20-bar simple moving average of closes and the VWAP of each UTC day
// (market/indicators.ts, exact on the mantissas, floats only for the line series), each shown or
// hidden by a toggle in the chart's bar (kept in localStorage). A legend over the pane shows the
// hovered bar's UTC time, open, high, low, close and volume, exact from the mantissas (and the
// overlays' values there); without a crosshair, the newest bar's.

import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  HistogramSeries,
  LineSeries,
  createChart,
  createSeriesMarkers,
  type CandlestickData,
  type HistogramData,
  type IChartApi,
  type LineData,
  type MouseEventParams,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
  type WhitespaceData,
} from "lightweight-charts";
import type { InstrumentInfo } from "@tickwire/client";
import type { Candle } from "@tickwire/client";
import { barsOf, bucketOf, intervals, type Interval } from "../market/candles";
import { mergeBars } from "../market/history";
import { formatDecimal, groupThousands, toChartNumber } from "@tickwire/client";
import { maBars, smaAt, toMantissa, toNumber, vwap, sma, vwapAt, type Point } from "../market/indicators";
import { formatUtc } from "../market/replay";
import type { Last } from "../market/last";
import type { Marker } from "../app/store";
import { el, setClass, setText } from "./dom";

/** Most whitespace points put in one hole: a long outage at 1 s would otherwise be thousands. */
const maxWhitespace = 600;

const colors = {
  up: "#26a69a",
  down: "#ef5350",
  upVol: "rgba(38,166,154,0.35)",
  downVol: "rgba(239,83,80,0.35)",
  marker: "#f0b429",
  back: "#58a6ff",
  offline: "#6f7b8b",
  ma: "#c792ea",
  vwap: "#4fc1ff",
};

/** The overlays (market/indicators.ts) and whether each is shown. */
export type Overlay = "ma" | "vwap";
export type Overlays = Record<Overlay, boolean>;
/** Where the overlays' toggles are kept (localStorage: this browser, across reloads). */
export const overlaysKey = "tickwire.chart.overlays";
const overlayNames: Record<Overlay, { label: string; title: string }> = {
  ma: { label: `MA${maBars}`, title: `Simple moving average of the last ${maBars} closes (click to show or hide)` },
  vwap: {
    label: "VWAP",
    title: "Volume-weighted average price of each UTC day: typical price (high+low+close)/3 weighted by volume, from the day's first bar on the chart (click to show or hide)",
  },
};

/** The overlays' toggles as kept (both shown when nothing is kept, or storage is off). */
export function readOverlays(storage: Pick<Storage, "getItem"> | undefined): Overlays {
  const out: Overlays = { ma: true, vwap: true };
  try {
    const v: unknown = JSON.parse(storage?.getItem(overlaysKey) ?? "null");
    if (v && typeof v === "object") {
      for (const k of ["ma", "vwap"] as const) {
        const b = (v as Record<string, unknown>)[k];
        if (typeof b === "boolean") out[k] = b;
      }
    }
  } catch {
    // storage disabled or a malformed value: the defaults
  }
  return out;
}

function storage(): Storage | undefined {
  try {
    return window.localStorage;
  } catch {
    return undefined;
  }
}

/** Stored bars of one instrument and interval, and where the live bars take over. */
export interface ChartHistory {
  instrument: string;
  intervalS: number;
  bars: Candle[];
  cutoffS: bigint;
}

export type HistoryState = "none" | "loading" | "ok" | "error";

export class ChartView {
  readonly root: HTMLElement;
  private readonly host: HTMLElement;
  private readonly buttons = new Map<number, HTMLButtonElement>();
  private readonly chart: IChartApi;
  private readonly candles: ISeriesApi<"Candlestick">;
  private readonly volume: ISeriesApi<"Histogram">;
  private readonly markers: ISeriesMarkersPluginApi<Time>;
  interval: Interval = intervals[0]!;
  private info: InstrumentInfo | undefined;
  /** Times of every point given to the series (bars and whitespace), ascending. */
  private times: number[] = [];
  private bars = 0;
  /** Stored bars for the current instrument and interval, when loaded. */
  private history: ChartHistory | undefined;
  private readonly histNote = el("span", { class: "chart-note" });
  /** Says why the chart is empty when the token does not cover candles. */
  private readonly deniedNote = el("div", { class: "panel-note" });
  /** The last price on the price axis, and its line across the pane (setLast). */
  private readonly lastLabel = el("div", { class: "last-label num", "aria-label": "Last price" });
  private readonly lastLine = el("div", { class: "last-line" });
  private last: Last | undefined;
  /** Open of the newest bar drawn: the label's colour (up or down in that bar), as the chart's own. */
  private newestOpen: bigint | undefined;
  /** Where the label was put (px from the pane's top) and the price axis' width then. */
  private labelY = NaN;
  private labelAxis = NaN;
  onInterval: (iv: Interval) => void = () => {};
  /** The overlays' line series and their toggles. */
  private readonly overlay: Record<Overlay, ISeriesApi<"Line">>;
  private readonly overlayButtons = new Map<Overlay, HTMLButtonElement>();
  readonly shown: Overlays = readOverlays(storage());
  /** The bars drawn (no whitespace), oldest first, and each one's index by start time. */
  private drawn: Candle[] = [];
  private index = new Map<number, number>();
  /** The legend over the pane; the time the crosshair is on (undefined: none, the newest bar). */
  private readonly legend = el("div", { class: "chart-legend num", "aria-label": "Bar under the crosshair" });
  private hovered: number | undefined;

  constructor() {
    const bar = el("div", { class: "chart-bar" });
    for (const iv of intervals) {
      const b = el("button", { class: "iv", title: iv.note, "data-iv": String(iv.seconds) }, iv.label);
      b.addEventListener("click", () => this.onInterval(iv));
      this.buttons.set(iv.seconds, b);
      bar.append(b);
    }
    for (const k of ["ma", "vwap"] as const) {
      const b = el("button", { class: `ov ov-${k}`, title: overlayNames[k].title, "data-ov": k }, overlayNames[k].label);
      b.addEventListener("click", () => this.setOverlay(k, !this.shown[k]));
      this.overlayButtons.set(k, b);
      bar.append(b);
    }
    bar.append(this.histNote);
    // The time axis shows the bars' UTC times (lightweight-charts takes times as UTC): say so.
    bar.append(el("span", { class: "tz muted", "data-zone": "UTC", title: "The time axis is in UTC (the tape's times are local)" }, "UTC"));
    this.host = el("div", { class: "chart-host" });
    this.root = el("section", { class: "panel chart", "aria-label": "Chart" }, bar, this.host, this.deniedNote);
    this.chart = createChart(this.host, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: "transparent" },
        textColor: "#8b98a9",
        fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
        fontSize: 11,
      },
      grid: { vertLines: { color: "rgba(139,152,169,0.07)" }, horzLines: { color: "rgba(139,152,169,0.07)" } },
      crosshair: { mode: CrosshairMode.Normal },
      rightPriceScale: { borderColor: "rgba(139,152,169,0.2)" },
      timeScale: { borderColor: "rgba(139,152,169,0.2)", timeVisible: true, secondsVisible: true, rightOffset: 8 },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: colors.up,
      downColor: colors.down,
      borderVisible: false,
      wickUpColor: colors.up,
      wickDownColor: colors.down,
      // The last price is our own label (setLast), not the last visible bar's close a frame late.
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceFormat: { type: "volume" },
      priceScaleId: "vol",
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.22 } });
    this.markers = createSeriesMarkers(this.candles, []);
    const line = (color: string) =>
      this.chart.addSeries(LineSeries, {
        color,
        lineWidth: 1,
        lastValueVisible: false,
        priceLineVisible: false,
        crosshairMarkerVisible: false,
      });
    this.overlay = { ma: line(colors.ma), vwap: line(colors.vwap) };
    for (const k of ["ma", "vwap"] as const) this.setOverlay(k, this.shown[k], false);
    this.chart.subscribeCrosshairMove((p: MouseEventParams<Time>) => {
      const t = p.time === undefined || !p.point ? undefined : (p.time as number);
      if (t === this.hovered) return;
      this.hovered = t;
      this.paintLegend();
    });
    this.host.append(this.lastLine, this.lastLabel, this.legend);
    this.setLast(undefined);
    this.setInterval(this.interval);
    this.setHistoryState("none", "");
  }

  /** Stored bars to merge (undefined: live bars only). Takes effect on the next reset. */
  setHistory(h: ChartHistory | undefined): void {
    this.history = h;
    this.root.dataset.historyBars = String(h?.bars.length ?? 0);
  }

  /** text: why the chart stays empty ("candles: not entitled"), or "" when it is not. */
  setDenied(text: string): void {
    setText(this.deniedNote, text);
    setClass(this.root, "denied", text !== "");
  }

  /** The small note next to the interval buttons: history loading, loaded, or why not. */
  setHistoryState(state: HistoryState, text: string, title = ""): void {
    this.root.dataset.history = state;
    setText(this.histNote, text);
    this.histNote.title = title || text;
    for (const s of ["none", "loading", "ok", "error"]) setClass(this.histNote, s, s === state);
  }

  /** The bars of the current interval: stored ones merged with the replica's. */
  private barsFor(all: readonly Candle[]): Candle[] {
    const live = barsOf(all, this.interval);
    const h = this.history;
    return h && h.intervalS === this.interval.seconds ? mergeBars(h.bars, live, h.cutoffS) : live;
  }

  /** Whether a bar start belongs to the stored history (which wins before the cutoff). */
  private stored(startS: bigint): boolean {
    const h = this.history;
    if (!h || h.intervalS !== this.interval.seconds || startS >= h.cutoffS) return false;
    return h.bars.some((b) => b.startS === startS);
  }

  setInterval(iv: Interval): void {
    this.interval = iv;
    for (const [s, b] of this.buttons) b.classList.toggle("active", s === iv.seconds);
    this.chart.applyOptions({ timeScale: { secondsVisible: iv.seconds < 60 } });
  }

  /** Instrument precision for the price axis (axis labels come from chart floats, by design). */
  setInstrument(info: InstrumentInfo | undefined): void {
    this.info = info;
    const scale = info?.priceScale ?? 2;
    const tick = info && info.tickSize > 0n ? toChartNumber(info.tickSize, scale) : 10 ** -scale;
    this.candles.applyOptions({
      priceFormat: { type: "price", precision: Math.min(Math.max(scale, 0), 16), minMove: tick },
    });
  }

  /** Redraws every bar of the current interval from the replica's candles and the history. */
  reset(all: readonly Candle[]): void {
    const bars = this.barsFor(all);
    const scale = this.info?.priceScale ?? 0;
    const sizeScale = this.info?.sizeScale ?? 0;
    const step = this.interval.seconds;
    const cs: (CandlestickData | WhitespaceData)[] = [];
    const vs: (HistogramData | WhitespaceData)[] = [];
    this.times = [];
    let prev: number | undefined;
    for (const b of bars) {
      const t = Number(b.startS);
      if (prev !== undefined) {
        for (const w of holes(prev, t, step)) {
          cs.push({ time: w as UTCTimestamp });
          vs.push({ time: w as UTCTimestamp });
          this.times.push(w);
        }
      }
      cs.push(toBar(b, scale));
      vs.push(toVolume(b, scale, sizeScale));
      this.times.push(t);
      prev = t;
    }
    this.candles.setData(cs);
    this.volume.setData(vs);
    this.drawn = bars;
    this.index = new Map(bars.map((b, i) => [Number(b.startS), i]));
    this.overlay.ma.setData(sma(bars).map((p) => toLine(p, scale)));
    this.overlay.vwap.setData(vwap(bars).map((p) => toLine(p, scale)));
    this.newestOpen = bars[bars.length - 1]?.open;
    this.bars = bars.length;
    this.root.dataset.bars = String(this.bars);
    this.paintOverlayState();
    this.paintLegend();
  }

  /** Shows or hides an overlay, and keeps the choice (store: false while restoring it). */
  setOverlay(k: Overlay, on: boolean, store = true): void {
    this.shown[k] = on;
    this.overlay[k].applyOptions({ visible: on });
    const b = this.overlayButtons.get(k);
    if (b) {
      setClass(b, "active", on);
      b.setAttribute("aria-pressed", String(on));
    }
    this.root.dataset[k] = on ? "on" : "off";
    if (store) {
      try {
        storage()?.setItem(overlaysKey, JSON.stringify(this.shown));
      } catch {
        // storage disabled: this page only
      }
    }
    this.paintLegend();
  }

  /** For the browser test: each overlay's visibility and points in its series, and the legend's bar. */
  overlays(): Record<Overlay, { visible: boolean; points: number }> {
    const o = (k: Overlay) => ({ visible: this.overlay[k].options().visible, points: this.overlay[k].data().length });
    return { ma: o("ma"), vwap: o("vwap") };
  }

  private paintOverlayState(): void {
    this.root.dataset.maPoints = String(Math.max(0, this.drawn.length - maBars + 1));
  }

  /** Keeps drawn and the overlays in step with a bar drawn by update (the newest or a new one). */
  private drew(b: Candle, scale: number): void {
    const t = Number(b.startS);
    let i = this.index.get(t);
    if (i === undefined) {
      i = this.drawn.length;
      this.drawn.push(b);
      this.index.set(t, i);
    } else {
      this.drawn[i] = b;
    }
    const m = smaAt(this.drawn, i);
    if (m) this.overlay.ma.update(toLine(m, scale));
    const v = vwapAt(this.drawn, i);
    if (v) this.overlay.vwap.update(toLine(v, scale));
  }

  /** The legend: the hovered bar, or the newest one without a crosshair; exact figures. */
  private paintLegend(): void {
    const hovered = this.hovered;
    const i = hovered !== undefined ? this.index.get(hovered) : this.drawn.length - 1;
    const b = i !== undefined ? this.drawn[i] : undefined;
    const timeS = b ? Number(b.startS) : hovered;
    this.legend.dataset.source = hovered !== undefined ? "hover" : "latest";
    this.legend.dataset.time = timeS !== undefined ? String(timeS) : "";
    if (timeS === undefined) {
      this.legend.replaceChildren();
      return;
    }
    const ps = this.info?.priceScale ?? 0;
    const ss = this.info?.sizeScale ?? 0;
    const parts: Node[] = [el("span", { class: "lg-time" }, legendTime(timeS, this.interval.seconds))];
    if (!b) {
      parts.push(el("span", { class: "lg-none muted" }, "no trades"));
    } else {
      const dir = b.close >= b.open ? "up" : "down";
      const kv = (k: string, cls: string, v: string) => el("span", { class: `lg-${cls}` }, el("span", { class: "k" }, k), el("span", { class: `v ${dir}` }, v));
      parts.push(
        kv("O", "o", formatDecimal(b.open, ps)),
        kv("H", "h", formatDecimal(b.high, ps)),
        kv("L", "l", formatDecimal(b.low, ps)),
        kv("C", "c", formatDecimal(b.close, ps)),
        kv("V", "v", groupThousands(formatDecimal(b.volume, ss))),
      );
      const ov = (k: Overlay, p: Point | undefined) => {
        if (!this.shown[k] || !p) return;
        parts.push(el("span", { class: `lg-${k}` }, el("span", { class: "k" }, overlayNames[k].label), el("span", { class: "v" }, formatDecimal(toMantissa(p), ps))));
      };
      ov("ma", smaAt(this.drawn, i!));
      ov("vwap", vwapAt(this.drawn, i!));
    }
    this.legend.replaceChildren(...parts);
  }

  /**
   * Applies bars changed by deltas. For an aggregated interval the changed bucket is rebuilt
   * from the replica's 1 min bars. A bar older than the last one drawn (which the feed never
   * sends) falls back to a redraw.
   */
  update(changed: readonly Candle[], all: readonly Candle[]): void {
    const iv = this.interval;
    const scale = this.info?.priceScale ?? 0;
    const sizeScale = this.info?.sizeScale ?? 0;
    const seen = new Set<bigint>();
    for (const c of changed) {
      if (c.intervalS !== iv.source) continue;
      let b = c;
      if (iv.seconds !== iv.source) {
        const bucket = bucketOf(c.startS, iv.seconds);
        if (seen.has(bucket)) continue;
        seen.add(bucket);
        const agg = barsOf(all, iv).find((x) => x.startS === bucket);
        if (!agg) continue;
        b = agg;
      }
      if (this.stored(b.startS)) continue; // a complete stored bar beats a live fragment of it
      const t = Number(b.startS);
      const last = this.times[this.times.length - 1];
      if (last !== undefined && t < last) {
        this.reset(all);
        return;
      }
      if (last !== undefined) {
        for (const w of holes(last, t, iv.seconds)) {
          this.candles.update({ time: w as UTCTimestamp });
          this.volume.update({ time: w as UTCTimestamp });
          this.times.push(w);
        }
      }
      this.candles.update(toBar(b, scale));
      this.volume.update(toVolume(b, scale, sizeScale));
      this.drew(b, scale);
      this.newestOpen = b.open;
      if (last === undefined || t > last) {
        this.times.push(t);
        this.bars++;
      }
    }
    this.root.dataset.bars = String(this.bars);
    this.paintOverlayState();
    // The legend follows the newest bar, or the hovered one if it changed.
    if (changed.length > 0 && (this.hovered === undefined || this.index.has(this.hovered))) this.paintLegend();
  }

  /**
   * Puts each marker on the last point at or before its time (markers need an existing time):
   * gaps (data lost) as amber arrows, connection changes as small circles.
   */
  setMarkers(list: readonly Marker[]): void {
    const out: SeriesMarker<Time>[] = [];
    const step = this.interval.seconds;
    let gaps = 0;
    for (const m of list) {
      const t = snap(this.times, Number(bucketOf(BigInt(m.timeS), step)));
      if (t === undefined) continue;
      const gap = m.kind === "gap";
      if (gap) gaps++;
      out.push({
        time: t as UTCTimestamp,
        position: "aboveBar",
        shape: gap ? "arrowDown" : "circle",
        color: gap ? colors.marker : m.text === "back" ? colors.back : colors.offline,
        text: m.text,
      });
    }
    this.root.dataset.gapMarkers = String(gaps);
    this.root.dataset.markers = String(out.length);
    // Several markers on one bar: keep the last of each text, in time order.
    out.sort((a, b) => (a.time as number) - (b.time as number));
    this.markers.setMarkers(out);
  }

  /**
   * The instrument's last price (Store.last: the header's and the tape's), shown on the price
   * axis. Called by the painter every frame, in the same frame as the header and the tape.
   */
  setLast(last: Last | undefined): void {
    this.last = last;
    setText(this.lastLabel, last ? ChartView.priceText(last.price, this.info) : "");
    this.lastLabel.dataset.source = last?.source ?? "";
    const up = last !== undefined && this.newestOpen !== undefined && last.price >= this.newestOpen;
    setClass(this.lastLabel, "up", up);
    setClass(this.lastLabel, "down", last !== undefined && this.newestOpen !== undefined && !up);
    this.placeLast();
  }

  /**
   * Puts the label at its price on the chart's current price scale (scrolling, zooming and
   * autoscale move it), held inside the pane when the price is off the visible range. Hidden
   * while the chart has no bars to give it a scale.
   */
  private placeLast(): void {
    const last = this.last;
    const y = last && this.bars > 0 ? this.candles.priceToCoordinate(toChartNumber(last.price, this.info?.priceScale ?? 0)) : null;
    const shown = y !== null;
    setClass(this.lastLabel, "shown", shown);
    setClass(this.lastLine, "shown", shown);
    if (!shown) {
      this.labelY = NaN;
      return;
    }
    const h = this.chart.paneSize().height;
    const top = Math.round(Math.min(Math.max(y, 0), Math.max(h, 0)));
    const axis = this.chart.priceScale("right").width();
    if (top === this.labelY && axis === this.labelAxis) return;
    this.labelY = top;
    this.labelAxis = axis;
    this.lastLabel.style.top = `${top}px`;
    this.lastLabel.style.width = `${axis}px`;
    this.lastLine.style.top = `${top}px`;
    this.lastLine.style.right = `${axis}px`;
  }

  /** The last price as text for the chart's label; exact, from the mantissa. */
  static priceText(m: bigint, info: InstrumentInfo | undefined): string {
    return formatDecimal(m, info?.priceScale ?? 0);
  }
}

/** The interval starts strictly between a and b, at most maxWhitespace of the latest. */
function holes(a: number, b: number, step: number): number[] {
  const out: number[] = [];
  const first = Math.max(a + step, b - maxWhitespace * step);
  for (let t = first; t < b; t += step) out.push(t);
  return out;
}

function snap(times: number[], t: number): number | undefined {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (times[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? times[lo - 1] : times[0];
}

function toBar(b: Candle, scale: number): CandlestickData {
  return {
    time: Number(b.startS) as UTCTimestamp,
    open: toChartNumber(b.open, scale),
    high: toChartNumber(b.high, scale),
    low: toChartNumber(b.low, scale),
    close: toChartNumber(b.close, scale),
  };
}

function toLine(p: Point, scale: number): LineData {
  return { time: Number(p.startS) as UTCTimestamp, value: toNumber(p, scale) };
}

/** A bar's start for the legend, in UTC as the time axis: seconds for 1 s bars, the date alone for 1 D. */
export function legendTime(startS: number, intervalS: number): string {
  const t = formatUtc(BigInt(startS) * 1_000_000_000n, false); // "2026-11-22 06:19:07 UTC"
  if (t === "—") return t;
  if (intervalS >= 86_400) return `${t.slice(0, 10)} UTC`;
  if (intervalS >= 60) return `${t.slice(0, 16)} UTC`;
  return t;
}

function toVolume(b: Candle, _scale: number, sizeScale: number): HistogramData {
  return {
    time: Number(b.startS) as UTCTimestamp,
    value: toChartNumber(b.volume, sizeScale),
    color: b.close >= b.open ? colors.upVol : colors.downVol,
  };
}

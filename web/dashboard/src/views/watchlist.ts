// The watchlist: every instrument with last, bid, ask, change since the session open, volume.
// Rows are built once per instrument and updated in place; a price cell flashes green or red
// when it moves. Search by text, filter by movers, stale or favourites, arrows move the focus. An
// instrument the token does not cover says NOT ENTITLED (its row stays, empty, and is not stale).
// A click on a column's header sorts by it (descending first for figures, then ascending, then
// the feed's order); favourites (the star) come first and are kept in localStorage; a search
// with no match says so; a Venue column appears when the instruments come from several venues.
// A trader hides an instrument (x or Delete on the focused row, or the header's "hide"): it
// leaves every filter but Hidden, which lists the hidden ones with a button to restore each;
// the hidden ids are kept in localStorage.

import type { Store } from "../app/store";
import { InstrumentStatus } from "@tickwire/client";
import { Channel } from "@tickwire/client";
import { formatCompact, formatDecimal, formatPercentChange, formatSigned } from "@tickwire/client";
import { el, flash, setClass, setText } from "./dom";

type Filter = "all" | "up" | "down" | "stale" | "fav" | "hidden";

export type SortKey = "sym" | "venue" | "last" | "bid" | "ask" | "chg" | "pct" | "vol";
/** A sort: a column and its direction (1 ascending, -1 descending). */
export interface Sort {
  key: SortKey;
  dir: 1 | -1;
}

/**
 * Orders two sort values: strings by locale, numbers by value, in the sort's direction; a row
 * without a value (no trade yet, no quote) goes last in either direction.
 */
export function compareValues(a: string | number | undefined, b: string | number | undefined, dir: 1 | -1): number {
  if (a === undefined || (typeof a === "number" && Number.isNaN(a))) return b === undefined || (typeof b === "number" && Number.isNaN(b)) ? 0 : 1;
  if (b === undefined || (typeof b === "number" && Number.isNaN(b))) return -1;
  const c = typeof a === "string" && typeof b === "string" ? a.localeCompare(b) : Number(a) - Number(b);
  return c * dir;
}

/** The next sort after a click on a column: text columns start ascending, figures descending; the third click goes back to the feed's order. */
export function nextSort(cur: Sort | null, key: SortKey): Sort | null {
  const first: 1 | -1 = key === "sym" || key === "venue" ? 1 : -1;
  if (!cur || cur.key !== key) return { key, dir: first };
  if (cur.dir === first) return { key, dir: first === 1 ? -1 : 1 };
  return null;
}

/** Where the favourites are kept (localStorage: this browser, across reloads and tabs). */
export const favouritesKey = "tickwire.favourites";

/** Where the hidden instruments are kept (localStorage, as the favourites). */
export const hiddenKey = "tickwire.hidden";

/** A set of ids kept in storage as a JSON array (none when storage is disabled or holds something else). */
function loadIds(storage: Pick<Storage, "getItem"> | undefined, key: string): Set<string> {
  try {
    const v: unknown = JSON.parse(storage?.getItem(key) ?? "[]");
    return new Set(Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
  } catch {
    return new Set();
  }
}

function saveIds(storage: Pick<Storage, "setItem"> | undefined, key: string, ids: Set<string>): void {
  try {
    storage?.setItem(key, JSON.stringify([...ids].sort()));
  } catch {
    // storage disabled or full: kept for this page only
  }
}

/** The favourites kept in storage (none when storage is disabled or holds something else). */
export function loadFavourites(storage: Pick<Storage, "getItem"> | undefined): Set<string> {
  return loadIds(storage, favouritesKey);
}

export function saveFavourites(storage: Pick<Storage, "setItem"> | undefined, favs: Set<string>): void {
  saveIds(storage, favouritesKey, favs);
}

/** The hidden instruments kept in storage. */
export function loadHidden(storage: Pick<Storage, "getItem"> | undefined): Set<string> {
  return loadIds(storage, hiddenKey);
}

export function saveHidden(storage: Pick<Storage, "setItem"> | undefined, hidden: Set<string>): void {
  saveIds(storage, hiddenKey, hidden);
}

/**
 * Where the focus goes when the focused row is hidden: the next row shown, else the previous,
 * else nowhere (undefined). visible is the list as shown before hiding.
 */
export function focusAfterHiding(visible: readonly string[], id: string): string | undefined {
  const i = visible.indexOf(id);
  if (i < 0) return undefined;
  return visible[i + 1] ?? visible[i - 1];
}

function localStore(): Storage | undefined {
  try {
    return window.localStorage;
  } catch {
    return undefined;
  }
}

/** Scaled integer to a float, for ordering only (never shown). */
const num = (m: bigint, scale: number) => Number(m) / 10 ** scale;

interface RowView {
  tr: HTMLTableRowElement;
  fav: HTMLButtonElement;
  sym: HTMLElement;
  venue: HTMLElement;
  badge: HTMLElement;
  last: HTMLElement;
  bid: HTMLElement;
  ask: HTMLElement;
  chg: HTMLElement;
  pct: HTMLElement;
  vol: HTMLElement;
  // Last painted mantissas, for the flash direction.
  pLast?: bigint;
  pBid?: bigint;
  pAsk?: bigint;
}

export class WatchlistView {
  readonly root: HTMLElement;
  readonly search: HTMLInputElement;
  private readonly filterSel: HTMLSelectElement;
  private readonly tbody: HTMLTableSectionElement;
  private readonly scroller: HTMLElement;
  private readonly count: HTMLElement;
  /** Said instead of rows when the search and filter match nothing. */
  private readonly empty: HTMLElement;
  private readonly emptyText: HTMLElement;
  private readonly table: HTMLTableElement;
  private readonly heads = new Map<SortKey, HTMLElement>();
  /** The Hidden filter's option: says how many are hidden. */
  private readonly hiddenOption: HTMLOptionElement;
  /** The column sorted by, or null for the feed's order. */
  sort: Sort | null = null;
  /** Favourite instruments: first in the list, kept in localStorage. */
  readonly favourites = loadFavourites(localStore());
  /** Whether the instruments come from more than one venue (then the Venue column shows). */
  private multiVenue = false;
  private readonly rows = new Map<string, RowView>();
  /** Ids shown, in order, after search and filter. */
  visible: string[] = [];
  /** Whether a row has shown a figure (a bid, an ask or a last): the first useful paint. */
  quoted = false;
  /**
   * What the page waits for until the first quote (connecting, loading instruments, the first
   * quotes): a status line over skeleton rows, so the list is never an empty box (issue 12).
   */
  private readonly loading: HTMLElement;
  private readonly loadingText: HTMLElement;
  onFocus: (id: string) => void = () => {};
  /** A row was picked by hand (a click or tap, Enter in the search), after onFocus. */
  onPick: (id: string) => void = () => {};

  constructor(private readonly store: Store) {
    this.search = el("input", {
      type: "search",
      class: "search",
      placeholder: "Search  ( / )",
      "aria-label": "Search instruments",
      spellcheck: "false",
      autocomplete: "off",
    });
    this.filterSel = el(
      "select",
      { class: "filter", "aria-label": "Filter instruments" },
      el("option", { value: "all" }, "All"),
      el("option", { value: "up" }, "Gainers"),
      el("option", { value: "down" }, "Losers"),
      el("option", { value: "stale" }, "Stale"),
      el("option", { value: "fav" }, "Favourites"),
      el("option", { value: "hidden" }, "Hidden"),
    );
    for (const id of loadHidden(localStore())) store.hidden.add(id);
    this.count = el("span", { class: "count" });
    this.search.addEventListener("input", () => (store.listDirty = true));
    this.filterSel.addEventListener("change", () => (store.listDirty = true));
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        this.search.value = "";
        store.listDirty = true;
        this.search.blur();
      } else if (e.key === "Enter" || e.key === "ArrowDown") {
        const first = this.visible[0];
        if (first) {
          this.onFocus(first);
          if (e.key === "Enter") this.onPick(first);
        }
        this.search.blur();
        e.preventDefault();
      }
    });
    const th = (key: SortKey, label: string, cls: string, title: string) => {
      const b = el("button", { class: "sort", type: "button", title: `${title}: click to sort` }, label);
      b.addEventListener("click", () => {
        this.sort = nextSort(this.sort, key);
        store.listDirty = true;
      });
      const h = el("th", { class: cls, "data-sort": key, "aria-sort": "none" }, b);
      this.heads.set(key, h);
      return h;
    };
    const head = el(
      "thead",
      {},
      el(
        "tr",
        {},
        th("sym", "Instrument", "sym", "Symbol"),
        th("venue", "Venue", "venue", "Venue"),
        th("last", "Last", "", "Last trade"),
        th("bid", "Bid", "hide-narrow", "Best bid"),
        th("ask", "Ask", "hide-narrow", "Best ask"),
        th("chg", "Chg", "chg", "Change since the session open (UTC day)"),
        th("pct", "Chg%", "", "Change since the session open, percent"),
        th("vol", "Vol", "", "Session volume"),
      ),
    );
    this.tbody = el("tbody");
    this.table = el("table", { class: "wl" }, head, this.tbody);
    this.tbody.addEventListener("click", (e) => {
      const tr = (e.target as HTMLElement).closest("tr");
      const id = tr?.dataset.id;
      if (!id) return;
      if ((e.target as HTMLElement).closest(".fav")) {
        // On a hidden row (the Hidden filter) the star's place restores it.
        if (store.hidden.has(id)) this.setHidden(id, false);
        else this.toggleFavourite(id);
        return;
      }
      this.onFocus(id);
      this.onPick(id);
    });
    this.emptyText = el("span", { class: "wl-empty-text" });
    const clear = el("button", { class: "wl-clear", type: "button" }, "Show all");
    this.hiddenOption = this.filterSel.querySelector('option[value="hidden"]')!;
    clear.addEventListener("click", () => {
      this.search.value = "";
      this.filterSel.value = "all";
      store.listDirty = true;
    });
    this.empty = el("div", { class: "wl-empty", role: "status", hidden: "" }, this.emptyText, clear);
    this.scroller = el("div", { class: "scroll" }, this.table, this.empty);
    this.loadingText = el("div", { class: "wl-loading-text" });
    this.loading = el(
      "div",
      { class: "wl-loading loading-state", role: "status", "aria-live": "polite", "aria-busy": "true" },
      this.loadingText,
      ...Array.from({ length: 8 }, (_, i) => el("div", { class: "skeleton-line", style: `width: ${[100, 85, 95, 70, 100, 90, 80, 95][i]}%` })),
    );
    this.root = el(
      "section",
      { class: "panel watchlist", "aria-label": "Watchlist" },
      el("div", { class: "panel-head" }, this.search, this.filterSel, this.count),
      this.loading,
      this.scroller,
    );
  }

  /** Shows what the page waits for ("" hides the loading state for good: data is on screen). */
  setLoading(text: string): void {
    setText(this.loadingText, text);
    this.loading.hidden = text === "";
  }

  private rowView(id: string): RowView {
    let v = this.rows.get(id);
    if (v) return v;
    const td = (cls: string) => el("td", { class: cls });
    const sym = el("span", { class: "symtext" });
    const badge = el("span", { class: "badge" });
    const tr = el("tr", { "data-id": id });
    const fav = el("button", { class: "fav", type: "button" });
    this.paintFavourite(fav, this.favourites.has(id));
    const symTd = el("td", { class: "sym" }, fav, sym, badge);
    v = {
      tr,
      fav,
      sym,
      venue: td("venue"),
      badge,
      last: td("num last"),
      bid: td("num bid hide-narrow"),
      ask: td("num ask hide-narrow"),
      chg: td("num chg"),
      pct: td("num pct"),
      vol: td("num vol"),
    };
    tr.append(symTd, v.venue, v.last, v.bid, v.ask, v.chg, v.pct, v.vol);
    this.rows.set(id, v);
    return v;
  }

  private matches(id: string, q: string, f: Filter): boolean {
    const r = this.store.rows.get(id)!;
    if (q) {
      const info = r.info;
      const hay = `${id} ${info?.base ?? ""} ${info?.quote ?? ""}`.toLowerCase();
      if (!hay.includes(q)) return false;
    }
    // A hidden instrument is listed by the Hidden filter only.
    if (f === "hidden") return this.store.hidden.has(id);
    if (this.store.hidden.has(id)) return false;
    if (f === "stale") return r.stale;
    if (f === "fav") return this.favourites.has(id);
    if (f === "up" || f === "down") {
      const st = this.store.sub(id)?.replica.stats;
      if (!st || st.open === 0n) return false;
      return f === "up" ? st.last > st.open : st.last < st.open;
    }
    return true;
  }

  /** Rebuilds which rows are shown (search, filter, new instruments, focus). */
  paintList(): void {
    const q = this.search.value.trim().toLowerCase();
    const f = this.filterSel.value as Filter;
    this.visible = this.store.order.filter((id) => this.matches(id, q, f));
    // Favourites first, each group in the sort's order (stable: the feed's order among equals).
    const s = this.sort;
    const vals = s ? new Map(this.visible.map((id) => [id, this.sortValue(id, s.key)])) : undefined;
    this.visible.sort((a, b) => {
      const fa = this.favourites.has(a) ? 0 : 1;
      const fb = this.favourites.has(b) ? 0 : 1;
      if (fa !== fb) return fa - fb;
      return s && vals ? compareValues(vals.get(a), vals.get(b), s.dir) : 0;
    });
    for (const [k, h] of this.heads) {
      h.setAttribute("aria-sort", s?.key === k ? (s.dir === 1 ? "ascending" : "descending") : "none");
      setClass(h, "sorted", s?.key === k);
    }
    // The Venue column when the instruments come from more than one venue.
    const venues = new Set<string>();
    for (const id of this.store.order) venues.add(this.store.rows.get(id)?.info?.venue ?? "");
    this.multiVenue = venues.size > 1;
    setClass(this.table, "multi-venue", this.multiVenue);
    const frag = document.createDocumentFragment();
    for (const id of this.visible) {
      const v = this.rowView(id);
      setClass(v.tr, "focused", id === this.store.focus);
      const hidden = this.store.hidden.has(id);
      if (hidden !== v.tr.classList.contains("is-hidden")) {
        setClass(v.tr, "is-hidden", hidden);
        this.paintFavourite(v.fav, this.favourites.has(id), hidden);
      }
      frag.append(v.tr);
    }
    this.tbody.replaceChildren(frag);
    setText(this.count, `${this.visible.length}/${this.store.order.length}`);
    const nHidden = this.store.order.filter((id) => this.store.hidden.has(id)).length;
    setText(this.hiddenOption, nHidden > 0 ? `Hidden (${nHidden})` : "Hidden");
    this.count.title = nHidden > 0 ? `${nHidden} hidden: the Hidden filter lists them` : "";
    // Nothing matches: say so, rather than an empty box that looks like a list still loading.
    const none = this.visible.length === 0 && this.store.order.length > 0;
    this.empty.hidden = !none;
    if (none) {
      const what = q ? `No instrument matches “${this.search.value.trim()}”` : "No instrument";
      const filter = f === "all" ? "" : ` among ${this.filterSel.selectedOptions[0]?.textContent?.toLowerCase() ?? f}`;
      // Everything hidden: say where they are.
      const hiddenNote = f !== "hidden" && nHidden > 0 ? ` ${nHidden} hidden: the Hidden filter lists them.` : "";
      setText(this.emptyText, `${what}${filter}.${hiddenNote}`);
    }
    const focused = this.store.focus && this.rows.get(this.store.focus);
    if (focused && focused.tr.isConnected) this.reveal(focused.tr);
  }

  /**
   * Scrolls the list (only the list: scrollIntoView would also scroll the page on a narrow
   * screen, where the list is below the chart) so that the row is visible.
   */
  private reveal(tr: HTMLElement): void {
    const box = this.scroller;
    const head = this.tbody.previousElementSibling?.getBoundingClientRect().height ?? 0;
    const top = tr.offsetTop - head;
    const bottom = tr.offsetTop + tr.offsetHeight;
    if (top < box.scrollTop) box.scrollTop = top;
    else if (bottom > box.scrollTop + box.clientHeight) box.scrollTop = bottom - box.clientHeight;
  }

  /** What a row is sorted by: the figures as painted (an instrument without them goes last). */
  private sortValue(id: string, key: SortKey): string | number | undefined {
    const r = this.store.rows.get(id);
    const info = r?.info;
    if (key === "sym") return info?.symbol || id;
    if (key === "venue") return info?.venue ?? "";
    const sub = this.store.sub(id);
    if (!sub || sub.allDenied()) return undefined;
    const ps = info?.priceScale ?? 0;
    const q = sub.replica.quote;
    if (key === "bid") return sub.denied(Channel.QUOTE) || q.bidSize === 0n ? undefined : num(q.bidPrice, ps);
    if (key === "ask") return sub.denied(Channel.QUOTE) || q.askSize === 0n ? undefined : num(q.askPrice, ps);
    const last = this.store.last(id);
    if (key === "last") return last ? num(last.price, ps) : undefined;
    const st = sub.denied(Channel.STATS) ? undefined : sub.replica.stats;
    if (!st || st.tradeCount === 0n) return undefined;
    if (key === "vol") return num(st.volume, info?.sizeScale ?? 0);
    if (!last || last.source === "history") return undefined;
    if (key === "chg") return num(last.price - st.open, ps);
    return st.open === 0n ? undefined : num(last.price - st.open, ps) / num(st.open, ps);
  }

  private paintFavourite(b: HTMLButtonElement, on: boolean, hidden = false): void {
    setClass(b, "restore", hidden);
    if (hidden) {
      setText(b, "↩");
      b.setAttribute("aria-pressed", "false");
      b.setAttribute("aria-label", "Restore to the watchlist");
      b.title = "Hidden from the watchlist: click to restore it (or x)";
      setClass(b, "on", false);
      return;
    }
    setText(b, on ? "★" : "☆");
    b.setAttribute("aria-pressed", String(on));
    b.setAttribute("aria-label", on ? "Remove from favourites" : "Add to favourites");
    b.title = on ? "Favourite (kept in this browser): click to remove" : "Add to favourites (first in the list, kept in this browser)";
    setClass(b, "on", on);
  }

  /** Hides an instrument from the watchlist or restores it, kept in localStorage. */
  setHidden(id: string, on: boolean): void {
    const before = this.visible.slice();
    if (!this.store.setHidden(id, on)) return;
    saveHidden(localStore(), this.store.hidden);
    // The focused row leaves the list: the focus goes to its neighbour (Hidden filter: the
    // restored one leaves it, likewise).
    const leaves = this.filterSel.value === "hidden" ? !on : on;
    if (id === this.store.focus && leaves) {
      const next = focusAfterHiding(before, id);
      if (next) this.onFocus(next);
    }
  }

  /** x or Delete: hides the focused instrument, or restores it when it is hidden. */
  toggleHiddenFocused(): void {
    const id = this.store.focus;
    if (id) this.setHidden(id, !this.store.hidden.has(id));
  }

  toggleFavourite(id: string): void {
    const on = !this.favourites.has(id);
    if (on) this.favourites.add(id);
    else this.favourites.delete(id);
    saveFavourites(localStore(), this.favourites);
    const v = this.rows.get(id);
    if (v) this.paintFavourite(v.fav, on);
    this.store.listDirty = true;
  }

  paintRow(id: string): void {
    const r = this.store.rows.get(id);
    const v = this.rows.get(id);
    if (!r || !v) return;
    const info = r.info;
    const ps = info?.priceScale ?? 0;
    const ss = info?.sizeScale ?? 0;
    const sub = this.store.sub(id);
    const rep = sub?.replica;
    setText(v.sym, info?.symbol || id);
    v.sym.title = id;
    setText(v.venue, info?.venue ?? "");
    // A consolidated instrument is listed like any other; its venue cell names its members.
    v.venue.title = info && info.members.length > 0 ? `consolidated of ${info.members.join(", ")}` : "";
    // The token not covering the instrument says why nothing comes; then a halt explains the
    // silence that would otherwise read as stale.
    const denied = !!sub?.allDenied();
    const halt = denied ? "" : haltLabel(info?.status);
    // WAIT: the feed stopped a stream of it until a fresh snapshot (StreamStatus, the book).
    const badge = denied ? "NOT ENTITLED" : halt || (r.stale ? "STALE" : r.resyncing > 0 ? "RESYNC" : r.awaiting > 0 ? "WAIT" : "");
    setText(v.badge, badge);
    setClass(v.badge, "denied", denied);
    setClass(v.badge, "halted", halt !== "");
    setClass(v.badge, "stale", !denied && !halt && r.stale);
    setClass(v.badge, "resync", !denied && !halt && !r.stale && r.resyncing > 0);
    setClass(v.badge, "awaiting", badge === "WAIT");
    v.badge.title = badge === "WAIT" ? `book awaiting snapshot: ${sub?.awaiting.get(Channel.BOOK) ?? "the feed waits for a fresh snapshot"}` : "";
    setClass(v.tr, "is-stale", r.stale);
    setClass(v.tr, "is-denied", denied);
    v.tr.title = denied ? "Not entitled: your token does not cover this instrument" : "";
    if (denied) {
      // Empty: the badge reaches over them (it takes no width, so no column widens for it).
      for (const e of [v.last, v.bid, v.ask, v.chg, v.pct, v.vol]) setText(e, "");
      v.pLast = v.pBid = v.pAsk = undefined;
      return;
    }
    if (!rep) return;
    // One channel the token lacks (a token with quotes but no session figures): its cells are
    // empty and say why on hover.
    const quoteDenied = !!sub?.denied(Channel.QUOTE);
    const statsDenied = !!sub?.denied(Channel.STATS);
    for (const e of [v.bid, v.ask]) e.title = quoteDenied ? "not entitled to quotes" : "";
    for (const e of [v.last, v.chg, v.pct]) e.title = statsDenied ? "not entitled to stats" : "";
    const q = rep.quote;
    const st = statsDenied ? undefined : rep.stats;
    // Only a trade moves "last": it flashes. Bid and ask move many times a second on a busy
    // instrument; flashing them too would turn the list into noise (and cost paint time), so
    // they show their last move as a colour instead.
    const cell = (e: HTMLElement, m: bigint | undefined, prev: bigint | undefined, empty: boolean, flashIt: boolean) => {
      setText(e, m === undefined || empty ? "—" : formatDecimal(m, ps));
      if (m !== undefined && prev !== undefined && m !== prev && !empty) {
        if (flashIt) flash(e, m > prev);
        else {
          setClass(e, "moved-up", m > prev);
          setClass(e, "moved-down", m < prev);
        }
      }
      return m;
    };
    // "last" is the store's one value (market/last.ts): on the focused row, the header's and the
    // tape's; on the others, the session's last trade.
    const last = this.store.last(id);
    v.pLast = cell(v.last, last?.price, v.pLast, !last, true);
    setClass(v.last, "history", last?.source === "history");
    if (last) v.last.title = last.source === "history" ? "The venue's last trade before ingest connected (no live trade yet)" : "";
    v.pBid = cell(v.bid, q.bidPrice, v.pBid, quoteDenied || q.bidSize === 0n, false);
    v.pAsk = cell(v.ask, q.askPrice, v.pAsk, quoteDenied || q.askSize === 0n, false);
    if (!this.quoted && (last || (!quoteDenied && (q.bidSize > 0n || q.askSize > 0n)))) this.quoted = true;
    if (last && last.source !== "history" && st && st.tradeCount > 0n) {
      const d = last.price - st.open;
      setText(v.chg, formatSigned(d, ps));
      setText(v.pct, formatPercentChange(st.open, last.price));
      setText(v.vol, formatCompact(st.volume, ss));
      v.vol.title = formatDecimal(st.volume, ss);
      const dir = d > 0n ? "pos" : d < 0n ? "neg" : "";
      for (const e of [v.chg, v.pct]) {
        setClass(e, "pos", dir === "pos");
        setClass(e, "neg", dir === "neg");
      }
    } else {
      setText(v.chg, "—");
      setText(v.pct, "—");
      setText(v.vol, "—");
      v.vol.title = statsDenied ? "not entitled to stats" : "";
    }
  }

  /**
   * Whether the filter or the sort depends on moving figures (then the list is re-filtered and
   * re-sorted every second, not on every tick: rows that jump around cannot be read or tapped).
   */
  filterMoves(): boolean {
    const s = this.sort?.key;
    return this.filterSel.value === "up" || this.filterSel.value === "down" || (!!s && s !== "sym" && s !== "venue");
  }

  /** Moves the focus by delta rows among the visible ones. */
  move(delta: number): void {
    if (this.visible.length === 0) return;
    const i = this.store.focus ? this.visible.indexOf(this.store.focus) : -1;
    const j = i < 0 ? 0 : Math.min(this.visible.length - 1, Math.max(0, i + delta));
    this.onFocus(this.visible[j]!);
  }
}

/** The watchlist badge for an instrument that is not trading ("" when it is). */
export function haltLabel(status: InstrumentStatus | undefined): string {
  switch (status) {
    case InstrumentStatus.HALTED:
      return "HALTED";
    case InstrumentStatus.CLOSED:
      return "CLOSED";
    default:
      return "";
  }
}

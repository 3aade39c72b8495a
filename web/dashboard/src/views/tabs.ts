// The tab bar of the compact layout (phones, and any screen up to 900 px wide or a short one up
// to 1100: styles.css, "Compact layout"). One panel at a time fills the space between the top
// bar and the status bar: Markets (the watchlist), Chart (the instrument header and the chart),
// Book and Trades (each under the instrument header). Nothing is fixed over the content and the
// page itself never scrolls, so the top bar, the tabs and the status bar are always whole.
// Picking an instrument in Markets (a tap, or Enter in the search) opens its chart. On wider
// screens the bar is hidden and every panel is shown at once; body[data-tab] is then ignored.

import type { Store } from "../app/store";
import { el, setClass } from "./dom";

export type Tab = "list" | "chart" | "book" | "trades";

const tabs: [Tab, string][] = [
  ["list", "Markets"],
  ["chart", "Chart"],
  ["book", "Book"],
  ["trades", "Trades"],
];

export class TabsView {
  readonly root: HTMLElement;
  private readonly buttons = new Map<Tab, HTMLButtonElement>();
  /** The tab shown in the compact layout. Markets first: it holds the loading state. */
  tab: Tab = "list";

  constructor(private readonly store: Store) {
    this.root = el("nav", { class: "tabs", role: "tablist", "aria-label": "Panels" });
    for (const [t, label] of tabs) {
      const b = el("button", { class: "tab", type: "button", role: "tab", "data-tab": t }, label);
      b.addEventListener("click", () => this.show(t));
      this.buttons.set(t, b);
      this.root.append(b);
    }
    this.show(this.tab);
  }

  /** Whether the compact layout (and so this bar) is in use. */
  get compact(): boolean {
    return this.root.getClientRects().length > 0;
  }

  show(t: Tab): void {
    this.tab = t;
    document.body.dataset.tab = t;
    for (const [k, b] of this.buttons) {
      b.setAttribute("aria-selected", String(k === t));
      setClass(b, "active", k === t);
    }
    // The list was not laid out while hidden: repaint it, which scrolls the focused row into view.
    if (t === "list") this.store.listDirty = true;
  }

  /** An instrument was picked in the watchlist: in the compact layout, show its chart. */
  picked(): void {
    if (this.compact) this.show("chart");
  }
}

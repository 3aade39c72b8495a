// The keyboard help: an overlay (a modal dialog) listing every shortcut the page handles (main.ts,
// the keyboard handler), opened with `?` or the top bar's "?" button, closed with Esc, its close
// button or a click outside. Focus moves into it when it opens and back where it was when it
// closes; Tab stays inside while it is open.

import { el } from "./dom";

/** One line of the help: the keys (each shown as a key cap; "–" between two is a range) and what they do. */
export interface Shortcut {
  keys: string[];
  what: string;
}

/**
 * Every shortcut of the page, in the order the help lists them. intervalLabels are the chart's
 * intervals in key order (candles.ts `intervals`: the key n picks the n-th, up to 9).
 */
export function shortcuts(intervalLabels: readonly string[]): Shortcut[] {
  const n = Math.min(9, intervalLabels.length);
  const list: Shortcut[] = [
    { keys: ["↑", "↓"], what: "Previous / next instrument in the watchlist" },
    { keys: ["k", "j"], what: "Previous / next instrument (as ↑ ↓)" },
    { keys: ["PgUp", "PgDn"], what: "Ten instruments up / down" },
    { keys: ["/"], what: "Search the watchlist: Enter (or ↓) focuses the first match, Esc clears the search" },
  ];
  if (n > 0) {
    list.push({
      keys: n > 1 ? ["1", "–", String(n)] : ["1"],
      what: `Chart interval: ${intervalLabels.slice(0, n).map((l, i) => `${i + 1} ${l}`).join(", ")}`,
    });
  }
  list.push(
    { keys: ["x", "Delete"], what: "Hide the focused instrument from the watchlist; in the Hidden filter, restore it" },
    { keys: ["?"], what: "This help" },
    { keys: ["Esc"], what: "Close this help" },
  );
  return list;
}

export class HelpView {
  /** The backdrop over the page, holding the dialog; hidden while closed. */
  readonly root: HTMLElement;
  readonly dialog: HTMLElement;
  /** The top bar's "?" button. */
  readonly button: HTMLButtonElement;
  private readonly closeBtn: HTMLButtonElement;
  /** Where the focus was when the help opened: it goes back there. */
  private returnTo: HTMLElement | null = null;

  constructor(intervalLabels: readonly string[]) {
    this.button = el("button", { class: "help-btn", type: "button", title: "Keyboard shortcuts ( ? )", "aria-label": "Keyboard shortcuts", "aria-haspopup": "dialog" }, "?");
    this.button.addEventListener("click", () => this.open());
    this.closeBtn = el("button", { class: "help-close", type: "button", "aria-label": "Close the help" }, "×");
    this.closeBtn.addEventListener("click", () => this.close());
    const rows = shortcuts(intervalLabels).map((s) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, ...s.keys.map((k) => (k === "–" ? el("span", { class: "help-range" }, "–") : el("kbd", {}, k)))),
        el("td", {}, s.what),
      ),
    );
    this.dialog = el(
      "div",
      { class: "help", role: "dialog", "aria-modal": "true", "aria-labelledby": "help-title", tabindex: "-1" },
      el("div", { class: "help-head" }, el("h2", { id: "help-title" }, "Keyboard shortcuts"), this.closeBtn),
      el("table", { class: "help-keys" }, el("tbody", {}, ...rows)),
      el("p", { class: "help-note muted" }, "Keys work anywhere but in a text field (Esc leaves the search). Hidden instruments are kept in this browser; the watchlist's Hidden filter lists them."),
    );
    this.root = el("div", { class: "help-backdrop", hidden: "" }, this.dialog);
    // A click outside the dialog (on the backdrop) closes it.
    this.root.addEventListener("mousedown", (e) => {
      if (e.target !== this.root) return;
      e.preventDefault(); // or the press would move the focus to the page, away from where close() puts it
      this.close();
    });
  }

  get isOpen(): boolean {
    return !this.root.hidden;
  }

  open(): void {
    if (this.isOpen) return;
    const a = document.activeElement;
    this.returnTo = a instanceof HTMLElement && a !== document.body ? a : null;
    this.root.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    this.closeBtn.focus();
  }

  close(): void {
    if (!this.isOpen) return;
    this.root.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    const back = this.returnTo?.isConnected ? this.returnTo : this.button;
    this.returnTo = null;
    back.focus();
  }

  /**
   * The page's keydown while the help is open (main.ts calls it first): Esc closes, Tab stays
   * inside, every other key is the dialog's alone. Returns whether the key was taken.
   */
  onKey(e: KeyboardEvent): boolean {
    if (!this.isOpen) return false;
    if (e.key === "Escape") {
      e.preventDefault();
      this.close();
      return true;
    }
    if (e.key === "Tab") {
      // One control inside: the focus stays on it.
      e.preventDefault();
      this.closeBtn.focus();
      return true;
    }
    if (e.key === "Enter" || e.key === " ") return false; // the close button's own click
    return true;
  }
}

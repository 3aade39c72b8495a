// Tiny DOM helpers: the views build their elements once and then only change text and classes.

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** Sets text only when it changed: a DOM write costs a style recalc, a string compare does not. */
export function setText(e: HTMLElement, s: string): boolean {
  if (e.textContent === s) return false;
  e.textContent = s;
  return true;
}

export function setClass(e: HTMLElement, cls: string, on: boolean): void {
  if (e.classList.contains(cls) !== on) e.classList.toggle(cls, on);
}

/**
 * Flashes a cell green or red. Two alternating animation classes restart the CSS animation
 * without forcing a reflow (removing and re-adding the same class would need one in between).
 */
export function flash(e: HTMLElement, up: boolean): void {
  const dir = up ? "up" : "down";
  const a = `flash-${dir}-a`;
  const b = `flash-${dir}-b`;
  const next = e.classList.contains(a) ? b : a;
  e.classList.remove("flash-up-a", "flash-up-b", "flash-down-a", "flash-down-b");
  e.classList.add(next);
}

/** Local wall-clock time with milliseconds, from Unix nanoseconds. */
export function timeOfNs(ns: bigint): string {
  if (ns <= 0n) return "--:--:--.---";
  const d = new Date(Number(ns / 1_000_000n));
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

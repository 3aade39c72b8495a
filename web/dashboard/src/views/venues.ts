// Venue tags in the DOM (market/venues.ts makes them): the ladder's levels and the header's
// members of a consolidated instrument.

import type { VenueTag } from "../market/venues";
import { el } from "./dom";

/** Replaces host's children with one span per tag (its label, tooltip and colour class). */
export function paintVenueTags(host: HTMLElement, tags: readonly VenueTag[]): void {
  host.replaceChildren(...tags.map((t) => el("span", { class: t.cls, title: t.title }, t.label)));
}

// A consolidated instrument's venues on screen (docs/PROTOCOL.md §5.4): each level of its book
// says in Level.venues (a bit set over InstrumentInfo.members) which member venues quote there.
// The ladder shows one compact tag per venue, named by the member's venue ("synthetic-b" for
// "synthetic-b:ACME"; abbreviated when the members' venues are long: venueLabels), coloured by
// its bit so that a venue has the same colour on every level and in the header's list of members.

import { levelMembers } from "@tickwire/client";

/** Distinct tag colours (CSS classes vt-0 .. vt-5); bit i takes colour i mod this. */
export const venueColours = 6;

/**
 * The most characters the members' venue names may take together and still be shown whole on
 * each level: two tags of that many fit a narrow ladder's Venues column (292 px wide at 1024,
 * 390 on a phone). Past it, every label is abbreviated (venueLabels).
 */
export const labelBudget = 20;

/** One venue tag: what it says, its tooltip, its CSS classes. */
export interface VenueTag {
  /** The member's venue ("synthetic-b"), or "?" for a bit past the members listed. */
  label: string;
  /** The member instrument id, or why the venue is not known. */
  title: string;
  /** "vt vt-<bit mod venueColours>", or "vt unknown". */
  cls: string;
}

/** The venue of an instrument id "venue:symbol": the part before the first colon (all of it without one). */
export function shortVenue(id: string): string {
  const i = id.indexOf(":");
  return i < 0 ? id : id.slice(0, i);
}

/**
 * The labels of the members' tags, in members' order: their venues ("synthetic",
 * "synthetic-b") when these take at most `budget` characters together, else each venue
 * abbreviated to the first 3 characters of each part between "-" and "_" ("syn", "syn-b",
 * "coi" for coinbase), lengthened where two would be the same ("bits", "bitf").
 */
export function venueLabels(members: readonly string[], budget = labelBudget): string[] {
  const names = members.map(shortVenue);
  if (names.reduce((n, v) => n + v.length, 0) <= budget) return names;
  const labels = names.map((v) => abbreviate(v, 3));
  for (let n = 4; n <= 32; n++) {
    const shared = duplicates(labels);
    if (shared.size === 0) break;
    labels.forEach((l, i) => {
      if (shared.has(l)) labels[i] = abbreviate(names[i]!, n);
    });
  }
  return labels;
}

/** Each part of a venue name between "-" and "_" cut to n characters, the separators kept. */
function abbreviate(venue: string, n: number): string {
  return venue
    .split(/([-_])/)
    .map((p) => (p === "-" || p === "_" ? p : p.slice(0, n)))
    .join("");
}

/** The labels that occur more than once. */
function duplicates(labels: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const l of labels) (seen.has(l) ? dup : seen).add(l);
  return dup;
}

/**
 * The tag of member bit `bit` of an instrument whose members are `members` (labels: their
 * venueLabels, computed once per members by callers that tag many levels).
 */
export function venueTag(bit: number, members: readonly string[], labels = venueLabels(members)): VenueTag {
  const m = members[bit];
  if (m === undefined) {
    return { label: "?", title: `venue bit ${bit}: not among the instrument's ${members.length} members`, cls: "vt unknown" };
  }
  return { label: labels[bit] ?? shortVenue(m), title: m, cls: `vt vt-${bit % venueColours}` };
}

/**
 * The tags of a level's venues bit set, lowest bit first: bit i is members[i]; a bit past the
 * list is a "?" tag (an instrument info that does not match its book), not an error. 0 (any
 * book not consolidated) gives none.
 */
export function venueTags(venues: number, members: readonly string[], labels = venueLabels(members)): VenueTag[] {
  return levelMembers(venues, members).map((m) => venueTag(m.bit, members, labels));
}

/** The tags of every member, in order: the legend of a consolidated instrument. */
export function memberTags(members: readonly string[]): VenueTag[] {
  const labels = venueLabels(members);
  return members.map((_, bit) => venueTag(bit, members, labels));
}

/** The tooltip of a level's venues: "synthetic:ACME, synthetic-b:ACME" (empty for none). */
export function venuesTitle(tags: readonly VenueTag[]): string {
  return tags.map((t) => t.title).join(", ");
}

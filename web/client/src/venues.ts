// A consolidated instrument (venue "consolidated", docs/PROTOCOL.md §5.4) merges one asset's books
// from several venues: InstrumentInfo.members lists the member instruments, and each level of its
// book says in Level.venues (a bit set over members) which of them quote at that price.

import type { InstrumentInfo } from "./gen/tickwire/v1/market_pb.js";

/** The venue of consolidated instruments ("consolidated:ACME"). */
export const consolidatedVenue = "consolidated";

/** Whether an instrument is consolidated: its InstrumentInfo lists members. */
export function isConsolidated(info: Pick<InstrumentInfo, "members"> | undefined): boolean {
  return (info?.members.length ?? 0) > 0;
}

/** One venue quoting at a consolidated book's level. */
export interface LevelMember {
  /** The bit of Level.venues, 0..31. */
  bit: number;
  /**
   * InstrumentInfo.members[bit], the member instrument id ("synthetic-b:ACME"); undefined for a
   * bit past the members listed (an InstrumentInfo that does not match the book).
   */
  member: string | undefined;
}

/**
 * The members a level's venues bit set names, lowest bit first: bit i is members[i]. Bits past
 * the list are returned with member undefined, not dropped. 0 (any book not consolidated)
 * gives an empty list.
 */
export function levelMembers(venues: number, members: readonly string[]): LevelMember[] {
  const out: LevelMember[] = [];
  const v = venues >>> 0;
  for (let bit = 0; bit < 32; bit++) {
    if ((v >>> bit) & 1) out.push({ bit, member: members[bit] });
  }
  return out;
}

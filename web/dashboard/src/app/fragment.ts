// The URL fragment the page is opened with: a sign-in token handed over once (`token=...`) and
// the instrument to focus (its id, URI-encoded or not), in either order, joined by `&`:
// `#token=...&synthetic%3AACME` or `#synthetic:ACME&token=...`.

/** The fragment split: the token (null without one) and the rest, without `#` ("" when none). */
export interface Fragment {
  token: string | null;
  rest: string;
}

/** Splits a location.hash ("#a&token=t&b", "" or "#") into its token and the rest ("a&b"). */
export function splitFragment(hash: string): Fragment {
  const parts = hash.replace(/^#/, "").split("&");
  let token: string | null = null;
  const rest: string[] = [];
  for (const p of parts) {
    if (p === "") continue;
    if (token === null && p.startsWith("token=")) token = decodePart(p.slice("token=".length));
    else rest.push(p);
  }
  return { token, rest: rest.join("&") };
}

/** The instrument a fragment names (the first part that is not a token), decoded; "" if none. */
export function fragmentFocus(hash: string): string {
  const first = splitFragment(hash).rest.split("&")[0] ?? "";
  return decodePart(first);
}

function decodePart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // a stray "%": taken as written
  }
}

/** What to focus after instruments were listed, and which wanted one is still awaited. */
export interface FocusChoice {
  focus: string | undefined;
  wanted: string;
}

/**
 * The focus once more instruments are listed. `wanted` is the instrument the page was opened
 * with (its fragment) until it is focused or the user picks another ("" then); `current` is the
 * focus now, `first` the first listed in order. The wanted instrument is focused as soon as it
 * is listed, even after another was focused meanwhile: a replay session this feed joins afresh
 * lists its instruments as the replayer resends them, so the first list may lack the wanted
 * one, and a shared link would otherwise open on whichever came first. Until then the current
 * focus stays, or the first in order when nothing is focused.
 */
export function nextFocus(current: string | undefined, wanted: string, isListed: (id: string) => boolean, first: string | undefined): FocusChoice {
  if (wanted !== "" && isListed(wanted)) return { focus: wanted, wanted: "" };
  return { focus: current ?? first, wanted };
}

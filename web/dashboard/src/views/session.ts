// Who is signed in and until when (in the top bar), the banner asking for a new token before
// the current one runs out, and the sign-in form after the feed closed the connection for its
// credentials (app/session.ts has the logic).

import type { Session } from "../app/session";
import { formatLeft } from "../app/session";
import type { FeedClient } from "@tickwire/client";
import { channelName } from "@tickwire/client";
import { el, setClass, setText } from "./dom";

/** Local wall-clock time (HH:MM:SS) of Unix ms. */
function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A token field with its button; Enter submits. */
function tokenField(label: string, submit: (value: string) => string): { root: HTMLElement; input: HTMLInputElement; error: HTMLElement } {
  const input = el("input", {
    type: "password",
    class: "token-input",
    placeholder: "paste a token (eyJ…)",
    "aria-label": "Token",
    autocomplete: "off",
    spellcheck: "false",
  });
  const error = el("span", { class: "token-error", role: "alert" });
  const button = el("button", { class: "token-submit", type: "button" }, label);
  const go = () => {
    const err = submit(input.value);
    setText(error, err);
    if (!err) input.value = ""; // out of the page once handed over
  };
  button.addEventListener("click", go);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      go();
    }
  });
  return { root: el("span", { class: "token-field" }, input, button, error), input, error };
}

export class SessionView {
  /** In the top bar: "alice · token expires 14:32:05 (in 47 min)". */
  readonly who: HTMLElement;
  /** Under the top bar while the token is running out. */
  readonly banner: HTMLElement;
  /** Over the page after a close for the credentials. */
  readonly signin: HTMLElement;
  private readonly whoName = el("span", { class: "who-name" });
  private readonly whoExp = el("span", { class: "who-exp num" });
  private readonly whoDenied = el("span", { class: "who-denied" });
  private readonly bannerText = el("span", { class: "session-text" });
  private readonly bannerWhy = el("span", { class: "session-why muted" });
  private readonly signinWhy = el("p", { class: "signin-why" });
  private readonly signinState = el("p", { class: "signin-state muted" });
  private readonly signinInput: HTMLInputElement;
  private wasSignin = false;

  constructor(
    private readonly session: Session,
    private readonly client: FeedClient,
    tokenURL: string | undefined,
  ) {
    this.who = el("span", { class: "who", title: "Signed in as (the token's subject), and when the token expires" }, this.whoName, this.whoExp, this.whoDenied);
    const retry = () => {
      const b = el("button", { class: "token-retry", type: "button", title: `Ask ${tokenURL} for a new token (your sign-in session)` }, "get a new token");
      b.addEventListener("click", () => session.retry());
      return b;
    };
    const paste = tokenField("use token", (v) => session.paste(v));
    this.banner = el(
      "div",
      { class: "session-bar", role: "alert", hidden: "" },
      this.bannerText,
      paste.root,
      ...(tokenURL ? [retry()] : []),
      this.bannerWhy,
    );
    const form = tokenField("sign in", (v) => session.paste(v));
    this.signinInput = form.input;
    this.signin = el(
      "div",
      { class: "signin", hidden: "" },
      el(
        "div",
        { class: "signin-card", role: "dialog", "aria-modal": "true", "aria-label": "Sign in" },
        el("h2", {}, "Sign in"),
        this.signinWhy,
        el("p", {}, "Paste a token to go on (make run prints a sign-in link; operators mint tokens with tickctl token)."),
        form.root,
        ...(tokenURL ? [el("p", {}, "Or, after signing in again with your identity provider: ", retry())] : []),
        this.signinState,
        el("p", { class: "muted small" }, "The token stays in this tab (session storage), never in the address bar."),
      ),
    );
  }

  paint(now: number): void {
    const s = this.session;
    const signedIn = s.subject !== "" || s.expiresMs > 0;
    setText(this.whoName, signedIn ? s.subject || "anonymous token" : this.client.state === "connected" ? "not signed in" : "");
    this.who.dataset.subject = s.subject;
    this.who.dataset.expiresMs = String(Math.round(s.expiresMs));
    this.who.dataset.phase = s.phase;
    const left = s.expiresMs - now;
    setText(this.whoExp, !signedIn || s.expiresMs <= 0 ? "" : left > 0 ? `token expires ${clock(s.expiresMs)} (in ${formatLeft(left)})` : `token expired ${clock(s.expiresMs)}`);
    this.whoExp.title = s.refreshes > 0 ? `refreshed ${s.refreshes}× on this connection` : "";
    const denied = [...this.client.deniedChannels].sort((a, b) => a - b).map(channelName);
    setText(this.whoDenied, denied.length > 0 ? `not entitled: ${denied.join(", ")}` : "");

    const expiring = s.phase === "expiring";
    this.banner.hidden = !expiring;
    if (expiring) {
      const left = s.expiresMs - now;
      setText(this.bannerText, left > 0 ? `session expires in ${formatLeft(left)} — paste a new token` : "session expired — paste a new token");
      setText(this.bannerWhy, s.reason);
    }
    const signin = s.phase === "signin";
    this.signin.hidden = !signin;
    document.body.dataset.session = s.phase;
    if (signin && !this.wasSignin) this.signinInput.focus();
    this.wasSignin = signin;
    if (signin) {
      const before = s.subject !== "" || s.expiresMs > 0;
      setText(this.signinWhy, `${before ? "Signed out" : "Not signed in"}: ${s.signinReason}.`);
      // Signing in with a pasted token, or what the token endpoint said when asked.
      const busy = this.client.state === "connecting" || this.client.state === "connected";
      setText(this.signinState, busy ? "signing in…" : s.reason !== s.signinReason ? s.reason : "");
    }
    setClass(this.who, "expiring", expiring);
  }
}

// The replay banner (/?replay=<session>): says plainly that this is a replay, which session,
// where its clock is (UTC, the venue time of the last event replayed), its state, speed, window
// and progress; and controls it: pause/resume, speed, seek (click the progress bar or type a
// time). Commands go out as ClientMessage.replay_control; the feed answers with a ReplayStatus.
//
// Only the session's controllers control it (PROTOCOL.md §18): a token granted replay_control, or
// a subject in ReplayStatus.controllers. Anyone else sees "watching only" and no working controls
// (mayControl; the token's grant is read from its payload for display only, the feed enforces);
// a refusal that comes anyway (NOT_ENTITLED "watching only: ...") is said in the banner and turns
// the controls off until the token or the controllers change.

import { ReplayState } from "@tickwire/client";
import type { Store } from "../app/store";
import type { ReplayAction } from "@tickwire/client";
import { controllersText, formatElapsed, formatUtc, formatWindow, mayControl, newSessionId, parseSeek, planReplay, progress, replayCommand, replayLink, replaySpeeds, replayStartAnswer, replayStartRequest, replayStartTarget, type ReplayStartAnswer, seekAt, speedLabel, stateLabel, type Viewer } from "../market/replay";
import { el, setClass, setText } from "./dom";

export class ReplayView {
  readonly root: HTMLElement;
  private readonly session = el("span", { class: "replay-session num" });
  private readonly clock = el("span", { class: "replay-clock num", title: "Replay clock: venue time of the last event replayed (UTC)" });
  private readonly state = el("span", { class: "replay-state" });
  private readonly toggle = el("button", { class: "replay-toggle", type: "button" }, "Pause");
  private readonly speeds = new Map<number, HTMLButtonElement>();
  private readonly bar = el("div", { class: "replay-progress", role: "slider", "aria-label": "Replay position: click to seek", tabindex: "0" });
  private readonly fill = el("div", { class: "replay-fill" });
  private readonly head = el("div", { class: "replay-head" });
  private readonly window = el("span", { class: "replay-window num muted" });
  private readonly elapsed = el("span", { class: "replay-elapsed num muted" });
  private readonly seek = el("input", { class: "replay-seek num", type: "text", placeholder: "seek: hh:mm:ss UTC", spellcheck: "false", "aria-label": "Seek to a UTC time" });
  private readonly error = el("span", { class: "replay-error", role: "alert" });
  private readonly watching = el("span", { class: "replay-watching" }, "watching only");
  private note = "";
  /** The feed refused a control of ours: for whom (viewerKey), and what it said. */
  private refusedKey: string | undefined;
  private refusedMsg = "";
  /** Whether the controls are off: watching only (set by paint). */
  private readOnly = false;
  onControl: (a: ReplayAction) => boolean = () => false;
  /** Who is watching: the signed-in subject and the token's replay_control (main.ts). */
  viewer: () => Viewer = () => ({ signedIn: false, subject: "", replayControl: false });

  constructor(
    private readonly store: Store,
    sessionId: string,
  ) {
    setText(this.session, sessionId);
    const speedBox = el("span", { class: "replay-speeds", role: "group", "aria-label": "Replay speed" });
    for (const sp of replaySpeeds) {
      const b = el("button", { class: "replay-speed", type: "button", "data-speed": String(sp), title: sp === 0 ? "As fast as possible" : `${sp} times the original pace` }, speedLabel(sp));
      b.addEventListener("click", () => this.send({ case: "speed", value: sp }, `speed ${speedLabel(sp)}`));
      this.speeds.set(sp, b);
      speedBox.append(b);
    }
    this.toggle.addEventListener("click", () => {
      const st = this.store.replayStatus;
      if (st?.state === ReplayState.RUNNING) this.send({ case: "pause", value: true }, "pause");
      else if (st?.state === ReplayState.FINISHED) this.send({ case: "seekTimeNs", value: st.fromNs > 0n ? st.fromNs : 1n }, "restart");
      else this.send({ case: "resume", value: true }, "resume");
    });
    this.bar.append(this.fill, this.head);
    this.bar.addEventListener("click", (e) => {
      const st = this.store.replayStatus;
      if (!st || this.readOnly) return;
      const r = this.bar.getBoundingClientRect();
      const t = seekAt(st, (e.clientX - r.left) / Math.max(1, r.width));
      this.send({ case: "seekTimeNs", value: t > 0n ? t : 1n }, `seek to ${formatUtc(t, false)}`);
    });
    this.bar.addEventListener("keydown", (e) => {
      const st = this.store.replayStatus;
      if (!st || this.readOnly || (e.key !== "ArrowLeft" && e.key !== "ArrowRight")) return;
      e.preventDefault();
      const f = progress(st) + (e.key === "ArrowLeft" ? -0.05 : 0.05);
      const t = seekAt(st, f);
      this.send({ case: "seekTimeNs", value: t > 0n ? t : 1n }, `seek to ${formatUtc(t, false)}`);
    });
    this.seek.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      const st = this.store.replayStatus;
      if (!st) return;
      const t = parseSeek(this.seek.value, st);
      if (typeof t === "string") {
        this.note = `seek: ${t}`;
        this.store.replayDirty = true;
        return;
      }
      if (this.send({ case: "seekTimeNs", value: t }, `seek to ${formatUtc(t, false)}`)) this.seek.blur();
    });
    this.root = el(
      "section",
      { class: "replay-bar", "aria-label": "Replay session" },
      el(
        "div",
        { class: "replay-row" },
        el("span", { class: "replay-tag", title: "Not live: a stored window of events re-streamed by a replay session" }, "REPLAY"),
        el("span", { class: "replay-kv" }, el("span", { class: "k" }, "session"), this.session),
        this.clock,
        this.state,
        this.watching,
        this.toggle,
        speedBox,
        this.seek,
        this.error,
        el("a", { class: "replay-live", href: "/", title: "Leave the replay for the live market" }, "← back to live"),
      ),
      el("div", { class: "replay-row replay-track" }, this.elapsed, this.bar, this.window),
    );
  }

  /**
   * The feed refused a control of ours with NOT_ENTITLED: say what it said, and watch only until
   * the token or the session's controllers change.
   */
  refused(message: string): void {
    this.refusedKey = this.viewerKey();
    this.refusedMsg = message || "watching only: not a controller of this session";
    this.note = "";
    this.store.replayDirty = true;
  }

  /** Who watches, and who controls: a refusal holds for as long as this stays the same. */
  private viewerKey(): string {
    const v = this.viewer();
    return JSON.stringify([v.signedIn, v.subject, v.replayControl, this.store.replayStatus?.controllers ?? []]);
  }

  private send(a: ReplayAction, what: string): boolean {
    if (this.readOnly) return false;
    const ok = this.onControl(a);
    this.note = ok ? "" : `${what}: not connected`;
    this.store.replayDirty = true;
    return ok;
  }

  paint(): void {
    const s = this.store;
    const st = s.replayStatus;
    const connected = s.conn === "connected";
    setText(this.clock, st ? formatUtc(st.clockNs) : "—");
    this.root.dataset.clockNs = st ? st.clockNs.toString() : "";
    const state = st ? stateLabel(st.state) : connected ? "waiting for status" : "not connected";
    setText(this.state, state);
    this.root.dataset.state = st ? stateLabel(st.state) : "";
    for (const c of ["running", "paused", "finished"]) setClass(this.state, c, state === c);
    // Controller, watcher, or not known yet (not signed in: the feed's answer will tell).
    const refused = this.refusedKey !== undefined && this.refusedKey === this.viewerKey();
    if (!refused) this.refusedKey = undefined;
    const may = refused ? false : mayControl(st, this.viewer());
    this.readOnly = may === false;
    this.root.dataset.control = may === true ? "controller" : may === false ? "watching" : "unknown";
    setClass(this.watching, "shown", this.readOnly);
    this.watching.title = this.readOnly ? `Only ${controllersText(st)} may pause, seek or change the speed of this session` : "";
    setText(this.toggle, st?.state === ReplayState.RUNNING ? "❚❚ Pause" : st?.state === ReplayState.FINISHED ? "↺ Restart" : "▶ Resume");
    this.toggle.disabled = !st || !connected || this.readOnly;
    for (const [sp, b] of this.speeds) {
      setClass(b, "active", !!st && (sp === 0 ? !(st.speed > 0) : Math.abs(st.speed - sp) < 1e-9));
      b.disabled = !connected || this.readOnly;
    }
    this.seek.disabled = !st || !connected || this.readOnly;
    setClass(this.bar, "empty", !st);
    setClass(this.bar, "readonly", this.readOnly);
    this.bar.setAttribute("aria-disabled", String(this.readOnly));
    this.bar.tabIndex = this.readOnly ? -1 : 0;
    const f = st ? progress(st) : 0;
    this.fill.style.width = `${(f * 100).toFixed(2)}%`;
    this.head.style.left = `${(f * 100).toFixed(2)}%`;
    this.bar.setAttribute("aria-valuenow", (f * 100).toFixed(0));
    setText(this.window, st ? formatWindow(st.fromNs, st.toNs) : "");
    setText(this.elapsed, st ? formatElapsed(st) : "");
    this.bar.title = st ? `Window ${formatWindow(st.fromNs, st.toNs)} · ${st.events} events · ${st.instruments.length} instruments${this.readOnly ? "" : " · click to seek"}` : "";
    const err = s.replayError || (refused ? this.refusedMsg : "") || this.note;
    setText(this.error, err);
    setClass(this.root, "has-error", err !== "");
    setClass(this.root, "offline", !connected);
  }
}

/** What the form needs to start a replay in the feed (POST /api/replays). */
export interface ReplayStarter {
  /** fetch (the page's; the request carries its own Authorization header). */
  fetch: typeof fetch;
  /** The token the page holds (null: none, an anonymous policy). */
  token: () => string | null;
  /** Goes to the started session's page. */
  navigate: (url: string) => void;
}

/**
 * Opening a replay from the dashboard: pick a window (relative like -2m, or a UTC time), a
 * speed, optionally instruments, go. With a starter, Go asks the feed to start the session
 * (POST /api/replays: feed --replay-start, a token granted replay_control) and, started, goes
 * to it (/?replay=<id>, the token handed over in the fragment); a refusal is said in the form,
 * which stays open. The exact tickctl replay command (the window resolved to UTC times, the
 * signed-in subject as a controller) and the link to watch it are shown as the alternative, and
 * are the way when the feed does not start replays (501) or there is no starter: an operator
 * runs the command (the page waits for the session, retrying, if opened before it runs).
 * root is the "Replay…" button for the top bar; panel is the form, shown under it.
 * panel.dataset.state: "invalid", "starting", "started", "refused", or "command" (the command
 * is the way).
 */
export class ReplayForm {
  readonly root: HTMLButtonElement;
  readonly panel: HTMLElement;
  private readonly from = el("input", { class: "rf-from num", type: "text", value: "-2m", spellcheck: "false", "aria-label": "Window start", size: "20" });
  private readonly to = el("input", { class: "rf-to num", type: "text", value: "-1m", spellcheck: "false", "aria-label": "Window end", size: "20" });
  private readonly speed = el("select", { class: "rf-speed", "aria-label": "Speed" });
  private readonly instruments = el("input", { class: "rf-instruments num", type: "text", placeholder: "all (or venue:SYM, …)", spellcheck: "false", "aria-label": "Instruments (optional)", size: "24" });
  private readonly session = el("input", { class: "rf-session num", type: "text", spellcheck: "false", "aria-label": "Session id", size: "14" });
  private readonly goButton = el("button", { type: "submit", class: "rf-go" }, "Go");
  private readonly error = el("div", { class: "rf-error", role: "alert", style: "color: var(--down); min-height: 1em" });
  private readonly note = el("div", { class: "rf-note muted" });
  private readonly command = el("code", { class: "rf-command num", style: "display: block; white-space: pre-wrap; word-break: break-all; user-select: all; padding: 6px; background: var(--bg); border: 1px solid var(--line); margin: 6px 0" });
  private readonly link = el("a", { class: "rf-link", href: "#" });
  private readonly copy = el("button", { type: "button", class: "rf-copy" }, "Copy command");
  private readonly result = el("div", { class: "rf-result", hidden: "" });
  /** Whether to ask the feed: a starter, and no 501 from this feed yet. */
  private startable: boolean;
  private busy = false;

  /**
   * origin: the feed's HTTP origin (this page's); subject: who is signed in (the session's
   * controller), "" if nobody; now: the wall clock (Unix ms); starter: how to start a session
   * in the feed (none: Go gives the command only).
   */
  constructor(
    private readonly origin: string,
    private readonly subject: () => string,
    private readonly now: () => number = () => Date.now(),
    private readonly starter?: ReplayStarter,
  ) {
    this.startable = !!starter;
    for (const sp of replaySpeeds) this.speed.append(el("option", { value: String(sp) }, speedLabel(sp)));
    this.speed.value = "10";
    this.session.value = newSessionId();
    this.root = el("button", { type: "button", class: "rf-open", title: "Replay a stored window of the market", "aria-expanded": "false" }, "Replay…");
    const field = (label: string, input: HTMLElement) => el("label", { style: "display: inline-flex; flex-direction: column; gap: 2px; margin: 0 8px 6px 0" }, el("span", { class: "muted" }, label), input);
    const form = el(
      "form",
      { class: "rf-form" },
      field("from (UTC, or -2m)", this.from),
      field("to (UTC, -1m, now)", this.to),
      field("speed", this.speed),
      field("instruments", this.instruments),
      field("session", this.session),
      this.goButton,
    );
    this.result.append(this.note, this.command, el("div", {}, this.copy, " then open ", this.link));
    this.panel = el(
      "section",
      {
        class: "replay-form panel",
        "aria-label": "Open a replay",
        hidden: "",
        // contain: content, not .panel's strict: size containment would shrink a fixed,
        // shrink-to-fit box to its padding (the form was a 22 px square).
        style: "contain: content; position: fixed; top: 34px; right: 8px; z-index: 30; max-width: min(640px, calc(100vw - 16px)); max-height: calc(100vh - 48px); overflow: auto; padding: 10px; background: var(--panel); border: 1px solid var(--line); box-shadow: 0 6px 24px rgba(0,0,0,.5); white-space: normal",
      },
      el("div", { class: "panel-head" }, el("h2", {}, "Replay a window")),
      form,
      this.error,
      this.result,
    );
    this.root.addEventListener("click", () => this.show(this.panel.hidden));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.go();
    });
    this.copy.addEventListener("click", () => {
      void navigator.clipboard?.writeText(this.command.textContent ?? "").then(
        () => (this.copy.textContent = "Copied"),
        () => (this.copy.textContent = "Select and copy"),
      );
    });
    this.panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.show(false);
    });
  }

  show(on: boolean): void {
    this.panel.hidden = !on;
    this.root.setAttribute("aria-expanded", String(on));
    if (on) this.from.focus();
  }

  /**
   * Checks the form; shows the command and the link (the alternative), then asks the feed to
   * start the session and goes to it, or says in the form why not (the form stays open). Go is
   * disabled while the feed answers.
   */
  async go(): Promise<void> {
    if (this.busy) return;
    if (this.session.value.trim() === "") this.session.value = newSessionId();
    const p = planReplay({ from: this.from.value, to: this.to.value, speed: Number(this.speed.value), instruments: this.instruments.value, session: this.session.value }, this.now());
    if (typeof p === "string") {
      setText(this.error, p);
      this.result.hidden = true;
      delete this.panel.dataset.command;
      this.panel.dataset.state = "invalid";
      return;
    }
    setText(this.error, "");
    const cmd = replayCommand(p, this.origin, this.subject());
    const link = replayLink(this.origin, p.session);
    setText(this.command, cmd);
    this.link.href = link;
    setText(this.link, `${formatWindow(BigInt(p.fromMs) * 1_000_000n, BigInt(p.toMs) * 1_000_000n)} at ${speedLabel(p.speed)} (?replay=${p.session})`);
    this.copy.textContent = "Copy command";
    this.panel.dataset.command = cmd;
    this.panel.dataset.link = link;
    this.result.hidden = false;
    const st = this.starter;
    if (!st || !this.startable) {
      this.commandOnly("");
      return;
    }
    setText(this.note, "or run (tickctl, an operator process with NATS access):");
    this.panel.dataset.state = "starting";
    this.busy = true;
    this.goButton.disabled = true;
    setText(this.goButton, "Starting…");
    let started = false;
    try {
      const token = st.token();
      const req = replayStartRequest(p, token);
      let a: ReplayStartAnswer;
      try {
        const res = await st.fetch(req.url, req.init);
        a = replayStartAnswer(res.status, await res.text(), res.headers.get("retry-after"));
      } catch (e) {
        a = { kind: "refused", status: 0, code: "unreachable", message: `Could not reach the feed: ${e instanceof Error ? e.message : String(e)}` };
      }
      if (a.kind === "started") {
        started = true;
        this.panel.dataset.state = "started";
        this.panel.dataset.session = a.session;
        st.navigate(replayStartTarget(this.origin, a.url, token));
      } else if (a.kind === "not_enabled") {
        this.startable = false; // this feed: the command from now on
        this.commandOnly(a.message);
      } else {
        this.panel.dataset.state = "refused";
        setText(this.error, a.message);
      }
    } finally {
      this.busy = false;
      if (!started) {
        this.goButton.disabled = false;
        setText(this.goButton, "Go");
      }
    }
  }

  /** The command is the way: the feed does not start replays (why: said first), or no starter. */
  private commandOnly(why: string): void {
    this.panel.dataset.state = "command";
    setText(this.note, `${why ? `${why} ` : ""}Replays are started by tickctl (an operator process with NATS access). Run:`);
  }
}

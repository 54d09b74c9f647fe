/**
 * The exporter's live status page (`GET /`): one self-contained document, inline CSS and JavaScript,
 * no build step, no CDN, so it works on a host without internet access. It polls `status` (relative,
 * so it also works behind a reverse proxy under a path prefix) once a second and redraws.
 *
 * Everything from the daemon (pool and function names, handles, uniques: gearmand and config data) is
 * put in the page with textContent, never as HTML. The exporter serves the page with a
 * Content-Security-Policy that allows exactly these inline blocks by hash (see STATUS_PAGE_CSP).
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { --bg: #f6f7f9; --card: #fff; --fg: #1d2330; --muted: #667085; --line: #e3e6eb;
  --idle: #b7d7c2; --busy: #2f6fdf; --stopping: #e49b2a; --bad: #d1453b; --good: #2e9d5b; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #14171c; --card: #1d2128; --fg: #e6e8eb; --muted: #98a2b3; --line: #2d333d;
    --idle: #3b5c47; --busy: #4c8dff; --stopping: #e0a040; --bad: #ef6a60; --good: #4cc47f; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: baseline; padding: 14px 20px; background: var(--card); border-bottom: 1px solid var(--line); }
header h1 { margin: 0; font-size: 18px; }
main { padding: 16px 20px; display: grid; gap: 16px; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--muted); }
.badge.good { background: var(--good); } .badge.bad { background: var(--bad); } .badge.warn { background: var(--stopping); }
#banner { display: none; padding: 8px 20px; background: var(--bad); color: #fff; }
#banner.show { display: block; }
.pools { display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; min-width: 0; }
.card h2 { margin: 0 0 2px; font-size: 16px; display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.card h3 { margin: 14px 0 6px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.stats { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; margin-top: 10px; }
.stat { border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
.stat b { display: block; font-size: 18px; font-variant-numeric: tabular-nums; }
.stat span { font-size: 11px; color: var(--muted); }
.stat.bad b { color: var(--bad); }
.slots { display: flex; flex-wrap: wrap; gap: 3px; margin-top: 6px; }
.slot { width: 14px; height: 14px; border-radius: 3px; background: var(--idle); }
.slot.busy { background: var(--busy); } .slot.stopping { background: var(--stopping); }
.legend { font-size: 12px; color: var(--muted); margin-top: 4px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 10px; vertical-align: -1px; }
.legend i.idle { background: var(--idle); } .legend i.busy { background: var(--busy); } .legend i.stopping { background: var(--stopping); }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; word-break: break-all; }
svg.spark { width: 100%; height: 36px; display: block; margin-top: 8px; }
svg.spark polyline { fill: none; stroke: var(--busy); stroke-width: 1.5; vector-effect: non-scaling-stroke; stroke-linejoin: round; }
svg.spark polyline.fail { stroke: var(--bad); }
svg.spark line.axis { stroke: var(--line); stroke-width: 1; vector-effect: non-scaling-stroke; }
.spark-caption { font-size: 11px; color: var(--muted); display: flex; justify-content: space-between; }
table.queues tr.server td { padding-top: 8px; font-weight: 600; }
td.warn { color: var(--stopping); font-weight: 600; }
.card.parked { opacity: .7; }
.empty { color: var(--muted); font-style: italic; }
.delivery { font-size: 12px; margin-top: 4px; }
.delivery.alert { color: var(--bad); font-weight: 600; }
.flow { font-size: 12px; margin-top: 4px; color: var(--stopping); font-weight: 600; }
.limits { font-size: 12px; margin-top: 2px; }
ul.paused { list-style: none; margin: 0; padding: 0; }
ul.paused li { padding: 4px 0; border-bottom: 1px solid var(--line); }
ul.paused .name { font-weight: 600; margin-right: 6px; }
ul.paused .since, ul.paused .opened { color: var(--muted); font-size: 12px; margin-left: 6px; }
ul.paused .reason { color: var(--bad); font-size: 12px; word-break: break-word; }
`;

const SCRIPT = `
"use strict";
const HISTORY = 60;
const history = new Map();
let previous = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}
function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}
function age(ms) {
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + Math.floor(s % 60) + " s";
  return Math.floor(m / 60) + " h " + (m % 60) + " min";
}
function uptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}
function rate(value) {
  if (value === null) return "–";
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}
function failures(counters) { return counters.jobs_failed; }
function stat(label, value, bad) {
  return el("div", { class: "stat" + (bad ? " bad" : "") }, el("b", {}, value), el("span", {}, label));
}
function sparkline(points) {
  const box = svg("svg", { class: "spark", viewBox: "0 0 " + (HISTORY - 1) + " 36", preserveAspectRatio: "none" });
  box.append(svg("line", { x1: 0, y1: 35, x2: HISTORY - 1, y2: 35, class: "axis" }));
  const max = Math.max(1, ...points.map((p) => Math.max(p.ok, p.fail)));
  const line = (key, cls) => {
    const offset = HISTORY - points.length;
    const coords = points.map((p, i) => (offset + i) + "," + (34 - 32 * p[key] / max).toFixed(1)).join(" ");
    const poly = svg("polyline", { points: coords });
    if (cls) poly.setAttribute("class", cls);
    box.append(poly);
  };
  if (points.length > 1) { line("fail", "fail"); line("ok"); }
  const title = svg("title", {});
  title.textContent = "jobs/s (blue) and failures/s (red), last " + HISTORY + " s; peak " + rate(max);
  box.append(title);
  return box;
}

function poolCard(pool, doc) {
  const before = previous && previous.pools.find((p) => p.name === pool.name);
  const dt = previous ? (Date.parse(doc.generatedAt) - Date.parse(previous.generatedAt)) / 1000 : 0;
  let jobRate = null, failRate = null;
  if (before && dt > 0) {
    jobRate = Math.max(0, pool.counters.jobs_completed - before.counters.jobs_completed) / dt;
    failRate = Math.max(0, failures(pool.counters) - failures(before.counters)) / dt;
  }
  const points = history.get(pool.name) || [];
  if (jobRate !== null) {
    points.push({ ok: jobRate, fail: failRate });
    while (points.length > HISTORY) points.shift();
  }
  history.set(pool.name, points);

  const child = pool.children.find((c) => !c.retiring) || pool.children[0];
  const childBadge = !child ? el("span", { class: "badge" }, "no child")
    : child.state === "failed" ? el("span", { class: "badge bad" }, "failed")
    : child.state === "running" && child.responding ? el("span", { class: "badge good" }, "running")
    : el("span", { class: "badge warn" }, child.state + (child.unresponsiveSince ? ", unresponsive since " + child.unresponsiveSince : child.responding ? "" : ", not answering"));
  const parked = !child && pool.workerCount === 0;
  const d = pool.delivery;
  const breakerBadge = !d ? null : el("span", { class: "badge breaker " + (d.breaker === "closed" ? "good" : d.breaker === "open" ? "bad" : "warn"), title: d.lastReason || "" }, "breaker " + d.breaker);
  // Functions whose own breaker is open or half-open: the pool does not take their jobs (or one probe).
  const paused = d ? Object.entries(d.functions || {}).filter(([, f]) => f.breaker !== "closed") : [];
  const pausedBadge = paused.length === 0 ? null : el("span", {
    class: "badge paused " + (paused.some(([, f]) => f.breaker === "open") ? "bad" : "warn"),
    title: paused.map(([name, f]) => name + " " + f.breaker + (f.lastReason ? ": " + f.lastReason : "")).join("\\n"),
  }, paused.length + (paused.length === 1 ? " function paused" : " functions paused"));
  // What an operator paused (driveshaft pause): the pool takes no job, or no slot registers the function.
  const flow = pool.flow || { paused: false, pausedFunctions: [] };
  const flowBadge = flow.paused ? el("span", { class: "badge warn operator-paused", title: "paused since " + flow.pausedSince + " by " + flow.pausedBy }, "paused")
    : flow.pausedFunctions.length > 0 ? el("span", { class: "badge warn operator-paused", title: flow.pausedFunctions.map((f) => f.function + " since " + f.since + " by " + f.by).join("\\n") },
      flow.pausedFunctions.length + (flow.pausedFunctions.length === 1 ? " function paused by operator" : " functions paused by operator"))
    : null;
  const card = el("section", { class: "card" + (parked ? " parked" : ""), "data-pool": pool.name },
    el("h2", {}, pool.name, parked ? el("span", { class: "badge" }, "no workers") : childBadge, flowBadge, breakerBadge, pausedBadge, pool.configured ? null : el("span", { class: "badge warn" }, "removed, draining")),
    el("div", { class: "muted" },
      "worker_count " + pool.workerCount + " · " + (pool.functions.join(", ") || "no functions") +
      (child && child.pid ? " · pid " + child.pid : "") + (pool.childRestarts ? " · " + pool.childRestarts + " restarts" : "")));
  if (parked) return card;

  if (flow.paused || flow.pausedFunctions.length > 0) {
    const parts = [];
    if (flow.paused) parts.push("paused since " + new Date(flow.pausedSince).toLocaleTimeString() + " by " + flow.pausedBy + ": no new jobs, running jobs finish");
    if (flow.pausedFunctions.length > 0) parts.push("functions paused: " + flow.pausedFunctions.map((f) => f.function + " (since " + new Date(f.since).toLocaleTimeString() + ")").join(", "));
    card.append(el("div", { class: "flow" }, parts.join(" · ")));
  }
  const c = pool.counters;
  if (d) {
    const since = "since " + new Date(d.since).toLocaleTimeString() + (d.lastReason ? ": " + d.lastReason : "");
    card.append(el("div", { class: "delivery" + (d.breaker === "closed" ? " muted" : " alert") },
      "breaker " + d.breaker + (d.breaker === "closed" && !d.openedTotal ? "" : " " + since) +
      " · " + d.admittedSlots + " / " + pool.workerCount + " slots admitted · " + d.retrying + " retrying · opened " + d.openedTotal + "×" +
      " · retried " + c.jobs_retried + ", handed back " + c.jobs_handed_back + ", dead-lettered " + c.jobs_dead_lettered));
  }
  const f = pool.flow && pool.flow.limits;
  if (f && (f.concurrency === "adaptive" || f.ratePerSecond !== null)) {
    card.append(el("div", { class: "limits muted" },
      (f.concurrency === "adaptive"
        ? "adaptive concurrency: " + f.concurrencyLimit + " / " + pool.workerCount + " slots" + (f.baselineMs === null ? " (measuring)" : " (baseline " + f.baselineMs + " ms)")
        : "concurrency: " + f.concurrencyLimit + " slots") +
      (f.ratePerSecond === null ? "" : " · rate " + f.ratePerSecond + "/s, burst " + f.burst + ", " + f.tokens + " tokens") +
      " · " + f.waitingSlots + " waiting"));
  }
  if (paused.length > 0) {
    card.append(el("h3", {}, "Paused functions (" + paused.length + ")"));
    const now = Date.parse(doc.generatedAt);
    // One item per function: the name, state, since when and openings on a line, the reason below it.
    card.append(el("ul", { class: "paused" }, ...paused.map(([name, f]) => el("li", { "data-function": name },
      el("span", { class: "name" }, name),
      el("span", { class: "badge " + (f.breaker === "open" ? "bad" : "warn") }, f.breaker),
      el("span", { class: "since", title: f.since }, "since " + new Date(f.since).toLocaleTimeString() + " (" + age(Math.max(0, now - Date.parse(f.since))) + ")"),
      el("span", { class: "opened" }, "opened " + f.openedTotal + "×"),
      f.lastReason ? el("div", { class: "reason" }, f.lastReason) : null))));
  }
  card.append(el("div", { class: "stats" },
    stat("jobs/s", rate(jobRate)),
    stat("failures/s", rate(failRate), failRate > 0),
    stat("completed", c.jobs_completed),
    stat("failed (timed out)", c.jobs_failed + " (" + c.jobs_timed_out + ")", c.jobs_failed > 0)));
  card.append(sparkline(points));
  card.append(el("div", { class: "spark-caption" }, el("span", {}, "jobs/s and failures/s, last " + HISTORY + " s"), el("span", {}, "now")));

  card.append(el("h3", {}, "Slots: " + pool.slotCounts.busy + " busy, " + pool.slotCounts.idle + " idle" + (pool.slotCounts.stopping ? ", " + pool.slotCounts.stopping + " stopping" : "")));
  const slots = el("div", { class: "slots" });
  for (const slot of pool.slots) {
    const title = slot.id + ": " + slot.state + (slot.job ? " — " + slot.job.function + " " + slot.job.handle + " for " + age(slot.job.ageMs) : "");
    slots.append(el("div", { class: "slot " + slot.state, title }));
  }
  if (pool.slots.length === 0) slots.append(el("span", { class: "empty" }, "no slots"));
  card.append(slots);
  card.append(el("div", { class: "legend" }, el("i", { class: "idle" }), "idle", el("i", { class: "busy" }), "busy", el("i", { class: "stopping" }), "stopping"));

  const running = pool.slots.filter((s) => s.job);
  card.append(el("h3", {}, "Running jobs (" + running.length + ")"));
  if (running.length === 0) card.append(el("div", { class: "empty" }, "none"));
  else {
    const rows = running.sort((a, b) => b.job.ageMs - a.job.ageMs).map((s) =>
      el("tr", {}, el("td", { class: "mono" }, s.id), el("td", {}, s.job.function), el("td", { class: "mono" }, s.job.handle),
        el("td", { class: "mono" }, s.job.unique), el("td", { class: "num" }, age(s.job.ageMs))));
    card.append(el("table", { class: "jobs" }, el("thead", {}, el("tr", {}, el("th", {}, "slot"), el("th", {}, "function"), el("th", {}, "handle"), el("th", {}, "unique"), el("th", { class: "num" }, "age"))), el("tbody", {}, ...rows)));
  }

  card.append(el("h3", {}, "gearmand connections"));
  const servers = pool.servers.map((s) => el("tr", {},
    el("td", { class: "mono" }, s.server),
    el("td", { class: "num" }, s.connectedSlots + " / " + s.slots + " slots registered"),
    el("td", { class: "muted" }, Object.entries(s.states).map(([k, v]) => v + " " + k).join(", ")),
    // A GRAB went unanswered: the slots grab on the other servers until any packet comes from this one.
    s.suspectSince ? el("td", { class: "warn" }, "not answering since " + new Date(s.suspectSince).toLocaleTimeString() + ": skipped") : el("td", {}, "")));
  card.append(el("table", {}, el("tbody", {}, ...servers)));

  const codes = Object.entries(pool.http);
  if (codes.length > 0) {
    card.append(el("h3", {}, "Endpoint answers"));
    card.append(el("div", {}, codes.map(([code, n]) => "HTTP " + code + ": " + n).join(" · ")));
  }
  return card;
}

function gearmandCard(doc) {
  const card = el("section", { class: "card" }, el("h2", {}, "gearmand queues"));
  const rows = [];
  for (const g of doc.gearmand) {
    // The server and its state head its group of rows: each function is one row below it.
    const state = g.scrapeOk ? el("span", { class: "badge good" }, "status ok") : el("span", { class: "badge bad", title: g.error || "" }, "no status");
    const link = g.up ? el("span", { class: "badge good" }, "slots registered") : el("span", { class: "badge bad" }, "no slot registered");
    rows.push(el("tr", { class: "server" }, el("td", { class: "mono" }, g.server), el("td", { colspan: "5" }, state, " ", link,
      g.scrapeOk ? null : el("span", { class: "muted" }, " " + (g.error || "")))));
    if (g.scrapeOk && g.functions.length === 0) rows.push(el("tr", {}, el("td", {}), el("td", { class: "empty", colspan: "5" }, "no functions")));
    for (const f of g.functions) {
      const waiting = Math.max(0, f.total - f.running);
      rows.push(el("tr", {}, el("td", {}), el("td", {}, f.function),
        el("td", { class: "num" + (waiting > 0 && f.availableWorkers === 0 ? " warn" : "") }, waiting), el("td", { class: "num" }, f.running), el("td", { class: "num" }, f.availableWorkers), el("td", {})));
    }
  }
  card.append(el("table", { class: "queues" }, el("thead", {}, el("tr", {}, el("th", {}, "server"), el("th", {}, "function"), el("th", { class: "num" }, "waiting"), el("th", { class: "num" }, "running"), el("th", { class: "num" }, "workers"), el("th", {}))), el("tbody", {}, ...rows)));
  return card;
}

function render(doc) {
  document.getElementById("state").replaceChildren(el("span", { class: "badge " + (doc.state === "running" ? "good" : "warn") }, doc.state));
  document.getElementById("ready").replaceChildren(doc.ready.ready ? el("span", { class: "badge good" }, "ready")
    : el("span", { class: "badge bad", title: doc.ready.problems.map((p) => p.pool + ": " + p.reason).join("\\n") }, "not ready"));
  document.getElementById("meta").textContent = doc.version + " · pid " + doc.pid + " · up " + uptime(doc.uptimeSeconds) +
    " · config " + doc.config.file + " loaded " + new Date(doc.config.loadedAt).toLocaleString() +
    " · reloads " + doc.reloads.ok + " ok, " + doc.reloads.failed + " failed · child restarts " + doc.childRestarts;
  document.getElementById("updated").textContent = "updated " + new Date(doc.generatedAt).toLocaleTimeString();
  const pools = el("div", { class: "pools", id: "pools" }, ...doc.pools.map((pool) => poolCard(pool, doc)));
  if (doc.pools.length === 0) pools.append(el("div", { class: "empty" }, "no pools configured"));
  document.getElementById("pools").replaceWith(pools);
  document.getElementById("gearmand").replaceChildren(gearmandCard(doc));
  previous = doc;
}

async function poll() {
  try {
    const response = await fetch("status", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    document.getElementById("banner").className = "";
  } catch (error) {
    const banner = document.getElementById("banner");
    banner.textContent = "Cannot reach the daemon (" + error.message + "); retrying every second.";
    banner.className = "show";
  } finally {
    setTimeout(poll, 1000);
  }
}
poll();
`;

/** The page; STYLE and SCRIPT are its only inline blocks. */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>driveshaft status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>driveshaft</h1><span id="state"></span><span id="ready"></span><span id="meta" class="muted">loading…</span><span id="updated" class="muted"></span></header>
<div id="banner" role="alert"></div>
<main>
<div id="pools" class="pools"></div>
<div id="gearmand"></div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/**
 * Only this page's own style and script may run, and it may only fetch from its own origin: a
 * function name or unique that somehow became markup could still not execute anything.
 */
export const STATUS_PAGE_CSP = `default-src 'none'; style-src ${sha256(STYLE)}; script-src ${sha256(SCRIPT)}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

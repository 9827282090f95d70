/**
 * The `/status` page: one static HTML document, no build step, that fetches `/status.json` every two seconds
 * and draws it. The page itself holds no data (so it may be fetched without the token); the data needs the
 * admin token when one is set, which the page asks for once and keeps in `sessionStorage`. Everything is
 * written with `textContent`, never as HTML, so a target name cannot inject markup.
 *
 * @module
 */

/** The page. */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wasmnet status</title>
<style>
  :root { color-scheme: light dark; font: 14px/1.4 system-ui, sans-serif; }
  body { margin: 1.5rem; max-width: 72rem; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  h2 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
  .meta { color: #777; margin-bottom: 1rem; }
  .draining { color: #fff; background: #c33; padding: .1rem .5rem; border-radius: .3rem; }
  .totals { display: flex; flex-wrap: wrap; gap: .6rem; }
  .totals div { border: 1px solid #8884; border-radius: .4rem; padding: .4rem .8rem; min-width: 7rem; }
  .totals b { display: block; font-size: 1.3rem; font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid #8883; }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
  .empty { color: #777; font-style: italic; }
  #error { color: #c33; }
</style>
</head>
<body>
<h1>wasmnet <span id="version"></span> <span id="draining" class="draining" hidden>draining</span></h1>
<div class="meta">up <span id="uptime">-</span> · policy <span id="policy">-</span> · updated <span id="updated">-</span>
  <span id="error"></span></div>
<div class="totals" id="totals"></div>
<h2>Live sessions</h2>
<table><thead><tr><th>session</th><th>front end</th><th>framing</th><th>client</th><th class="n">age</th>
  <th class="n">sockets</th><th class="n">bytes up</th><th class="n">bytes down</th></tr></thead><tbody id="sessions"></tbody></table>
<h2>Busiest targets</h2>
<table><thead><tr><th>target</th><th class="n">connects</th></tr></thead><tbody id="targets"></tbody></table>
<h2>Recent refusals</h2>
<table><thead><tr><th>time</th><th>client</th><th>op</th><th>target</th><th>rule</th><th>reason</th></tr></thead>
  <tbody id="refusals"></tbody></table>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const bytes = (n) => n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KiB"
  : n < 1073741824 ? (n / 1048576).toFixed(1) + " MiB" : (n / 1073741824).toFixed(2) + " GiB";
const secs = (s) => s < 60 ? s.toFixed(0) + " s" : s < 3600 ? (s / 60).toFixed(0) + " min" : (s / 3600).toFixed(1) + " h";
function rows(body, items, cells, empty) {
  const out = items.map((item) => {
    const tr = document.createElement("tr");
    for (const [text, numeric] of cells(item)) {
      const td = document.createElement("td");
      td.textContent = String(text);
      if (numeric) td.className = "n";
      tr.append(td);
    }
    return tr;
  });
  if (out.length === 0) {
    const tr = document.createElement("tr"), td = document.createElement("td");
    td.colSpan = 8; td.className = "empty"; td.textContent = empty; tr.append(td); out.push(tr);
  }
  body.replaceChildren(...out);
}
function draw(s) {
  $("version").textContent = s.version;
  $("draining").hidden = !s.draining;
  $("uptime").textContent = secs(s.uptime_secs);
  $("policy").textContent = s.policy;
  $("updated").textContent = new Date().toLocaleTimeString();
  const t = s.totals;
  const boxes = [["sessions open", t.sessions_open], ["sessions total", t.sessions_total],
    ["bytes up", bytes(t.bytes_up)], ["bytes down", bytes(t.bytes_down)], ["allowed", t.decisions_allow],
    ["denied", t.decisions_deny], ["refused upgrades", t.refusals]];
  $("totals").replaceChildren(...boxes.map(([label, value]) => {
    const d = document.createElement("div"), b = document.createElement("b");
    b.textContent = String(value); d.append(b, label); d.dataset.total = label; return d;
  }));
  rows($("sessions"), s.sessions, (x) => [[x.id], [x.frontend], [x.framing], [x.client], [secs(x.age_secs), 1],
    [x.sockets, 1], [bytes(x.bytes_up), 1], [bytes(x.bytes_down), 1]], "no sessions");
  rows($("targets"), s.targets, (x) => [[x.target], [x.connects, 1]], "no connects yet");
  rows($("refusals"), s.refusals, (x) => [[new Date(x.time).toLocaleTimeString()], [x.client], [x.op], [x.target],
    [x.rule], [x.reason ?? ""]], "no refusals");
}
async function refresh() {
  const token = sessionStorage.getItem("wasmnet-admin-token");
  try {
    const res = await fetch("status.json", { headers: token ? { authorization: "Bearer " + token } : {} });
    if (res.status === 401) {
      const entered = prompt("Admin token");
      if (entered) sessionStorage.setItem("wasmnet-admin-token", entered);
      throw new Error("admin token required");
    }
    if (!res.ok) throw new Error("status.json: HTTP " + res.status);
    draw(await res.json());
    $("error").textContent = "";
  } catch (err) {
    $("error").textContent = "· " + err.message;
  }
  setTimeout(refresh, 2000);
}
refresh();
</script>
</body>
</html>
`;

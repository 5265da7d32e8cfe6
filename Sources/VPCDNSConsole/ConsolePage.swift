/// The console's page, served from the binary (console.md: nothing to install, nothing
/// fetched from elsewhere). Plain HTML, CSS and JavaScript; the script draws the chart as
/// SVG and puts every value from the network into the page with `textContent` only.
enum ConsolePage {
    private static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>vpcdns console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="favicon.svg@TOKEN@">
<link rel="stylesheet" href="console.css@TOKEN@">
<script src="console.js@TOKEN@" defer></script>
</head>
<body>
<header>
  <h1>vpcdns console</h1>
  <span id="status" class="status">connecting…</span>
</header>
<main>
<section id="live">
  <h2>Live queries</h2>
  <form id="filters" class="filters" autocomplete="off">
    <label>VPC <select id="f-vpc"><option value="">any</option></select></label>
    <label>Decision <select id="f-decision">
      <option value="">any</option>
      <option value="private">private (any)</option>
      <option value="forwarded">forwarded (any)</option>
      <option value="refused">refused</option>
      <option value="error">error (SERVFAIL, bad request)</option>
      <option>private-hosted-zone</option><option>endpoint-private-dns</option><option>endpoint-dns-name</option>
      <option>service-private-dns</option><option>ec2-instance-name</option><option>reverse-dns</option>
      <option>forward-rule</option><option>upstream</option><option>bad-request</option>
    </select></label>
    <label>Rcode <select id="f-rcode"><option value="">any</option><option>NOERROR</option><option>NXDOMAIN</option>
      <option>SERVFAIL</option><option>REFUSED</option><option>FORMERR</option><option>NOTIMP</option></select></label>
    <label>Client <input id="f-client" size="15" placeholder="10.0.1.5"></label>
    <label>Name <input id="f-name" size="24" placeholder="part or *.example.com"></label>
    <button type="button" id="pause">Pause</button>
    <span id="skipped" class="skipped"></span>
    <span id="shown" class="muted"></span>
  </form>
  <div class="tablewrap">
  <table id="queries">
    <thead><tr><th>time (UTC)</th><th>VPC</th><th>client</th><th>name</th><th>type</th><th>rcode</th><th>decision</th><th>answers</th><th>µs</th></tr></thead>
    <tbody id="rows"></tbody>
  </table>
  </div>
</section>
<section id="ask">
  <h2>Ask / explain</h2>
  <form id="ask-form" class="filters" autocomplete="off">
    <label>Name <input id="a-name" size="30" required></label>
    <label>Type <input id="a-type" size="6" value="A"></label>
    <label>From (client IP) <input id="a-from" size="15" required></label>
    <label>To (listener IP:PORT) <input id="a-to" size="18"></label>
    <button type="submit">Explain</button>
  </form>
  <div id="explain" class="explain" hidden>
    <h3 id="x-title"></h3>
    <dl id="x-summary"></dl>
    <h4>Preconditions</h4><ul id="x-checks"></ul>
    <h4>Candidates</h4><ul id="x-candidates"></ul>
    <h4>Why</h4><ul id="x-findings"></ul>
    <details><summary>The whole explanation (JSON, as <code>vpcdns explain --json</code>)</summary><pre id="x-json"></pre></details>
  </div>
</section>
<section id="summary">
  <h2>Per VPC, last <select id="s-window"><option>5m</option><option selected>15m</option><option>1h</option></select></h2>
  <label>VPC <select id="s-vpc"><option value="">all</option></select></label>
  <div id="chart" class="chart"></div>
  <div id="legend" class="legend"></div>
  <div class="lists">
    <div><h4>Top names</h4><ol id="s-top"></ol></div>
    <div><h4>NXDOMAIN</h4><ol id="s-nx"></ol></div>
    <div><h4>SERVFAIL</h4><ol id="s-servfail"></ol></div>
    <div><h4>Latency</h4><dl id="s-latency"></dl></div>
  </div>
</section>
<section id="config">
  <h2>Configuration</h2>
  <p id="c-loaded" class="muted"></p>
  <h4>Warnings</h4><ul id="c-warnings"></ul>
  <h4>Upstreams in use</h4><ul id="c-upstreams"></ul>
  <h4>Health checks</h4><ul id="c-health"></ul>
  <details><summary>What <code>vpcdns check --json</code> says</summary><pre id="c-json"></pre></details>
</section>
</main>
</body>
</html>
"""#

    /// The page, its assets' addresses carrying the token when there is one (every request
    /// needs it; the configured token is restricted to characters safe in HTML and URLs).
    static func html(token: String?) -> String {
        html.replacingOccurrences(of: "@TOKEN@", with: token.map { "?token=" + $0 } ?? "")
    }

    static let favicon = #"""
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1d2330"/><path d="M4 4h3l1 5 1-5h3l-3 8H7z" fill="#9fd39f"/></svg>
"""#

    static let style = #"""
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { display: flex; align-items: baseline; gap: 1em; padding: .6em 1em; background: #1d2330; color: #fff; }
header h1 { font-size: 1.2em; margin: 0; }
.status { font-size: .9em; color: #9fd39f; }
.status.down { color: #f0a0a0; }
main { padding: 0 1em 2em; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; margin: 1em 0; padding: .5em 1em 1em; }
h2 { font-size: 1.1em; }
.filters { display: flex; flex-wrap: wrap; gap: .6em 1em; align-items: center; margin-bottom: .5em; }
.skipped { color: #b35c00; font-weight: 600; }
.muted { color: #6b7380; }
.tablewrap { max-height: 28em; overflow: auto; }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
th, td { text-align: left; padding: .2em .5em; border-bottom: 1px solid #eef0f3; white-space: nowrap; }
td.name { white-space: pre; font-family: ui-monospace, monospace; max-width: 32em; overflow: hidden; text-overflow: ellipsis; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: #eef4ff; }
tr.selected { background: #dbe7ff; }
.d-private { color: #1b7f3b; } .d-forwarded { color: #2456b3; } .d-refused { color: #8a5a00; } .d-error { color: #b3261e; font-weight: 600; }
.explain { border-top: 1px solid #dde1e7; margin-top: .5em; }
.explain dl, .lists dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { color: #6b7380; } dd { margin: 0; font-family: ui-monospace, monospace; white-space: pre-wrap; }
pre { background: #f6f7f9; padding: .5em; overflow: auto; max-height: 30em; }
.chart svg { width: 100%; height: 160px; background: #fbfbfc; border: 1px solid #eef0f3; display: block; }
.axis { display: flex; justify-content: space-between; color: #6b7380; font-size: .85em; }
.legend span { margin-right: 1em; }
.legend i { display: inline-block; width: .8em; height: .8em; margin-right: .3em; }
.lists { display: grid; grid-template-columns: repeat(auto-fit, minmax(16em, 1fr)); gap: 1em; }
.lists ol { padding-left: 1.5em; font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; }
.ok { color: #1b7f3b; } .bad { color: #b3261e; }
"""#

    static let script = #"""
"use strict";
// Every value that came from the network goes into the page through textContent or an
// attribute set with setAttribute on an element made here: never as markup.
(function () {
  const token = new URLSearchParams(location.search).get("token");
  const MAX_ROWS = 500;
  const COLORS = { private: "#2e9d53", forwarded: "#3b6fd1", refused: "#d19a2e", error: "#d1453b" };
  let paused = false, skipped = 0, source = null, vpcs = new Set(), generation = 0;

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function url(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v) q.set(k, v);
    if (token) q.set("token", token);
    const s = q.toString();
    return path + (s ? "?" + s : "");
  }
  async function getJSON(path, params) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const r = await fetch(url(path, params), { headers });
    const body = await r.json().catch(() => ({ error: "HTTP " + r.status }));
    if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
    return body;
  }
  function category(rec) {
    const d = rec.vpcdns && rec.vpcdns.decision;
    if (d === "refused") return "refused";
    if (d === "bad-request" || rec.rcode === "SERVFAIL") return "error";
    if (d === "upstream" || d === "forward-rule") return "forwarded";
    return "private";
  }
  function filters() {
    return { vpc: $("f-vpc").value, decision: $("f-decision").value, rcode: $("f-rcode").value,
             client: $("f-client").value.trim(), name: $("f-name").value.trim() };
  }
  function addVPC(id) {
    if (!id || id === "-" || vpcs.has(id)) return;
    vpcs.add(id);
    for (const sel of [$("f-vpc"), $("s-vpc")]) { const o = el("option", id); o.value = id; sel.appendChild(o); }
  }

  // ---- Live queries
  function row(rec) {
    const v = rec.vpcdns || {};
    const tr = el("tr");
    tr.className = "rec";
    tr.dataset.vpc = rec.vpc_id;
    tr.dataset.decision = v.decision || "";
    const time = (v.received_at || rec.query_timestamp || "").replace("T", " ").replace("Z", "");
    const answers = (rec.answers || []).map(a => a.Rdata).join(" ");
    const cells = [time, rec.vpc_id, rec.srcaddr, rec.query_name, rec.query_type, rec.rcode, v.decision, answers, v.latency_us];
    cells.forEach((c, i) => {
      const td = el("td", c);
      if (i === 3) td.className = "name";
      if (i === 6) td.className = "d-" + category(rec);
      tr.appendChild(td);
    });
    tr.title = (v.reason ? "reason: " + v.reason : "") ;
    tr.addEventListener("click", () => {
      for (const s of document.querySelectorAll("tr.selected")) s.classList.remove("selected");
      tr.classList.add("selected");
      const listener = v.listener || "";
      $("a-name").value = rec.query_name; $("a-type").value = rec.query_type;
      $("a-from").value = rec.srcaddr; $("a-to").value = listener;
      explain({ name: rec.query_name, type: rec.query_type, from: rec.srcaddr, to: listener });
    });
    return tr;
  }
  function show(rec, atTop) {
    addVPC(rec.vpc_id);
    const body = $("rows");
    const tr = row(rec);
    if (atTop) body.insertBefore(tr, body.firstChild); else body.appendChild(tr);
    while (body.childNodes.length > MAX_ROWS) body.removeChild(body.lastChild);
    $("shown").textContent = body.childNodes.length + " shown";
  }
  async function reload() {
    // Filters can change again while this one waits: only the latest reload fills the list
    // and opens a stream, so rows of an older filter never get in.
    const mine = ++generation;
    if (source) { source.close(); source = null; }
    skipped = 0; $("skipped").textContent = "";
    const f = filters();
    try {
      const data = await getJSON("api/queries", Object.assign({ limit: "200" }, f));
      if (mine !== generation) return;
      clear($("rows"));
      for (const rec of data.records) show(rec, false);
      $("shown").textContent = data.records.length + " shown";
    } catch (e) { status(false, e.message); return; }
    if (!paused) connect(f);
  }
  function connect(f) {
    if (source) source.close();
    const es = new EventSource(url("api/queries/stream", f));
    source = es;
    es.onopen = () => { if (source === es) status(true, "live"); };
    es.onerror = () => { if (source === es) status(false, "stream interrupted, retrying…"); };
    es.onmessage = (m) => {
      if (source !== es) return;
      let rec;
      try { rec = JSON.parse(m.data); } catch (e) { return; }
      show(rec, true);
    };
    es.addEventListener("skipped", (m) => {
      skipped = Number(m.data) || 0;
      $("skipped").textContent = skipped + " skipped (this page fell behind)";
    });
  }
  function status(ok, text) { const s = $("status"); s.textContent = text; s.className = ok ? "status" : "status down"; }

  // ---- Explain
  async function explain(params) {
    const box = $("explain");
    box.hidden = false;
    $("x-title").textContent = "explaining " + params.name + " " + (params.type || "A") + " from " + params.from + "…";
    let x;
    try { x = await getJSON("api/explain", params); } catch (e) { $("x-title").textContent = "explain failed: " + e.message; return; }
    $("x-title").textContent = x.question.name + " " + x.question.type + " from " + x.client + " to " + x.listener;
    const dl = $("x-summary"); clear(dl);
    const vpc = x.vpc || {};
    const o = x.outcome || {};
    const items = [
      ["VPC", (vpc.id || "none") + (vpc.name ? " (" + vpc.name + ")" : "") + (vpc.region ? " " + vpc.region : "")],
      ["how chosen", (vpc.via || "") + (vpc.explanation ? ": " + vpc.explanation : "")],
      ["decision", x.decision],
      ["zone", x.zone ? x.zone + (x.zone_id ? " (" + x.zone_id + ")" : "") : null],
      ["reason", x.reason],
      ["outcome", o.action === "forward" ? "forward " + o.name + " to " + (o.targets || []).join(", ") + (o.rule ? " (rule " + o.rule + ")" : "")
                  : o.action === "answer" ? o.rcode + ((o.answer || []).length ? "\n" + o.answer.map(r => r.text).join("\n") : "")
                  : o.rcode],
      ["routing", x.routing ? x.routing.policy + ": " + x.routing.why : null],
    ];
    for (const [k, v] of items) { if (v === null || v === undefined || v === "") continue; dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); }
    const checks = $("x-checks"); clear(checks);
    for (const c of x.checks || []) checks.appendChild(el("li", c.rule + " " + c.name + "=" + c.value + (c.ok ? " ✓" : " ✗"), c.ok ? "ok" : "bad"));
    const cands = $("x-candidates"); clear(cands);
    for (const c of x.candidates || []) cands.appendChild(el("li", c.domain + " " + c.kind + " " + c.id + (c.won ? " — chosen" : "") + (c.inactive_reason ? " — inactive: " + c.inactive_reason : "") + (c.note ? " (" + c.note + ")" : "")));
    const finds = $("x-findings"); clear(finds);
    for (const f of x.findings || []) finds.appendChild(el("li", f));
    $("x-json").textContent = JSON.stringify(x, null, 2);
  }

  // ---- Summary and chart
  function svg(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }
  function drawChart(s) {
    const box = $("chart"); clear(box);
    const W = 600, H = 160, groups = ["private", "forwarded", "refused", "error"];
    const n = (s.series.private || []).length;
    const bucket = Number(s.bucket_seconds) || 1;
    let max = 0;
    for (let i = 0; i < n; i++) { let t = 0; for (const g of groups) t += s.series[g][i]; max = Math.max(max, t); }
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img" });
    chart.setAttribute("aria-label", "queries per second by decision");
    const bw = W / Math.max(n, 1);
    for (let i = 0; i < n; i++) {
      let y = H;
      for (const g of groups) {
        const c = s.series[g][i];
        if (!c) continue;
        const h = max ? (c / max) * (H - 10) : 0;
        y -= h;
        const r = svg("rect", { x: (i * bw + 0.5).toFixed(1), y: y.toFixed(1), width: Math.max(bw - 1, 1).toFixed(1), height: h.toFixed(1), fill: COLORS[g], "class": "bar bar-" + g, "data-count": c });
        const t = svg("title"); t.textContent = c + " " + g + " (" + (c / bucket).toFixed(2) + "/s)"; r.appendChild(t);
        chart.appendChild(r);
      }
    }
    box.appendChild(chart);
    // Labels as HTML text under the chart: the SVG stretches to the page's width.
    const axis = el("div", null, "axis");
    axis.appendChild(el("span", s.start));
    axis.appendChild(el("span", "peak " + (max / bucket).toFixed(2) + " queries/s, " + bucket + " s per bar"));
    axis.appendChild(el("span", s.end));
    box.appendChild(axis);
    const legend = $("legend"); clear(legend);
    for (const g of groups) { const sp = el("span"); const i = el("i"); i.style.background = COLORS[g]; sp.appendChild(i); sp.appendChild(document.createTextNode(g + " " + s.by_decision[g])); legend.appendChild(sp); }
  }
  function fillList(id, items) {
    const ol = $(id); clear(ol);
    for (const it of items) ol.appendChild(el("li", it.count + "  " + it.name));
  }
  async function refreshSummary() {
    let s;
    try { s = await getJSON("api/summary", { vpc: $("s-vpc").value, window: $("s-window").value }); } catch (e) { return; }
    drawChart(s);
    fillList("s-top", s.top_names); fillList("s-nx", s.nxdomain_names); fillList("s-servfail", s.servfail_names);
    const dl = $("s-latency"); clear(dl);
    dl.appendChild(el("dt", "queries")); dl.appendChild(el("dd", s.queries));
    for (const p of ["p50", "p90", "p99"]) { dl.appendChild(el("dt", p)); dl.appendChild(el("dd", s.latency_us[p] === null ? "-" : s.latency_us[p] + " µs")); }
  }

  // ---- Configuration
  async function refreshConfig() {
    let c;
    try { c = await getJSON("api/config"); } catch (e) { $("c-loaded").textContent = "configuration: " + e.message; return; }
    $("c-loaded").textContent = "configuration loaded at " + c.loaded_at;
    const w = $("c-warnings"); clear(w);
    for (const x of (c.warnings || [])) w.appendChild(el("li", typeof x === "string" ? x : (x.key ? x.key + ": " : "") + (x.message || JSON.stringify(x))));
    if (!(c.warnings || []).length) w.appendChild(el("li", "none", "muted"));
    const u = $("c-upstreams"); clear(u);
    for (const x of c.upstreams_in_use || []) u.appendChild(el("li", x));
    const h = $("c-health"); clear(h);
    for (const x of c.health_checks || []) h.appendChild(el("li", x.id + ": " + x.status, x.status === "healthy" ? "ok" : "bad"));
    if (!(c.health_checks || []).length) h.appendChild(el("li", "none configured", "muted"));
    for (const v of c.vpcs || []) if (v && v.id) addVPC(v.id);
    $("c-json").textContent = JSON.stringify(c, null, 2);
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const id of ["f-vpc", "f-decision", "f-rcode"]) $(id).addEventListener("change", reload);
    for (const id of ["f-client", "f-name"]) $(id).addEventListener("change", reload);
    $("filters").addEventListener("submit", (e) => { e.preventDefault(); reload(); });
    $("pause").addEventListener("click", () => {
      paused = !paused;
      $("pause").textContent = paused ? "Resume" : "Pause";
      if (paused) { if (source) { source.close(); source = null; } status(true, "paused"); } else reload();
    });
    $("ask-form").addEventListener("submit", (e) => {
      e.preventDefault();
      explain({ name: $("a-name").value.trim(), type: $("a-type").value.trim(), from: $("a-from").value.trim(), to: $("a-to").value.trim() });
    });
    $("s-vpc").addEventListener("change", refreshSummary);
    $("s-window").addEventListener("change", refreshSummary);
    refreshConfig();
    reload();
    refreshSummary();
    setInterval(refreshSummary, 2000);
  });
})();
"""#
}

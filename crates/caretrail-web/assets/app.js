// The caretrail page: a small hash-routed app over the JSON API. It builds every element with
// `h()` (never innerHTML with data), so names from the log cannot inject markup, and it keeps
// the bearer token in sessionStorage only (gone when the tab closes).
"use strict";

(() => {
  const t = (k, v) => I18n.t(k, v);
  const $ = (sel, root = document) => root.querySelector(sel);

  // ---------- DOM helpers ----------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const svg = (tag, attrs, ...children) => {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  };
  const fill = (el, ...children) => { el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined)); return el; };
  const loading = (el) => fill(el, h("p", { class: "loading" }, h("span", { class: "spinner", "aria-hidden": "true" }), t("loading")));
  const uuid = () => crypto.randomUUID();

  // A personal field: the text, or that it was erased or withheld from this role.
  function shown(v) {
    if (v && typeof v === "object") {
      if (v.erased) return h("span", { class: "badge erased" }, t("shown.erased"));
      if (v.redacted) return h("span", { class: "badge redacted" }, t("shown.redacted"));
    }
    if (v === null || v === undefined) return "—";
    return String(v);
  }
  const shownText = (v) => (v && typeof v === "object" ? (v.erased ? t("shown.erased") : t("shown.redacted")) : v ?? "—");

  const dtFmt = () => new Intl.DateTimeFormat(I18n.lang, {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const recorded = (iso) => (iso ? dtFmt().format(new Date(iso)) : "—");
  const num = (n) => new Intl.NumberFormat(I18n.lang).format(n);
  const yuan = (fen) => (fen / 100).toFixed(2);
  const todayShanghai = () => new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(new Date());

  // ---------- session and API ----------

  const S = {
    token: sessionStorage.getItem("caretrail.token"),
    // Signed in with a password: the session cookie (HttpOnly, the page never sees it) goes
    // with every request by itself; this is its CSRF token, kept in memory only.
    csrf: null,
    me: null,
    asOf: sessionStorage.getItem("caretrail.asof") || "",
    asOfPos: sessionStorage.getItem("caretrail.asofpos") || "",
    regions: new Map(), // region code -> name
    directors: new Map(), // director id -> name
    workers: new Map(), // model worker id -> name (from pairings)
    view: null,
    live: null,
  };

  class ApiError extends Error {
    constructor(status, problem, location) {
      super(problem?.detail || `HTTP ${status}`);
      this.status = status;
      this.problem = problem || {};
      this.location = location || null;
    }
  }

  let inflight = 0;
  function busy(delta) {
    inflight += delta;
    $("#busy").hidden = inflight <= 0;
    document.body.setAttribute("aria-busy", inflight > 0 ? "true" : "false");
  }

  // A bearer token when signed in with one; with the session cookie, the CSRF token on every
  // request that changes something.
  function authHeaders(method = "GET") {
    if (S.token) return { Authorization: `Bearer ${S.token}` };
    if (S.csrf && !["GET", "HEAD"].includes(method)) return { "X-CSRF-Token": S.csrf };
    return {};
  }

  async function api(path, opts = {}) {
    const headers = { ...authHeaders(opts.method), ...(opts.headers || {}) };
    let body;
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(opts.json); }
    // Polls (`quiet`) leave the busy bar alone, or it would flicker twice a second.
    const track = !opts.quiet;
    if (track) busy(1);
    try {
      let res;
      try {
        res = await fetch(path, { method: opts.method || "GET", headers, body, signal: opts.signal });
      } catch (e) {
        if (e.name === "AbortError") throw e;
        throw new ApiError(0, { code: "network", detail: t("err.network") });
      }
      const ct = res.headers.get("content-type") || "";
      const data = ct.includes("json") ? await res.json() : null;
      if (res.status === 401 && !opts.noSignout) { signOut(); throw new ApiError(401, data); }
      if (!res.ok) throw new ApiError(res.status, data, res.headers.get("location"));
      return data;
    } finally {
      if (track) busy(-1);
    }
  }

  // Dashboard parameters shared by every view: the "as of" date and the auditor's replay.
  function q(params = {}, withAsOf = true) {
    const p = new URLSearchParams();
    if (withAsOf && S.asOf) p.set("as_of", S.asOf);
    if (withAsOf && S.asOfPos && mayReplay()) p.set("as_of_position", S.asOfPos);
    for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined && v !== false) p.set(k, v);
    const s = p.toString();
    return s ? `?${s}` : "";
  }

  const role = () => S.me?.role;
  const mayReplay = () => ["admin", "auditor"].includes(role());
  // Names are personal data: auditors (and integrations) read none, so they get no name search.
  const maySearchNames = () => ["admin", "director"].includes(role());
  const VIEWS = {
    admin: ["overview", "overdue", "workers", "directors", "issues", "record", "audit", "subscriptions", "import", "worker", "reports"],
    auditor: ["overview", "overdue", "workers", "directors", "issues", "audit", "worker", "reports"],
    director: ["home", "overdue", "record", "worker"],
    integration: ["audit"],
  };
  const allowed = (v) => (VIEWS[role()] || []).includes(v);
  const home = () => (VIEWS[role()] || ["signin"])[0];

  // The token arrives in the login URL's fragment: keep it for this tab, then drop it from the
  // address bar and history so it is not bookmarked, shared or shown over a shoulder.
  function takeTokenFromUrl() {
    const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (m) {
      S.token = decodeURIComponent(m[1]);
      sessionStorage.setItem("caretrail.token", S.token);
      // A login URL may open the dashboards on a period (`serve --demo` points at the demo's
      // October 2021, where "this month" is not empty); the as-of bar shows it and clears it.
      const a = location.hash.match(/&as_of=(\d{4}-\d{2}-\d{2})(?:&|$)/);
      if (a && !Number.isNaN(Date.parse(a[1]))) {
        S.asOf = a[1];
        sessionStorage.setItem("caretrail.asof", S.asOf);
      }
      history.replaceState(null, "", "/#/");
    } else if (location.pathname === "/login") {
      history.replaceState(null, "", "/" + location.hash);
    }
  }

  function signOut() {
    // A session is ended on the server too (the cookie alone would still be valid).
    if (S.csrf) endSession("/api/v1/session", "DELETE");
    sessionStorage.removeItem("caretrail.token");
    S.token = null; S.me = null; S.csrf = null;
    stopLive();
    resetOps();
    resetSubscriptions();
    resetImport();
    resetTokens();
    for (const name of ["overdue", "workers", "directors"]) { resetPager(name); $(`#${name}-q`).value = ""; }
    $("#nav").hidden = true; $("#signout").hidden = true; $("#asof").hidden = true; $("#account-link").hidden = true;
    fill($("#who"));
    location.hash = "#/signin";
    route();
  }

  async function signIn() {
    try {
      S.me = await api("/api/v1/me", { noSignout: true });
    } catch (e) {
      sessionStorage.removeItem("caretrail.token");
      S.token = null; S.csrf = null;
      showSignin(e.status === 401 ? t("signin.bad") : e.message);
      return;
    }
    for (const a of document.querySelectorAll("#nav a")) a.hidden = !allowed(a.dataset.view);
    $("#nav").hidden = false; $("#signout").hidden = false; $("#account-link").hidden = !S.csrf;
    renderWho();
    await loadLookups();
    startLive();
    if (!location.hash || location.hash === "#/" || location.hash === "#/signin") location.hash = `#/${home()}`;
    route();
  }

  function renderWho() {
    if (!S.me) return;
    fill($("#who"), h("span", { class: "badge role" }, t(`role.${S.me.role}`)), " ", S.me.name);
  }

  // Names for codes and ids, so lists show people and places rather than uuids.
  async function loadLookups() {
    const tasks = [];
    tasks.push(divisions().then((all) => all.forEach((d) => S.regions.set(d.code, d.name))).catch(() => {}));
    if (["admin", "auditor"].includes(role())) {
      tasks.push(api("/api/v1/directors?limit=500").then((r) => r.items.forEach((d) => S.directors.set(d.director_id, shownText(d.name)))).catch(() => {}));
    }
    if (["admin", "auditor", "director"].includes(role())) {
      tasks.push(api("/api/v1/pairings?limit=500&include_ended=true").then((r) => r.items.forEach((p) => {
        S.workers.set(p.model_worker_id, shownText(p.model_worker_name));
        S.directors.set(p.director_id, shownText(p.director_name));
      })).catch(() => {}));
    }
    await Promise.all(tasks);
  }
  const regionName = (code) => (code ? S.regions.get(code) || code : "—");

  function actorName(id, actorRole) {
    if (actorRole === "system") return t("tl.system");
    if (S.directors.has(id)) return S.directors.get(id);
    if (S.me && id === S.me.token_id) return S.me.name;
    return `${I18n.tOr(`role.${actorRole}`, actorRole)} ${String(id).slice(0, 8)}`;
  }

  // ---------- routing ----------

  function parseHash() {
    const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
    const parts = path.split("/").filter(Boolean);
    return { view: parts[0] || "", arg: parts[1] || "", params: new URLSearchParams(query || "") };
  }

  function show(view) {
    for (const s of document.querySelectorAll("main > .view")) s.hidden = s.id !== `view-${view}`;
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.dataset.view === view || (view === "worker" && a.dataset.view === "overdue")) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    $("#asof").hidden = !["overview", "overdue", "issues", "worker", "reports", "home", "workers", "directors"].includes(view);
    $("#asof-pos-wrap").hidden = !mayReplay();
    renderAsOfNote();
  }

  function showSignin(error) {
    show("signin");
    const e = $("#signin-error");
    e.hidden = !error; e.textContent = error || "";
    $("#signin-username").focus();
  }

  let renderSeq = 0;
  // Set once, when the first view has rendered with its data: the first-load benchmark
  // (crates/caretrail-web/benches/first_load.rs) measures time to interactive up to here.
  let interactive = false;
  async function route(quiet = false) {
    const r = parseHash();
    if (!S.token && !S.csrf) return showSignin();
    if (!S.me) return;
    const view = r.view || home();
    if (view === "signin") { location.hash = `#/${home()}`; return; }
    if (view === "account") { S.view = location.hash; show("account"); return renderAccount(); }
    if (!allowed(view)) { S.view = "forbidden"; show("forbidden"); return; }
    const seq = ++renderSeq;
    const changed = S.view !== location.hash;
    S.view = location.hash;
    show(view);
    const render = { overview: renderOverview, overdue: renderOverdue, worker: renderWorker, issues: renderIssues, record: renderRecord, audit: renderAudit, subscriptions: renderSubscriptions, import: renderImport, reports: renderReports, accounts: renderAccounts, tokens: renderTokens, home: renderHome, workers: renderWorkers, directors: renderDirectors }[view];
    if (!render) return;
    try {
      await render(r, { quiet, seq });
      if (!interactive) { interactive = true; performance.mark("caretrail:interactive"); }
    } catch (e) {
      if (e.name === "AbortError") return;
      toast(e.problem ? problemText(e.problem) : String(e), true);
    }
    if (changed && !quiet) $("#main").focus({ preventScroll: true });
  }

  // ---------- reports ----------
  // Monthly and yearly reports: the files are downloaded with the bearer token (fetched, then
  // handed to the browser as a Blob), and the printable version is the same layout the files
  // are written from (`format=json`), printed with the page's print stylesheet (A4, the
  // association's header, page numbers).

  function reportQuery(format) {
    const kind = $("#r-kind").value;
    const period = kind === "yearly" ? $("#r-year").value.trim() : $("#r-month").value;
    if (!period) return null;
    return { kind, url: `/api/v1/reports/${kind}${q({ period, format, lang: I18n.lang === "en" ? "en" : "zh" })}` };
  }

  function reportError(text) {
    const e = $("#reports-error");
    e.hidden = !text; e.textContent = text || "";
  }

  // The file name the server chose: RFC 5987's `filename*` when present, else `filename`.
  function dispositionName(header, fallback) {
    const star = /filename\*=UTF-8''([^;]+)/i.exec(header || "");
    if (star) { try { return decodeURIComponent(star[1]); } catch (_) { /* fall through */ } }
    const plain = /filename="([^"]+)"/i.exec(header || "");
    return plain ? plain[1] : fallback;
  }

  async function downloadReport(format) {
    reportError("");
    const rq = reportQuery(format);
    if (!rq) { reportError(t("reports.pick")); return; }
    busy(1);
    try {
      let res;
      try {
        res = await fetch(rq.url, { headers: authHeaders() });
      } catch (_) {
        throw new ApiError(0, { code: "network", detail: t("err.network") });
      }
      if (!res.ok) {
        const problem = (res.headers.get("content-type") || "").includes("json") ? await res.json() : null;
        throw new ApiError(res.status, problem || { status: res.status, code: `HTTP ${res.status}` });
      }
      const blob = await res.blob();
      const name = dispositionName(res.headers.get("content-disposition"), `report.${format}`);
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: name, hidden: true, id: "report-download" });
      document.body.append(a);
      a.click();
      a.remove();
      // Revoked later, not at once: the browser reads the blob after the click returns.
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      $("#reports-form").dataset.downloaded = `${name}:${blob.size}`;
      toast(t("reports.downloaded", { f: name }));
    } catch (err) {
      reportError(err.problem ? problemText(err.problem) : String(err));
    } finally {
      busy(-1);
    }
  }

  async function showReport() {
    reportError("");
    const rq = reportQuery("json");
    if (!rq) { reportError(t("reports.pick")); return; }
    const out = $("#report-print");
    loading(out);
    try {
      const { layout } = await api(rq.url);
      fill(out, printableReport(layout));
      $("#r-print").hidden = false;
    } catch (err) {
      fill(out);
      $("#r-print").hidden = true;
      reportError(err.problem ? problemText(err.problem) : String(err));
    }
  }

  // Every text comes from the server's layout and goes in as text (`h`), never as markup.
  function printableReport(layout) {
    const numeric = (c) => c.kind === "int" || c.kind === "yuan";
    const cell = (tag, c) => h(tag, { class: numeric(c) ? "num" : "" }, c.text);
    return [
      h("header", { class: "report-head" },
        h("div", { class: "report-title", role: "heading", "aria-level": "2" }, layout.title),
        h("dl", { class: "kv" }, layout.header.flatMap((r) => [h("dt", {}, r.label), h("dd", {}, r.value.text)]))),
      ...layout.tables.map((tb) => h("section", { class: "report-table" },
        h("h3", {}, `${tb.sheet} · ${tb.title}`),
        h("table", { class: "table" },
          h("thead", {}, h("tr", {}, tb.columns.map((c, i) => h("th", { scope: "col", class: tb.rows[0] && numeric(tb.rows[0][i]) ? "num" : "" }, c)))),
          h("tbody", {}, tb.rows.map((row, i) => h("tr", { class: tb.total && i === tb.rows.length - 1 ? "total" : "" },
            row.map((c) => cell("td", c)))))))),
    ];
  }

  let reportsWired = false;
  async function renderReports() {
    if (reportsWired) return;
    reportsWired = true;
    const asOf = S.asOf || todayShanghai();
    $("#r-month").value = asOf.slice(0, 7);
    $("#r-year").value = asOf.slice(0, 4);
    const kindChanged = () => {
      const yearly = $("#r-kind").value === "yearly";
      $("#r-month").hidden = yearly; $("#r-month-label").hidden = yearly;
      $("#r-year").hidden = !yearly; $("#r-year-label").hidden = !yearly;
    };
    $("#r-kind").addEventListener("change", kindChanged);
    $("#r-xlsx").addEventListener("click", () => downloadReport("xlsx"));
    $("#r-csv").addEventListener("click", () => downloadReport("csv"));
    $("#r-show").addEventListener("click", showReport);
    $("#r-print").addEventListener("click", () => window.print());
    kindChanged();
  }

  // ---------- overview ----------

  async function renderOverview(_r, { quiet }) {
    const cards = $("#ov-cards"), chart = $("#ov-chart"), aging = $("#ov-aging"), regions = $("#ov-regions");
    if (!quiet) [cards, chart, aging, regions].forEach(loading);
    const asOf = S.asOf || todayShanghai();
    const [y, m] = asOf.split("-").map(Number);
    const fromDate = new Date(Date.UTC(y, m - 12, 1)).toISOString().slice(0, 10);
    const [ov, gifts, cities, counties] = await Promise.all([
      api(`/api/v1/dashboard/overview${q()}`),
      api(`/api/v1/dashboard/gifts${q({ group_by: "month", from: fromDate, to: asOf, limit: 500 })}`),
      api(`/api/v1/regions${q({ level: "city" })}`),
      api(`/api/v1/regions${q({ level: "county" })}`),
    ]);
    const open = ov.open_issues.reduce((n, c) => n + c.count, 0);
    fill(cards,
      card("coverage", t("card.coverage"), `${ov.coverage_percent}%`, t("card.coverage_sub", { n: ov.model_workers_in_hardship, p: ov.paired, u: ov.unpaired })),
      card("visits_month", t("card.visits_month"), num(ov.visits_this_month)),
      card("visits_year", t("card.visits_year"), num(ov.visits_this_year)),
      card("cash", t("card.cash"), ov.cash_yuan_this_year),
      card("goods", t("card.goods"), `${num(ov.goods_given_this_year)} / ${num(ov.flowers_given_this_year)}`,
        t("card.goods_sub", { g: ov.goods_given_this_year, y: yuan(ov.goods_fen_this_year), f: ov.flowers_given_this_year })),
      card("open_issues", t("card.open_issues"), num(open)),
    );
    fill(chart, monthChart(gifts.items, fromDate, asOf));
    fill(aging, agingTable(ov.open_issues));
    fill(regions, regionTable(cities.items, counties.items));
  }

  function card(key, label, value, sub) {
    return h("div", { class: "stat", dataset: { stat: key } },
      h("div", { class: "stat-label" }, label),
      h("div", { class: "stat-value" }, value),
      sub ? h("div", { class: "stat-sub" }, sub) : null);
  }

  // Visits as bars (left scale) and cash as a line (right scale), one slot per month, drawn
  // as inline SVG so no chart library is needed.
  function monthChart(items, from, to) {
    const byKey = new Map(items.map((i) => [i.key, i]));
    const months = [];
    let [y, m] = from.split("-").map(Number);
    const [ty, tm] = to.split("-").map(Number);
    while (y < ty || (y === ty && m <= tm)) {
      months.push(`${y}-${String(m).padStart(2, "0")}`);
      m += 1; if (m > 12) { m = 1; y += 1; }
    }
    const rows = months.map((k) => ({ k, visits: byKey.get(k)?.visits || 0, cash: (byKey.get(k)?.cash_fen || 0) / 100 }));
    const W = 640, H = 240, L = 36, R = 56, T = 14, B = 34;
    const tv = niceTicks(Math.max(0, ...rows.map((r) => r.visits)));
    const tc = niceTicks(Math.max(0, ...rows.map((r) => r.cash)));
    const maxV = tv[tv.length - 1], maxC = tc[tc.length - 1];
    const slot = (W - L - R) / rows.length;
    const yV = (v) => T + (H - T - B) * (1 - v / maxV);
    const yC = (c) => T + (H - T - B) * (1 - c / maxC);
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": t("chart.label"), class: "chart-svg" });
    g.append(svg("title", {}, t("chart.label")));
    // Both scales share the grid lines, so they get the same number of ticks; each label is
    // a distinct whole number (an empty chart reads 0, 1, 2, 3, 4, not 1, 1, 1, 0, 0).
    const n = Math.max(tv.length, tc.length) - 1;
    const vStep = maxV / n, cStep = maxC / n;
    for (let i = 0; i <= n; i++) {
      const yy = T + ((H - T - B) * i) / n;
      g.append(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "grid" }));
      g.append(svg("text", { x: L - 4, y: yy + 4, class: "axis tick-visits", "text-anchor": "end" }, num(vStep * (n - i))));
      g.append(svg("text", { x: W - R + 4, y: yy + 4, class: "axis cash tick-cash" }, num(cStep * (n - i))));
    }
    const pts = [];
    rows.forEach((r, i) => {
      const x = L + i * slot;
      const bar = svg("rect", { x: x + slot * 0.2, y: yV(r.visits), width: slot * 0.6, height: H - B - yV(r.visits), class: "bar" });
      bar.append(svg("title", {}, `${r.k}: ${t("chart.visits")} ${r.visits}, ${t("chart.cash")} ${r.cash.toFixed(2)}`));
      g.append(bar);
      if (rows.length <= 13 || i % 2 === 0) g.append(svg("text", { x: x + slot / 2, y: H - B + 14, class: "axis", "text-anchor": "middle" }, r.k.slice(2)));
      pts.push(`${x + slot / 2},${yC(r.cash)}`);
    });
    g.append(svg("polyline", { points: pts.join(" "), class: "line" }));
    rows.forEach((r, i) => g.append(svg("circle", { cx: L + i * slot + slot / 2, cy: yC(r.cash), r: 3, class: "dot" })));
    const legend = h("p", { class: "legend" },
      h("span", { class: "key bar-key", "aria-hidden": "true" }), t("chart.visits"), "  ",
      h("span", { class: "key line-key", "aria-hidden": "true" }), t("chart.cash"));
    const total = rows.reduce((n, r) => n + r.visits, 0);
    return [g, legend, total ? null : h("p", { class: "muted" }, t("chart.empty"))];
  }

  // Up to four equal steps of a whole "nice" size (1, 2 or 5 times a power of ten) from 0 to
  // at least `max`: every label is a distinct whole number, whatever the data.
  function niceTicks(max) {
    const raw = Math.max(1, max) / 4;
    const pow = 10 ** Math.floor(Math.log10(raw));
    const step = Math.max(1, [1, 2, 5, 10].map((f) => f * pow).find((s) => s >= raw));
    const top = Math.max(step, Math.ceil(max / step) * step);
    const ticks = [];
    for (let v = 0; v <= top; v += step) ticks.push(v);
    while (ticks.length < 5) ticks.push(ticks[ticks.length - 1] + step);
    return ticks;
  }

  const AGES = ["0_7", "8_30", "31_90", "over_90"];
  function agingTable(counts) {
    const states = [...new Set(counts.map((c) => c.state))];
    if (!states.length) return h("p", { class: "muted" }, t("issues.empty"));
    const cell = (s, a) => counts.filter((c) => c.state === s && c.age_bucket === a).reduce((n, c) => n + c.count, 0);
    const buckets = [...new Set([...AGES, ...counts.map((c) => c.age_bucket)])];
    return h("table", { class: "table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("issues.state")), buckets.map((a) => h("th", { scope: "col", class: "num" }, I18n.tOr(`age.${a}`, a))))),
      h("tbody", {}, states.map((s) => h("tr", {}, h("th", { scope: "row" }, I18n.tOr(`istate.${s}`, s)), buckets.map((a) => h("td", { class: "num" }, cell(s, a)))))));
  }

  function regionTable(cities, counties) {
    const pct = (r) => (r.in_hardship ? `${Math.round((100 * r.paired) / r.in_hardship)}%` : "—");
    const row = (r, sub) => h("tr", { class: sub ? "sub" : "city" },
      h("th", { scope: "row" }, sub ? "　" : "", r.region_name || r.region_code),
      h("td", { class: "num" }, r.in_hardship), h("td", { class: "num" }, r.paired),
      h("td", { class: "num" }, r.visited_last_183_days), h("td", { class: "num" }, pct(r)));
    const body = [];
    for (const c of cities) {
      body.push(row(c, false));
      for (const k of counties.filter((k) => k.city_code === c.city_code && k.region_code !== c.region_code)) body.push(row(k, true));
    }
    return h("div", { class: "scroll" }, h("table", { class: "table" },
      h("thead", {}, h("tr", {}, ["region.name", "region.in_hardship", "region.paired", "region.visited", "region.coverage"].map((k, i) => h("th", { scope: "col", class: i ? "num" : "" }, t(k))))),
      h("tbody", {}, body)));
  }

  // ---------- overdue working list ----------

  async function renderOverdue(_r, { quiet }) {
    const list = $("#overdue-list");
    if (!quiet) loading(list);
    const f = $("#overdue-filter");
    await regionFilter(f.city, f.county);
    searchBox(f.q);
    const status = f.status.value;
    const pg = PAGERS.overdue;
    const res = await api(`/api/v1/pairings${q({ status, city: f.city.value, county: f.county.value, director_id: f.director_id.value, q: nameQuery(f.q), limit: PAGE_SIZE, cursor: pg.cursor })}`);
    if (!f.dataset.filled) fillFilterOptions(f, res.items);
    pager($("#overdue-pager"), pg, res.next_cursor);
    // The server's order is the due date, so the most overdue come first on every page.
    const items = res.items;
    if (!items.length) return fill(list, h("p", { class: "muted" }, t("overdue.empty")));
    fill(list, h("div", { class: "scroll" }, h("table", { class: "table rows stack", id: "overdue-table" },
      h("thead", {}, h("tr", {}, ["col.worker", "col.director", "col.region", "col.last_visit", "col.next_due", "col.days_overdue", "col.status", "col.open_issues"]
        .map((k, i) => h("th", { scope: "col", class: i === 5 || i === 7 ? "num" : "" }, t(k))))),
      h("tbody", {}, items.map((p) => h("tr", { dataset: { worker: p.model_worker_id } },
        h("td", {}, h("a", { href: `#/worker/${p.model_worker_id}`, class: "worker-link" }, shown(p.model_worker_name))),
        h("td", {}, shown(p.director_name)),
        h("td", {}, regionName(p.county_code)),
        h("td", {}, p.last_visit_on || "—"),
        h("td", {}, p.next_due_on),
        h("td", { class: "num strong" }, p.days_overdue > 0 ? t("overdue.days", { n: p.days_overdue }) : "—"),
        h("td", {}, h("span", { class: `badge st-${p.status}` }, I18n.tOr(`status.${p.status}`, p.status))),
        h("td", { class: "num" }, p.open_issues)))))));
    labelCells($("#overdue-table"));
  }

  function fillFilterOptions(f, items) {
    const add = (sel, pairs) => {
      for (const [v, label] of pairs) if (![...sel.options].some((o) => o.value === v)) sel.append(h("option", { value: v }, label));
    };
    add(f.director_id, [...new Map(items.map((p) => [p.director_id, shownText(p.director_name)]))]);
    f.dataset.filled = "1";
  }

  // ---------- lists: search by name, regions by name, paging ----------
  // The lists page with the server's cursor; the cursors of earlier pages are kept in memory
  // so "previous" needs no server support. A name typed in a search box goes to the API in
  // the query string of a fetch only: never into the address bar, history or storage.

  const PAGE_SIZE = 50;
  const TIMELINE_PAGE = 100;
  const PAGERS = { overdue: { stack: [], cursor: "" }, workers: { stack: [], cursor: "" }, directors: { stack: [], cursor: "" } };
  const resetPager = (name) => { PAGERS[name].stack = []; PAGERS[name].cursor = ""; };

  function pager(nav, pg, next) {
    const n = pg.stack.length + 1;
    const go = (cursor, back) => {
      if (back) pg.cursor = pg.stack.pop() || ""; else { pg.stack.push(pg.cursor); pg.cursor = cursor; }
      route();
    };
    fill(nav, (n > 1 || next) ? [
      h("button", { type: "button", class: "pager-prev", disabled: n <= 1, onclick: () => go("", true) }, t("pager.prev")),
      h("span", { class: "pager-page muted" }, t("pager.page", { n })),
      h("button", { type: "button", class: "pager-next", disabled: !next, onclick: () => go(next, false) }, t("pager.next")),
    ] : []);
  }

  // The search box is shown only to roles that may read names.
  function searchBox(input) {
    input.closest(".search-wrap").hidden = !maySearchNames();
  }
  const nameQuery = (input) => (maySearchNames() ? input.value.trim() : "");

  let divisionsP = null;
  function divisions() {
    divisionsP ||= api("/api/v1/divisions").then((r) => r.items).catch((e) => { divisionsP = null; throw e; });
    return divisionsP;
  }

  // A city select and a county select filled with names from the region table; the county
  // list follows the city. Values are GB/T 2260 codes, labels the official names.
  async function regionFilter(citySel, countySel) {
    const all = await divisions();
    if (!citySel.dataset.regions) {
      citySel.dataset.regions = "1";
      for (const d of all.filter((x) => x.level === "prefecture")) citySel.append(h("option", { value: d.code }, d.name));
      citySel.addEventListener("change", () => { countySel.value = ""; fillCounties(countySel, all, citySel.value); });
    }
    fillCounties(countySel, all, citySel.value);
  }
  function fillCounties(countySel, all, city) {
    const keep = countySel.value;
    const first = countySel.options[0];
    countySel.replaceChildren(first);
    for (const d of all.filter((x) => x.level === "county" && x.parent_code === city)) countySel.append(h("option", { value: d.code }, d.name));
    countySel.value = [...countySel.options].some((o) => o.value === keep) ? keep : "";
    countySel.disabled = !city;
  }

  // The hook the record forms use: every region code field is picked by name (city, then
  // county or the city as a whole); the code input stays the form's field, hidden, so what
  // the form sends and where a server error shows are unchanged. A change the form makes to
  // the code itself (choosing a model worker fills in their region) is shown in the pickers.
  function enhanceRegionFields(form) {
    for (const field of form.querySelectorAll('.field[data-path$="region_code"]')) {
      const code = field.querySelector("input");
      if (!code || field.querySelector(".region-pick")) continue;
      const city = h("select", { class: "region-city", "aria-label": t("f.city") }, h("option", { value: "", "data-i18n": "form.choose" }, t("form.choose")));
      const county = h("select", { class: "region-county", "aria-label": t("f.county") }, h("option", { value: "", "data-i18n": "region.whole_city" }, t("region.whole_city")));
      const pick = h("div", { class: "region-pick" }, city, county);
      code.hidden = true;
      code.after(pick);
      const label = field.querySelector("label");
      if (label) { city.id = `${code.id}-city`; label.setAttribute("for", city.id); }
      const show = (all) => {
        const c = code.value.trim();
        const d = all.find((x) => x.code === c);
        const cityCode = !d ? "" : d.level === "county" ? d.parent_code : d.level === "prefecture" ? d.code : "";
        city.value = cityCode;
        fillCounties(county, all, cityCode);
        county.value = d && d.level === "county" ? d.code : "";
      };
      divisions().then((all) => {
        for (const d of all.filter((x) => x.level === "prefecture")) city.append(h("option", { value: d.code }, d.name));
        show(all);
        city.addEventListener("change", () => { fillCounties(county, all, city.value); county.value = ""; code.value = city.value; });
        county.addEventListener("change", () => { code.value = county.value || city.value; });
        form.addEventListener("change", (ev) => { if (!pick.contains(ev.target)) show(all); });
      }).catch(() => { code.hidden = false; pick.remove(); });
    }
  }

  // Tables become stacked cards on a phone (CSS); each cell carries its column's name.
  function labelCells(table) {
    const heads = [...table.querySelectorAll("thead th")].map((th) => th.innerText.trim());
    for (const tr of table.querySelectorAll("tbody tr")) [...tr.children].forEach((td, i) => { if (heads[i]) td.dataset.label = heads[i]; });
  }

  async function renderWorkers(_r, { quiet }) {
    const list = $("#workers-list");
    if (!quiet) loading(list);
    const f = $("#workers-filter");
    await regionFilter(f.city, f.county);
    searchBox(f.q);
    const pg = PAGERS.workers;
    const res = await api(`/api/v1/model-workers${q({ city: f.city.value, county: f.county.value, q: nameQuery(f.q), limit: PAGE_SIZE, cursor: pg.cursor }, false)}`);
    pager($("#workers-pager"), pg, res.next_cursor);
    if (!res.items.length) return fill(list, h("p", { class: "muted" }, t("workers.empty")));
    fill(list, h("div", { class: "scroll" }, h("table", { class: "table rows stack", id: "workers-table" },
      h("thead", {}, h("tr", {}, ["col.name", "col.honour", "col.region", "col.hardship", "col.paired", "col.last_visit", "col.visits", "col.open_issues"]
        .map((k, i) => h("th", { scope: "col", class: i >= 6 ? "num" : "" }, t(k))))),
      h("tbody", {}, res.items.map((w) => h("tr", { dataset: { worker: w.model_worker_id } },
        h("td", {}, h("a", { href: `#/worker/${w.model_worker_id}`, class: "worker-link" }, shown(w.name))),
        h("td", {}, I18n.tOr(`honour.${w.honour}`, w.honour)),
        h("td", {}, regionName(w.county_code)),
        h("td", {}, w.in_hardship ? I18n.tOr(`tier.${w.hardship_tier}`, w.hardship_tier || t("yes")) : t("no")),
        h("td", {}, w.director_id ? S.directors.get(w.director_id) || t("yes") : t("no")),
        h("td", {}, w.last_visit_on || "—"),
        h("td", { class: "num" }, w.visits),
        h("td", { class: "num" }, w.open_issues)))))));
    labelCells($("#workers-table"));
  }

  async function renderDirectors(_r, { quiet }) {
    const list = $("#directors-list");
    if (!quiet) loading(list);
    const f = $("#directors-filter");
    searchBox(f.q);
    const pg = PAGERS.directors;
    const res = await api(`/api/v1/directors${q({ q: nameQuery(f.q), limit: PAGE_SIZE, cursor: pg.cursor, sort: "id" })}`);
    pager($("#directors-pager"), pg, res.next_cursor);
    if (!res.items.length) return fill(list, h("p", { class: "muted" }, t("directors.empty")));
    fill(list, h("div", { class: "scroll" }, h("table", { class: "table rows stack", id: "directors-table" },
      h("thead", {}, h("tr", {}, ["col.name", "col.role", "col.worker", "col.visits_year", "col.contacts_year", "col.last_contact", "col.open_issues"]
        .map((k, i) => h("th", { scope: "col", class: [3, 4].includes(i) ? "num" : "" }, t(k))))),
      h("tbody", {}, res.items.map((d) => h("tr", { dataset: { director: d.director_id } },
        h("td", {}, shown(d.name)),
        h("td", {}, I18n.tOr(`drole.${d.role}`, d.role)),
        h("td", {}, d.model_worker_id ? h("a", { href: `#/worker/${d.model_worker_id}` }, S.workers.get(d.model_worker_id) || d.model_worker_id.slice(0, 8)) : "—"),
        h("td", { class: "num" }, d.visits_this_year),
        h("td", { class: "num" }, d.contacts_this_year),
        h("td", {}, d.last_contact_on || "—"),
        h("td", { class: "num" }, d.issues_raised_this_year - d.issues_closed_this_year)))))));
    labelCells($("#directors-table"));
  }

  // ---------- a director's own page ----------
  // Their pairing(s) with what is due, a button to record a visit with the model worker
  // preselected, and their latest visits: what a director needs on a phone at the visit.

  async function renderHome(_r, { quiet }) {
    const pairs = $("#home-pairings"), visits = $("#home-visits");
    if (!quiet) [pairs, visits].forEach(loading);
    const [ps, vs] = await Promise.all([
      api(`/api/v1/pairings${q({ include_ended: "true", limit: 20 })}`),
      api(`/api/v1/visits${q({ limit: 10 }, false)}`),
    ]);
    const items = [...ps.items].sort((a, b) => (a.ended_on ? 1 : 0) - (b.ended_on ? 1 : 0));
    for (const p of items) S.workers.set(p.model_worker_id, shownText(p.model_worker_name));
    const kv = (k, v) => [h("dt", {}, t(k)), h("dd", {}, v)];
    const due = (p) => (p.days_overdue > 0 ? t("home.overdue_by", { n: p.days_overdue }) : t("home.due_in", { n: -p.days_overdue }));
    fill(pairs, items.length ? items.map((p) => h("article", { class: `card pairing ${p.ended_on ? "ended" : ""}`, dataset: { pairing: p.pairing_id, worker: p.model_worker_id } },
      h("h2", {}, shown(p.model_worker_name), " ",
        h("span", { class: `badge st-${p.status}` }, I18n.tOr(`status.${p.status}`, p.status))),
      h("p", { class: "muted" }, regionName(p.county_code), " · ", t("home.since", { d: p.effective_from }),
        p.ended_on ? ` · ${t("home.ended", { d: p.ended_on })}` : ""),
      h("dl", { class: "kv" },
        kv("home.last_visit", p.last_visit_on || "—"),
        kv("home.next_due", [p.next_due_on, " ", h("span", { class: p.days_overdue > 0 ? "strong" : "muted" }, `(${due(p)})`)]),
        kv("home.open_issues", String(p.open_issues))),
      h("div", { class: "actions" },
        p.ended_on ? null : h("a", { class: "button primary home-record", href: `#/record/RecordVisit?worker=${p.model_worker_id}&pairing=${p.pairing_id}` }, t("home.record")),
        h("a", { class: "button", href: `#/worker/${p.model_worker_id}` }, t("home.file")))))
      : h("p", { class: "muted" }, t("home.none")));
    fill(visits, vs.items.length ? vs.items.map((v) => h("li", { dataset: { visit: v.visit_id } },
      h("strong", {}, v.visited_on), " · ",
      h("a", { href: `#/worker/${v.model_worker_id}` }, S.workers.get(v.model_worker_id) || v.model_worker_id.slice(0, 8)),
      " · ", regionName(v.county_code),
      v.cash_fen ? ` · ${t("home.cash", { y: v.cash_yuan })}` : ""))
      : h("li", { class: "muted" }, t("home.no_visits")));
  }

  // ---------- model worker file ----------

  // The rest of the timeline, a page at a time, after the last entry shown.
  function timelineMore(id, more) {
    const button = $("#worker-more"), tl = $("#worker-timeline");
    button.hidden = !more;
    $("#worker-tl-count").textContent = t("worker.tl_count", { n: tl.children.length });
    button.onclick = async () => {
      const last = tl.lastElementChild?.dataset.position || 0;
      button.disabled = true;
      try {
        const page = await api(`/api/v1/model-workers/${encodeURIComponent(id)}/timeline${q({ after: last, limit: TIMELINE_PAGE, as_of_position: S.asOfPos && mayReplay() ? S.asOfPos : "" }, false)}`);
        tl.append(...page.items.map(timelineEntry));
        timelineMore(id, !!page.next_cursor);
      } catch (e) {
        toast(e.problem ? problemText(e.problem) : String(e), true);
      } finally {
        button.disabled = false;
      }
    };
  }

  async function renderWorker(r, { quiet }) {
    const id = r.arg;
    const prof = $("#worker-profile"), pairs = $("#worker-pairings"), tl = $("#worker-timeline"), actions = $("#worker-actions");
    if (!quiet) [prof, pairs, tl].forEach(loading);
    let file;
    try {
      file = await api(`/api/v1/model-workers/${encodeURIComponent(id)}${q({ limit: TIMELINE_PAGE, as_of_position: S.asOfPos && mayReplay() ? S.asOfPos : "" }, false)}`);
    } catch (e) {
      if (e.status === 404) { fill(prof, h("p", { class: "error" }, t("worker.not_found"))); fill(pairs); fill(tl); return; }
      throw e;
    }
    fill($("#worker-title"), t("worker.title"), " · ", shown(file.name));
    const kv = (k, v) => [h("dt", {}, t(k)), h("dd", {}, v)];
    fill(prof,
      kv("worker.name", shown(file.name)),
      kv("worker.honour", I18n.tOr(`honour.${file.honour}`, file.honour)),
      kv("worker.region", regionName(file.county_code || file.region_code)),
      kv("worker.registered_on", file.registered_on),
      kv("worker.hardship", file.in_hardship ? t("worker.hardship_yes", { t: I18n.tOr(`tier.${file.hardship_tier}`, file.hardship_tier || ""), d: file.hardship_since || "" }) : t("worker.hardship_no")),
      file.died_on ? kv("worker.died_on", file.died_on) : null,
      kv("worker.last_visit", file.last_visit_on || "—"),
      kv("worker.visits", h("span", { id: "worker-visits" }, file.visits)),
      kv("worker.open_issues", file.open_issues));
    fill(pairs, h("ul", { class: "plain" }, file.pairings.map((p) => h("li", {},
      h("strong", {}, shown(p.director_name)), " ",
      t("worker.pairing_line", { d: "", from: p.effective_from, to: p.ended_on ? t("worker.pairing_to", { d: p.ended_on }) : "" }).replace(/^[:：]\s*/, ""),
      p.ended_on ? "" : t("worker.active")))));
    const active = file.pairings.find((p) => !p.ended_on);
    const canRecord = allowed("record") && !file.erased && !file.died_on;
    fill(actions, canRecord ? [
      h("a", { class: "button primary", href: `#/record/RecordVisit?worker=${id}${active ? `&pairing=${active.pairing_id}` : ""}`, id: "action-record-visit" }, t("worker.record_visit")),
      h("a", { class: "button", href: `#/record/RaiseIssue?worker=${id}` }, t("worker.raise_issue")),
      active ? h("a", { class: "button", href: `#/record/RecordContact?worker=${id}&pairing=${active.pairing_id}` }, t("worker.record_contact")) : null,
    ] : []);
    fill(tl, file.timeline.items.map(timelineEntry));
    timelineMore(id, file.timeline.next_offset !== null && file.timeline.next_offset !== undefined);
  }

  // One entry of the care timeline, in log order (what happened first comes first).
  function timelineEntry(e) {
    return h("li", { dataset: { position: e.position, type: e.event_type } },
      h("div", { class: "tl-head" },
        h("span", { class: `tl-type ev-${e.event_type}` }, I18n.tOr(`ev.${e.event_type}`, e.event_type)),
        " ", h("span", { class: "tl-date" }, e.business_date ? t("tl.business", { d: e.business_date }) : "")),
      h("div", { class: "tl-meta muted" }, t("tl.recorded", { who: actorName(e.actor_id, e.actor_role), at: recorded(e.recorded_at) }), ` · #${e.position}`));
  }

  // ---------- issues board ----------

  async function renderIssues(_r, { quiet }) {
    const board = $("#issues-board"), sum = $("#issues-summary");
    if (!quiet) [board, sum].forEach(loading);
    const f = $("#issues-filter");
    const [s, list] = await Promise.all([
      api(`/api/v1/dashboard/issues${q()}`),
      api(`/api/v1/issues${q({ state: f.state.value, breached_only: f.breached_only.checked ? "true" : "", limit: 500 })}`),
    ]);
    const open = s.open_by_state_and_age.reduce((n, c) => n + c.count, 0);
    fill(sum,
      card("open", t("card.open_issues"), num(open)),
      card("resolved", t("issues.resolved", { n: "" }).trim(), num(s.resolved), s.median_days_to_resolve !== null ? t("issues.median", { d: s.median_days_to_resolve }) : null),
      s.by_body.map((b) => card("body", b.name || b.body_id.slice(0, 8), t("issues.open", { n: b.open }), t("issues.breached", { n: b.breached }))));
    const states = ["raised", "acknowledged", "escalated", "in_progress", "resolved", "confirmed", "closed"];
    const seen = new Set(list.items.map((i) => i.state));
    for (const st of [...states, ...seen]) {
      if (![...f.state.options].some((o) => o.value === st)) f.state.append(h("option", { value: st, "data-i18n": `istate.${st}` }, I18n.tOr(`istate.${st}`, st)));
    }
    if (!list.items.length) return fill(board, h("p", { class: "muted" }, t("issues.empty")));
    const cols = [...states.filter((x) => seen.has(x)), ...[...seen].filter((x) => !states.includes(x))];
    fill(board, cols.map((st) => h("section", { class: "column", "aria-label": I18n.tOr(`istate.${st}`, st) },
      h("h2", {}, I18n.tOr(`istate.${st}`, st), " ", h("span", { class: "count" }, list.items.filter((i) => i.state === st).length)),
      list.items.filter((i) => i.state === st).sort((a, b) => b.age_days - a.age_days).map((i) => h("article", { class: `issue ${i.breached ? "breached" : ""}`, dataset: { issue: i.issue_id } },
        h("h3", {}, h("a", { href: `#/worker/${i.model_worker_id}` }, S.workers.get(i.model_worker_id) || i.model_worker_id.slice(0, 8)), " · ", I18n.tOr(`icat.${i.category}`, i.category)),
        h("p", {}, h("span", { class: `badge urg-${i.urgency}` }, I18n.tOr(`urg.${i.urgency}`, i.urgency)), " ",
          i.breached ? h("span", { class: "badge breach" }, t("issues.breach")) : null),
        h("p", { class: "muted" }, t("issues.raised", { d: i.raised_on, n: i.age_days }), " · ", I18n.tOr(`age.${i.age_bucket}`, i.age_bucket)),
        i.escalated_to ? h("p", {}, t("issues.escalated", { b: i.escalated_to_name || i.escalated_to.slice(0, 8) })) : null,
        i.due_by || i.respond_by ? h("p", {}, t("issues.due", { d: i.due_by || i.respond_by })) : null)))));
  }

  // ---------- record forms ----------
  // One form per command route (the subscription commands have their own view). Which of them
  // a signed-in person sees comes from the server: `/api/v1/me` lists the commands the token
  // may send (the domain's table), and the page offers exactly those. Most forms are described
  // by a list of fields (`SPECS`); the visit, its correction and the erasure have builders of
  // their own. Every field carries its API path (`data-path`), so a refusal lands beside it.

  const FORM_COMMANDS = [
    "RegisterModelWorker", "AssessHardship", "ExitHardship", "RecordRelocation", "RecordDeath",
    "AppointDirector", "EndDirectorTerm", "RegisterBody",
    "AssignPair", "EndPair",
    "RecordVisit", "CorrectVisit", "VoidVisit", "RecordContact",
    "RaiseIssue", "ResolveOnSpot", "AcknowledgeIssue", "EscalateIssue", "RecordBodyResponse", "NoteIssueProgress",
    "ResolveIssue", "ConfirmResolution", "CloseIssue", "ReopenIssue",
    "ErasePersonalData",
  ];
  // The tab group each command opens (the commands after it, up to the next, belong to it).
  const FORM_GROUPS = { RegisterModelWorker: "worker", AppointDirector: "director", AssignPair: "pairing", RecordVisit: "visit", RaiseIssue: "issue", ErasePersonalData: "privacy" };

  // Every enum a form offers, with the API's values (labels: `enum.<name>.<value>`).
  const ENUMS = {
    gift: ["cash", "goods", "flowers"],
    prole: ["companion", "union_official", "association_staff", "volunteer", "other"],
    icat: ["housing_repair", "utilities", "medical", "benefits_policy", "income_living", "legal", "family_care", "other"],
    urg: ["low", "normal", "high", "urgent"],
    escchan: ["letter", "phone", "online", "meeting", "in_person", "other"],
    contchan: ["phone", "wechat", "in_person", "other"],
    out: ["resolved", "partially_resolved", "not_resolvable", "withdrawn"],
    honour: ["national_model_worker", "national_advanced_worker", "provincial_model_worker", "provincial_advanced_worker", "other"],
    tier: ["deep", "relative", "accidental"],
    cause: ["old_age", "illness", "disability", "low_income", "family_burden", "accident", "housing", "other"],
    drole: ["president", "vice_president", "standing_director", "director", "staff"],
    endreason: ["reassigned", "hardship_exited", "director_term_ended", "model_worker_died", "on_request", "other"],
    legal: ["subject_request", "consent_withdrawn", "purpose_fulfilled", "unlawful_processing", "other"],
    bodykind: ["association", "union_provincial", "union_city", "union_county", "union_subdistrict", "employer_union", "government_department", "volunteer_team", "other"],
    satisfaction: ["satisfied", "partly_satisfied", "not_satisfied"],
    via: ["visit", "phone", "wechat", "in_person", "other"],
    bodyresp: ["accepted", "declined", "redirected"],
    bstatus: ["implemented", "partially_implemented", "not_implemented", "unknown"],
  };
  // The older enums keep the label keys the rest of the page already uses.
  const ENUM_PREFIX = { gift: "gift", prole: "prole", icat: "icat", urg: "urg", escchan: "chan", contchan: "chan", out: "out" };
  const enumPrefix = (e) => ENUM_PREFIX[e] || `enum.${e}`;

  // Where each domain refusal belongs: the first of these paths the form has, else the form as
  // a whole (an empty list). `$field` is the field the refusal names itself; `$cash` the first
  // cash gift without an amount. `tests/forms.rs` checks that every code of the domain's
  // `Rejection` is here and has words in both languages (`rej.<code>`).
  const REJECTION_PLACES = {
    state_not_loaded: [], personal_data_not_plain: ["$field"], required_text_empty: ["$field"],
    date_in_future: ["$field"], visit_date_in_future: ["visited_on", "changes.visited_on"],
    gift_amount_above_cap: ["$field"], amount_overflow: ["gifts", "changes.gifts"],
    model_worker_already_registered: [], unknown_model_worker: ["model_worker_id"],
    model_worker_deceased: ["model_worker_id"], model_worker_not_in_hardship: ["model_worker_id"],
    hardship_causes_empty: ["causes"],
    director_already_appointed: ["director_id"], unknown_director: ["director_id", "owner", "participants[0].who.director_id", "changes.participants[0].who.director_id"],
    director_not_in_term: ["effective_from", "director_id", "owner"], term_invalid: ["term.until", "term.from"],
    term_end_before_start: ["ended_on"], body_already_registered: [],
    unknown_body: ["body_id", "to_body", "redirected_to", "resolved_by"],
    pairing_already_exists: [], unknown_pairing: ["pairing_id", "model_worker_id"],
    director_already_paired: ["director_id"], model_worker_already_paired: ["model_worker_id"],
    pairing_period_overlaps: ["effective_from"],
    visit_policy_invalid: ["visit_policy.due_soon_window_days", "visit_policy.max_days_between_visits"],
    pairing_already_ended: ["pairing_id"], pair_end_before_start: ["ended_on", "died_on"],
    pair_end_before_last_activity: ["ended_on", "died_on"],
    pairing_not_active_on_date: ["visited_on", "changes.visited_on", "on"],
    visit_already_recorded: [], unknown_visit: ["visit_id"], visit_model_worker_mismatch: ["visit_id", "model_worker_id"],
    visit_needs_pairing_or_adhoc_reason: ["adhoc_reason", "model_worker_id"], visit_has_pairing_and_adhoc_reason: ["adhoc_reason"],
    visit_without_participants: ["participants[0].who.director_id", "changes.participants[0].who.director_id"],
    visit_needs_one_lead: ["participants[0].who.director_id", "changes.participants[0].who.director_id"],
    visit_lead_not_actor: ["participants[0].who.director_id", "changes.participants[0].who.director_id"], visit_not_led_by_actor: ["visit_id"],
    cash_gift_without_amount: ["$cash"], visit_voided: ["visit_id"], correction_empty: [],
    issue_already_raised: [], unknown_issue: ["issue_id"], issue_not_acknowledged: ["issue_id"],
    issue_already_acknowledged: ["issue_id"], issue_not_escalated: ["issue_id"], issue_already_resolved: ["issue_id"],
    issue_not_resolved: ["issue_id"], issue_already_confirmed: ["issue_id"], issue_not_confirmed: ["override_reason"],
    issue_closed: ["issue_id"], issue_date_out_of_order: ["on"], due_date_before_step: ["due_by", "respond_by"],
    body_not_escalated_to: ["body_id"], redirect_target_invalid: ["redirected_to"],
    contact_already_recorded: [], personal_data_already_erased: ["subject_id"],
  };

  let fieldSeq = 0;
  // One labelled field; `path` is the API's field path, so a server error lands next to it.
  // A personal field says so (sealed in the log, erasable, hidden from those who may not read it).
  function field(path, labelKey, control, opts = {}) {
    const id = `f${++fieldSeq}`;
    control.id = id;
    control.name = control.name || path;
    control.setAttribute("aria-describedby", `${id}-err${opts.personal ? ` ${id}-pi` : ""}`);
    if (opts.required) control.setAttribute("aria-required", "true");
    const label = h("label", { for: id }, h("span", { "data-i18n": labelKey }, t(labelKey)),
      opts.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null,
      opts.personal ? h("span", { class: "badge personal", id: `${id}-pi`, title: t("form.personal_help"), "data-i18n": "form.personal" }, t("form.personal")) : null);
    return h("div", { class: `field ${opts.class || ""} ${opts.personal ? "personal" : ""}`, dataset: opts.personal ? { path, personal: "1" } : { path } }, label, control, h("p", { class: "error", id: `${id}-err`, hidden: true }));
  }
  // A picker. Each value is an enum value (labelled `prefix.value`), or [value, label] where
  // the label is text or a function of the language (a person's name with their region or
  // role): such a label is made again when the language changes (`relabel`).
  function select(values, prefix, opts = {}) {
    const s = h("select", {});
    if (opts.empty) s.append(h("option", { value: "", "data-i18n": opts.empty }, t(opts.empty)));
    for (const v of values) {
      const [value, label] = Array.isArray(v) ? v : [v, null];
      s.append(label !== null ? option(value, label) : h("option", { value, "data-i18n": `${prefix}.${value}` }, t(`${prefix}.${value}`)));
    }
    if (opts.value) s.value = opts.value;
    return s;
  }
  function option(value, label, attrs = {}) {
    const o = h("option", { value, ...attrs }, typeof label === "function" ? label() : label);
    if (typeof label === "function") o.relabel = label;
    return o;
  }
  function group(key, kind, options) {
    const g = h("optgroup", { label: t(key), "data-kind": kind }, options);
    g.relabel = () => t(key);
    return g;
  }
  // Labels that are functions of the language, made again in its new words.
  function relabel(root) {
    for (const o of root.querySelectorAll("option, optgroup")) {
      if (!o.relabel) continue;
      if (o.tagName === "OPTGROUP") o.label = o.relabel(); else o.textContent = o.relabel();
    }
  }
  const input = (attrs) => h("input", attrs);
  const check = (path, labelKey) => {
    const id = `f${++fieldSeq}`;
    return h("div", { class: "field check", dataset: { path } }, h("label", { for: id }, h("input", { type: "checkbox", id, name: path }), " ", h("span", { "data-i18n": labelKey }, t(labelKey))));
  };

  // Yuan as typed ("1234.5") to fen, exactly: the decimal string is split, never multiplied as
  // a float (0.29 * 100 is 28.999999999999996). At most 13 digits of yuan, so the fen stay
  // below 2^53 and JSON carries them exactly. A minus sign is kept: whether an amount may be
  // negative is the server's rule, and it says so beside the field.
  function yuanToFen(text) {
    const s = String(text).trim().replace(/^[¥￥]/, "");
    const m = /^(-?)(\d{1,13})(?:\.(\d{1,2}))?$/.exec(s);
    if (!m) return null;
    const fen = Number(m[2]) * 100 + Number((m[3] || "").padEnd(2, "0"));
    return m[1] ? -fen : fen;
  }
  const fenToYuan = (fen) => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, "0")}`;

  // ----- what the pickers offer: names, never ids to type -----

  const shortId = (id) => String(id).slice(0, 8);
  // Every page of a list (500 rows a page, at most 20 pages): a picker that stopped at the
  // first page would silently leave people out.
  async function allItems(path) {
    const items = [];
    let cursor = null;
    for (let i = 0; i < 20; i++) {
      const r = await api(cursor ? `${path}&cursor=${encodeURIComponent(cursor)}` : path);
      items.push(...r.items);
      cursor = r.next_cursor;
      if (!cursor) break;
    }
    return items;
  }
  const lists = {
    async workers(filter = {}) {
      return (await allItems(`/api/v1/model-workers${q({ limit: 500, ...filter }, false)}`)).filter((w) => !(w.name && w.name.erased));
    },
    async directors() {
      if (role() !== "admin") return [];
      return allItems("/api/v1/directors?limit=500&sort=id");
    },
    async pairings(includeEnded = false) {
      return allItems(`/api/v1/pairings${q({ limit: 500, include_ended: includeEnded ? "true" : "" }, false)}`);
    },
    async visits() {
      return (await allItems("/api/v1/visits?limit=500")).filter((v) => !v.voided);
    },
    // Every registered body, read off the log page by page (bodies have no list of their own;
    // stopping at the first page would silently leave bodies out of every picker).
    async bodies() {
      if (role() !== "admin") return [];
      const out = [];
      for (let after = 0; ;) {
        const res = await api(`/api/v1/events?type=BodyRegistered&limit=1000&after=${after}`);
        out.push(...res.events.map((e) => ({ body_id: e.data.body_id, name: e.data.name, kind: e.data.kind })));
        if (res.events.length < 1000) return out;
        after = res.events[res.events.length - 1].position;
      }
    },
    // Administrators read the issues board. Directors may not, so their issues are read off
    // their model worker's timeline: each issue stream's latest step says where it stands.
    async issues() {
      if (role() === "admin") return allItems("/api/v1/issues?state=all&limit=500");
      const out = [];
      for (const w of await lists.workers()) {
        const file = await api(`/api/v1/model-workers/${encodeURIComponent(w.model_worker_id)}?limit=500`);
        const byStream = new Map();
        for (const e of [...file.timeline.items].sort((a, b) => a.position - b.position)) {
          if (!e.stream_id.startsWith("issue-")) continue;
          const i = byStream.get(e.stream_id) || { issue_id: e.stream_id.slice(6), model_worker_id: w.model_worker_id, category: null, state: "raised", raised_on: e.business_date };
          i.state = ISSUE_STEP_STATE[e.event_type] || i.state;
          byStream.set(e.stream_id, i);
        }
        out.push(...byStream.values());
      }
      return out;
    },
  };
  const ISSUE_STEP_STATE = {
    IssueRaised: "raised", IssueAcknowledged: "acknowledged", IssueEscalated: "escalated", IssueResolvedOnSpot: "resolved",
    IssueResolved: "resolved", IssueResolutionConfirmed: "confirmed", IssueClosed: "closed", IssueReopened: "reopened",
  };
  const workerName = (id) => S.workers.get(id) || shortId(id);
  const directorName = (id) => S.directors.get(id) || shortId(id);
  const issueLabel = (i) => [workerName(i.model_worker_id), i.category ? I18n.tOr(`icat.${i.category}`, i.category) : null,
    t("form.issue_raised_on", { d: i.raised_on || "" }), I18n.tOr(`istate.${i.state}`, i.state)].filter(Boolean).join(" · ");
  const visitLabel = (v) => `${workerName(v.model_worker_id)} · ${v.visited_on} · ${regionName(v.county_code || v.region_code)}`;

  // A picker's options, by source. `only` narrows them to what the command can act on (an
  // unpaired model worker in hardship for a pairing, a free director); the server still decides.
  const OPEN_ISSUE = ["raised", "acknowledged", "escalated", "reopened"];
  const SOURCES = {
    worker: async (f) => (await lists.workers(f.query || {})).filter((w) => !f.living || !w.died_on)
      .filter((w) => !f.only || f.only(w))
      .map((w) => { S.workers.set(w.model_worker_id, shownText(w.name)); return [w.model_worker_id, () => `${shownText(w.name)} · ${regionName(w.county_code)}`]; }),
    director: async (f) => (await lists.directors()).filter((d) => !f.only || f.only(d))
      .filter((d) => !(d.name && d.name.erased))
      .map((d) => { S.directors.set(d.director_id, shownText(d.name)); return [d.director_id, () => `${shownText(d.name)} · ${I18n.tOr(`enum.drole.${d.role}`, d.role)}`]; }),
    pairing: async (f) => (await lists.pairings(f.ended)).filter((p) => !f.only || f.only(p))
      .map((p) => [p.pairing_id, () => `${shownText(p.model_worker_name)} — ${shownText(p.director_name)} · ${p.effective_from}`]),
    visit: async (f = {}) => (await lists.visits()).filter((v) => !f.only || f.only(v)).map((v) => [v.visit_id, () => visitLabel(v)]),
    issue: async (f) => (await lists.issues()).filter((i) => !f.states || f.states.includes(i.state)).map((i) => [i.issue_id, () => issueLabel(i)]),
    body: async () => (await lists.bodies()).map((b) => [b.body_id, () => `${b.name} · ${I18n.tOr(`enum.bodykind.${b.kind}`, b.kind)}`]),
  };

  // ----- the forms described as fields -----
  // p: API path; k: kind (pick, enum, multi, date, text, area, region, int, bool); req: required;
  // pi: personal (sealed under the person's key); src/e: the picker's source or the enum;
  // gen: an id the page makes for a new record; def: a date's default, "today" (the as-of date
  // when one is set) or a number of days after it (a due date).
  const W = (o = {}) => ({ p: "model_worker_id", k: "pick", src: "worker", req: true, living: true, ...o });
  const ISSUE = (states) => ({ p: "issue_id", k: "pick", src: "issue", req: true, states });
  const ON = { p: "on", k: "date", def: "today" };
  const SPECS = {
    RegisterModelWorker: { gen: "model_worker_id", fields: [
      { p: "name", k: "text", req: true, pi: true }, { p: "honour", k: "enum", e: "honour", req: true },
      { p: "honour_year", k: "int" }, { p: "occupation", k: "text" }, { p: "region_code", k: "region", req: true },
      { p: "gender", k: "text", pi: true }, { p: "birth_year", k: "text", pi: true }, { p: "phone", k: "text", pi: true, tel: true },
      { p: "wechat", k: "text", pi: true }, { p: "id_number", k: "text", pi: true }, { p: "address", k: "area", pi: true }] },
    AssessHardship: { fields: [W(), { p: "tier", k: "enum", e: "tier", req: true }, { p: "causes", k: "multi", e: "cause", req: true },
      { p: "assessed_on", k: "date", def: "today" }, { p: "note", k: "area", pi: true }] },
    ExitHardship: { fields: [W({ query: { in_hardship: "true" }, living: false }), { p: "exited_on", k: "date", def: "today" }, { p: "reason", k: "area", pi: true }] },
    RecordRelocation: { fields: [W(), { p: "region_code", k: "region", req: true }, { p: "moved_on", k: "date", def: "today" }, { p: "address", k: "area", pi: true }] },
    RecordDeath: { fields: [W(), { p: "died_on", k: "date", req: true, def: "today" }] },
    AppointDirector: { gen: "director_id", fields: [
      { p: "director_id", k: "pick", src: "director", only: (d) => !!d.term_ended_on, empty: "form.new_director" },
      { p: "name", k: "text", req: true, pi: true }, { p: "role", k: "enum", e: "drole", req: true, value: "standing_director" },
      { p: "body_id", k: "pick", src: "body", req: true }, { p: "term.from", k: "date", req: true, def: "today" }, { p: "term.until", k: "date" },
      { p: "phone", k: "text", pi: true, tel: true }, { p: "wechat", k: "text", pi: true },
      { p: "model_worker_id", k: "pick", src: "worker", empty: "form.none" }] },
    EndDirectorTerm: { fields: [{ p: "director_id", k: "pick", src: "director", req: true, only: (d) => !d.term_ended_on }, { p: "ended_on", k: "date", def: "today" }] },
    RegisterBody: { gen: "body_id", fields: [{ p: "name", k: "text", req: true }, { p: "kind", k: "enum", e: "bodykind", req: true }, { p: "region_code", k: "region" }] },
    AssignPair: { gen: "pairing_id", fields: [
      W({ query: { paired: "false", in_hardship: "true" } }),
      { p: "director_id", k: "pick", src: "director", req: true, only: (d) => !d.pairing_id && !d.term_ended_on },
      { p: "effective_from", k: "date", req: true, def: "today" },
      { p: "visit_policy.max_days_between_visits", k: "int" }, { p: "visit_policy.due_soon_window_days", k: "int" }] },
    EndPair: { fields: [{ p: "pairing_id", k: "pick", src: "pairing", req: true }, { p: "reason", k: "enum", e: "endreason", req: true },
      { p: "ended_on", k: "date", def: "today" }, { p: "note", k: "area", pi: true }] },
    VoidVisit: { fields: [{ p: "visit_id", k: "pick", src: "visit", req: true, shows: "visit" }, { p: "reason", k: "area", req: true, pi: true }] },
    RecordContact: { gen: "contact_id", fields: [{ p: "pairing_id", k: "pick", src: "pairing", req: true, ctx: "pairing" },
      { p: "on", k: "date", req: true, def: "today" }, { p: "channel", k: "enum", e: "contchan", req: true }, { p: "note", k: "area", pi: true }] },
    RaiseIssue: { gen: "issue_id", fields: [W({ ctx: "worker" }), { p: "category", k: "enum", e: "icat", req: true },
      { p: "urgency", k: "enum", e: "urg", req: true, value: "normal" }, ON,
      { p: "visit_id", k: "pick", src: "visit", empty: "form.none" }, { p: "description", k: "area", req: true, pi: true }] },
    ResolveOnSpot: { fields: [ISSUE(["raised"]), ON, { p: "summary", k: "area", req: true, pi: true }] },
    AcknowledgeIssue: { fields: [ISSUE(["raised", "reopened"]), { p: "owner", k: "pick", src: "director", req: true, only: (d) => !d.term_ended_on },
      ON, { p: "respond_by", k: "date", req: true, def: 15 }] },
    EscalateIssue: { fields: [ISSUE(["acknowledged", "escalated", "reopened"]), { p: "to_body", k: "pick", src: "body", req: true },
      { p: "channel", k: "enum", e: "escchan", req: true }, ON, { p: "due_by", k: "date", req: true, def: 30 }] },
    RecordBodyResponse: { fields: [ISSUE(["escalated"]), { p: "body_id", k: "pick", src: "body", req: true, fromIssue: "escalated_to" },
      { p: "response", k: "enum", e: "bodyresp", req: true }, { p: "redirected_to", k: "pick", src: "body", empty: "form.none" },
      { p: "due_by", k: "date" }, ON, { p: "note", k: "area", pi: true }] },
    NoteIssueProgress: { fields: [ISSUE(OPEN_ISSUE.concat(["resolved", "confirmed"])), ON, { p: "note", k: "area", req: true, pi: true }] },
    ResolveIssue: { fields: [ISSUE(["acknowledged", "escalated", "reopened"]), { p: "outcome", k: "enum", e: "out", req: true },
      { p: "resolved_by", k: "pick", src: "body", empty: "form.none" }, ON, { p: "summary", k: "area", req: true, pi: true }] },
    ConfirmResolution: { fields: [ISSUE(["resolved"]), { p: "via", k: "enum", e: "via", req: true }, { p: "satisfaction", k: "enum", e: "satisfaction", req: true }, ON] },
    CloseIssue: { fields: [ISSUE(["resolved", "confirmed"]), ON, { p: "override_reason", k: "area", pi: true }] },
    ReopenIssue: { fields: [ISSUE(["resolved", "confirmed", "closed"]), ON, { p: "reason", k: "area", req: true, pi: true }] },
  };
  const labelKey = (name, p) => (I18n.tOr(`ff.${name}.${p}`, null) !== null ? `ff.${name}.${p}` : `ff.${p}`);

  // The commands the server lets this token send, in the page's order.
  const myCommands = () => FORM_COMMANDS.filter((c) => (S.me?.commands || []).includes(c));

  async function renderRecord(r) {
    const cmds = myCommands();
    const name = cmds.includes(r.arg) ? r.arg : cmds[0];
    const ctx = { worker: r.params.get("worker") || "", pairing: r.params.get("pairing") || "", issue: r.params.get("issue") || "", visit: r.params.get("visit") || "" };
    const query = r.params.toString();
    const tabs = [];
    for (const c of cmds) {
      if (FORM_GROUPS[c]) tabs.push(h("span", { class: "tab-group", "data-i18n": `form.group.${FORM_GROUPS[c]}` }, t(`form.group.${FORM_GROUPS[c]}`)));
      tabs.push(h("a", { href: `#/record/${c}${query ? `?${query}` : ""}`, role: "tab", "aria-selected": c === name ? "true" : "false", class: "tab", dataset: { command: c }, "data-i18n": `cmd.${c}` }, t(`cmd.${c}`)));
    }
    fill($("#record-tabs"), tabs);
    const holder = $("#record-forms");
    if (!name) { fill(holder, h("p", { class: "muted" }, t("form.no_commands"))); return; }
    loading(holder);
    const form = await buildForm(name, ctx);
    fill(holder, h("div", { id: "record-result", role: "status" }), form);
    const first = form.querySelector("input, select, textarea");
    if (first) first.focus();
  }

  function defaultDate() { return S.asOf && S.asOf < todayShanghai() ? S.asOf : todayShanghai(); }
  // A calendar date `n` days after `d` (both YYYY-MM-DD), computed in UTC so no time zone or
  // daylight-saving change moves it.
  function plusDays(d, n) {
    const x = new Date(`${d}T00:00:00Z`);
    x.setUTCDate(x.getUTCDate() + n);
    return x.toISOString().slice(0, 10);
  }

  // Builds the control of one described field and how to read it back.
  async function specField(name, f, ctx) {
    const lk = labelKey(name, f.p);
    let control, read;
    if (f.k === "pick") {
      const options = await SOURCES[f.src](f);
      const preset = f.ctx ? ctx[f.ctx] : f.src === "issue" ? ctx.issue : f.src === "visit" ? ctx.visit : f.src === "worker" ? ctx.worker : "";
      control = select(options, "", { empty: f.empty || "form.choose", value: options.some(([v]) => v === preset) ? preset : "" });
      read = () => control.value || null;
    } else if (f.k === "enum") {
      control = select(ENUMS[f.e], enumPrefix(f.e), { empty: f.value ? null : "form.choose", value: f.value });
      read = () => control.value || null;
    } else if (f.k === "multi") {
      const id = `f${++fieldSeq}`;
      const boxes = ENUMS[f.e].map((v) => h("label", { class: "check" }, h("input", { type: "checkbox", value: v, name: f.p }), " ", h("span", { "data-i18n": `${enumPrefix(f.e)}.${v}` }, t(`${enumPrefix(f.e)}.${v}`))));
      const fs = h("fieldset", { class: "field checks wide", dataset: { path: f.p }, id, "aria-describedby": `${id}-err` },
        h("legend", {}, h("span", { "data-i18n": lk }, t(lk)), f.req ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null), ...boxes,
        h("p", { class: "error", id: `${id}-err`, hidden: true }));
      return { el: fs, read: () => boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value) };
    } else if (f.k === "date") {
      control = input({ type: "date", value: f.def === "today" ? defaultDate() : typeof f.def === "number" ? plusDays(defaultDate(), f.def) : "" });
      read = () => control.value || null;
    } else if (f.k === "area") {
      control = h("textarea", { rows: "2", maxlength: "2000" });
      read = () => control.value.trim() || (f.req ? "" : null);
    } else if (f.k === "region") {
      control = input({ type: "text", inputmode: "numeric", maxlength: "6", pattern: "33[0-9]{4}", autocomplete: "off" });
      read = () => control.value.trim() || null;
    } else if (f.k === "int") {
      control = input({ type: "text", inputmode: "numeric", maxlength: "9", autocomplete: "off" });
      read = () => {
        const v = control.value.trim();
        if (!v) return null;
        if (!/^\d{1,9}$/.test(v)) throw localError(f.p, "err.integer");
        return Number(v);
      };
    } else {
      control = input({ type: f.tel ? "tel" : "text", maxlength: "500", autocomplete: "off" });
      read = () => control.value.trim() || (f.req ? "" : null);
    }
    const el = field(f.p, lk, control, { required: f.req, personal: f.pi, class: f.k === "area" ? "wide" : "" });
    return { el, read, control };
  }

  // A refusal the page finds before sending (a malformed amount): shown like the server's.
  function localError(path, key) { const e = new Error(key); e.local = { field: path, key }; return e; }

  // Sets `value` at a dotted path (`term.from`) in `obj`.
  function setPath(obj, path, value) {
    const parts = path.split(".");
    let o = obj;
    for (const k of parts.slice(0, -1)) o = o[k] = o[k] || {};
    o[parts[parts.length - 1]] = value;
  }
  // Drops objects left empty by optional fields (`visit_policy` with neither number).
  function pruneEmpty(o) {
    for (const [k, v] of Object.entries(o)) {
      if (v && typeof v === "object" && !Array.isArray(v)) { pruneEmpty(v); if (Object.values(v).every((x) => x === null)) o[k] = null; }
    }
    return o;
  }

  async function buildSpecForm(name, ctx, form, body) {
    const spec = SPECS[name];
    const built = [];
    for (const f of spec.fields) {
      const b = await specField(name, f, ctx);
      built.push([f, b]);
      body.append(b.el);
    }
    // A visit's current values, shown before it is voided.
    const shows = built.find(([f]) => f.shows === "visit");
    if (shows) {
      const panel = h("div", { class: "current wide", id: "visit-current" });
      body.insertBefore(panel, shows[1].el.nextSibling);
      const update = () => showVisit(shows[1].control.value, panel);
      shows[1].control.addEventListener("change", update);
      update();
    }
    // A body response defaults to the body the issue was escalated to.
    const fromIssue = built.find(([f]) => f.fromIssue);
    const issuePick = built.find(([f]) => f.src === "issue");
    if (fromIssue && issuePick) {
      const sync = async () => {
        form.dataset.pending = "1";
        try {
          const i = (await lists.issues()).find((x) => x.issue_id === issuePick[1].control.value);
          if (i && i[fromIssue[0].fromIssue]) fromIssue[1].control.value = i[fromIssue[0].fromIssue];
        } finally {
          delete form.dataset.pending;
        }
      };
      issuePick[1].control.addEventListener("change", sync);
      if (issuePick[1].control.value) await sync();
    }
    return () => {
      const out = {};
      if (spec.gen) out[spec.gen] = form.newId(spec.gen);
      for (const [f, b] of built) {
        const v = b.read();
        // Re-appointing picks the director's id; a new director gets a fresh one.
        if (f.p === spec.gen && v === null) continue;
        setPath(out, f.p, v);
      }
      return pruneEmpty(out);
    };
  }

  // What a visit holds now: its recording with every correction applied, read from its stream
  // (administrators, and a director for the visits about their pairing). Where the stream is
  // not theirs to read (404), the visits list's row is what can be shown.
  async function currentVisit(id) {
    if (role() === "admin" || role() === "director") {
      let s;
      try {
        s = await api(`/api/v1/streams/visit-${encodeURIComponent(id)}`);
      } catch (e) {
        if (role() === "admin" || e.status !== 404) throw e;
      }
      if (s) return foldVisit(s);
    }
    const row = (await lists.visits()).find((x) => x.visit_id === id);
    return row && { full: false, ...row };
  }
  function foldVisit(s) {
    let v = null;
    for (const e of s.events) {
      if (e.event_type === "VisitRecorded") v = { ...e.data, corrections: 0 };
      else if (e.event_type === "VisitCorrected" && v) { Object.assign(v, stripNulls(e.data.changes || {})); v.corrections++; }
      else if (e.event_type === "VisitVoided" && v) v.voided = true;
    }
    return v && { full: true, ...v };
  }

  // Who went, as names and roles (a named official's name is personal: shown or withheld).
  function participantsText(list) {
    return list.map((p) => {
      const who = p.who || {};
      const name = who.kind === "director" ? directorName(who.director_id) : who.kind === "named" ? shownText(who.name) : t("form.unnamed");
      const roleText = p.role === "lead" ? t("fld.lead") : I18n.tOr(`prole.${p.role}`, p.role);
      const what = `${roleText}${p.office ? ` · ${p.office}` : ""}`;
      return I18n.lang === "en" ? `${name} (${what})` : `${name}（${what}）`;
    }).join(I18n.lang === "en" ? "; " : "、") || "—";
  }

  async function showVisit(id, panel) {
    if (!id) { fill(panel); return null; }
    loading(panel);
    const v = await currentVisit(id);
    if (!v) { fill(panel); return null; }
    const kv = (k, val) => [h("dt", { "data-i18n": k }, t(k)), h("dd", {}, val)];
    const gifts = v.full
      ? (v.gifts || []).map((g) => `${t(`gift.${g.kind}`)}${g.amount_fen !== undefined && g.amount_fen !== null ? ` ${fenToYuan(g.amount_fen)}` : ""}${g.description ? ` (${g.description})` : ""}`).join("、") || "—"
      : `${fenToYuan(v.cash_fen)} · ${t("gift.goods")} ${v.goods_count} · ${t("gift.flowers")} ${v.flowers_count}`;
    fill(panel, h("h3", { "data-i18n": "form.current" }, t("form.current")), h("dl", { class: "kv", id: "visit-current-values" },
      kv("fld.visited_on", v.visited_on), kv("fld.region_code", `${v.region_code} ${regionName(v.region_code) !== v.region_code ? regionName(v.region_code) : ""}`),
      v.full ? kv("fld.place", shown(v.place)) : null,
      v.full ? kv("fld.participants", participantsText(v.participants || [])) : null, kv("fld.gifts", gifts),
      v.full ? kv("fld.findings_health", shown(v.findings?.health)) : null, v.full ? kv("fld.findings_living", shown(v.findings?.living)) : null,
      v.full ? kv("fld.findings_family", shown(v.findings?.family)) : null,
      kv("fld.medical_advice_given", (v.full ? v.medical_advice_given : v.medical_advice) ? t("yes") : t("no")),
      v.full ? kv("fld.contacts", [v.contact_exchanged?.phone ? t("fld.contact_phone") : null, v.contact_exchanged?.wechat ? t("fld.contact_wechat") : null].filter(Boolean).join("、") || "—") : null,
      v.full ? kv("fld.benefit_checks", (v.benefit_checks || []).map((b) => `${b.benefit}：${t(`enum.bstatus.${b.status}`)}`).join("、") || "—") : null,
      kv("form.corrections", String(v.corrections))));
    return v;
  }

  // Gift rows shared by the visit form and its correction: kind, amount in yuan, description.
  function giftRows(prefix, initial = []) {
    const rows = h("div", { class: "gift-rows" });
    const renumber = () => [...rows.children].forEach((row, i) => row.querySelectorAll("[data-sub]").forEach((f) => { f.dataset.path = `${prefix}[${i}].${f.dataset.sub}`; }));
    const sub = (el, s) => { el.dataset.sub = s; return el; };
    const add = (g = {}) => {
      const row = h("div", { class: "row" },
        sub(field("", "fld.kind", select(ENUMS.gift, "gift", { value: g.kind })), "kind"),
        sub(field("", "fld.amount", input({ type: "text", inputmode: "decimal", autocomplete: "off", value: g.amount_fen !== undefined && g.amount_fen !== null ? fenToYuan(g.amount_fen) : "" })), "amount_fen"),
        sub(field("", "fld.description", input({ type: "text", maxlength: "500", value: g.description || "" })), "description"),
        h("button", { type: "button", class: "link remove", "data-i18n": "form.remove", onclick: () => { row.remove(); renumber(); } }, t("form.remove")));
      rows.append(row); renumber();
    };
    initial.forEach(add);
    const read = () => [...rows.children].map((row, i) => {
      const val = (s) => row.querySelector(`[data-sub="${s}"] input, [data-sub="${s}"] select`).value.trim();
      const amount = val("amount_fen");
      const fen = amount === "" ? null : yuanToFen(amount);
      if (amount !== "" && fen === null) throw localError(`${prefix}[${i}].amount_fen`, "err.yuan");
      return { kind: val("kind"), amount_fen: fen, description: val("description") || null };
    });
    return { rows, add, read };
  }

  // The participants after the lead (rows 1..n of `prefix`): a director picked by name, a named
  // person (a union official, say: their name is personal, sealed under a person id of its
  // own, drawn once for the row, which erasure later names), or someone recorded only by role.
  // Each row may say which body the person came from. A named person whose name this reader
  // cannot open is kept as recorded (`keep`), since the name cannot be sent back.
  function participantRows(prefix, dirs, lead, bodies, initial = []) {
    const rows = h("div", { class: "participant-rows" });
    const renumber = () => [...rows.children].forEach((row, i) => row.querySelectorAll("[data-sub]").forEach((f) => { f.dataset.path = `${prefix}[${i + 1}].${f.dataset.sub}`; }));
    const sub = (el, k) => { el.dataset.sub = k; return el; };
    const add = (p = { who: { kind: "director" }, role: "companion" }) => {
      const remove = h("button", { type: "button", class: "link remove", "data-i18n": "form.remove", onclick: () => { row.remove(); renumber(); } }, t("form.remove"));
      const row = h("div", { class: "row participant" });
      if (p.who.kind === "named" && typeof p.who.name !== "string") {
        row.append(sub(h("div", { class: "field" }, h("span", {}, participantsText([p])), h("p", { class: "error", hidden: true })), "who"), remove);
        row.value = () => ({ ...p });
      } else {
        const kind = select(["director", "named", "unnamed"], "enum.pkind", { value: p.who.kind });
        const who = select(dirs.filter(([id]) => id !== lead.value), "", { empty: "form.choose", value: p.who.director_id });
        const name = input({ type: "text", maxlength: "100", value: p.who.kind === "named" ? p.who.name : "", autocomplete: "off" });
        const personId = p.who.person_id || uuid();
        const roleSel = select(ENUMS.prole, "prole", { value: p.role });
        const office = input({ type: "text", maxlength: "500", value: p.office || "" });
        const body = select(bodies, "", { empty: "form.none", value: p.body_id });
        const whoField = sub(field("", "fld.director", who), "who.director_id");
        const nameField = sub(field("", "fld.official_name", name, { personal: true }), "who.name");
        const bodyField = sub(field("", "fld.body", body), "body_id");
        bodyField.hidden = !bodies.length && !p.body_id;
        const sync = () => { whoField.hidden = kind.value !== "director"; nameField.hidden = kind.value !== "named"; };
        kind.addEventListener("change", () => {
          sync();
          if (kind.value === "named" && roleSel.value === "companion") roleSel.value = "union_official";
        });
        sync();
        row.append(sub(field("", "fld.participant_kind", kind), "who"), whoField, nameField, sub(field("", "fld.role", roleSel), "role"),
          sub(field("", "fld.office", office), "office"), bodyField, remove);
        row.value = () => {
          const w = kind.value === "director" ? { kind: "director", director_id: who.value || null }
            : kind.value === "named" ? { kind: "named", person_id: personId, name: name.value.trim() } : { kind: "unnamed" };
          return { who: w, role: roleSel.value, office: office.value.trim() || null, body_id: body.value || null };
        };
      }
      rows.append(row); renumber();
    };
    initial.forEach(add);
    return { rows, add, read: () => [...rows.children].map((r) => r.value()) };
  }

  // Benefit checks (a benefit's name, e.g. 劳模待遇, and what was found), rows of `prefix`.
  function benefitRows(prefix, initial = []) {
    const rows = h("div", { class: "benefit-rows" });
    const renumber = () => [...rows.children].forEach((row, i) => row.querySelectorAll("[data-sub]").forEach((f) => { f.dataset.path = `${prefix}[${i}].${f.dataset.sub}`; }));
    const sub = (el, k) => { el.dataset.sub = k; return el; };
    const add = (b = {}) => {
      const benefit = input({ type: "text", maxlength: "200", value: b.benefit || "", list: "benefit-names" });
      const status = select(ENUMS.bstatus, "enum.bstatus", { value: b.status || "implemented" });
      const row = h("div", { class: "row" }, sub(field("", "fld.benefit", benefit), "benefit"), sub(field("", "fld.benefit_status", status), "status"),
        h("button", { type: "button", class: "link remove", "data-i18n": "form.remove", onclick: () => { row.remove(); renumber(); } }, t("form.remove")));
      row.value = () => ({ benefit: benefit.value.trim(), status: status.value });
      rows.append(row); renumber();
    };
    initial.forEach(add);
    const el = h("fieldset", { class: "rows wide", dataset: { rows: prefix } }, h("legend", { "data-i18n": "fld.benefit_checks" }, t("fld.benefit_checks")), rows,
      h("datalist", { id: "benefit-names" }, BENEFITS.map((n) => h("option", { value: n }))),
      h("button", { type: "button", class: "link add-benefit", "data-i18n": "form.add_benefit", onclick: () => add() }, t("form.add_benefit")));
    return { el, rows, add, read: () => [...rows.children].map((r) => r.value()) };
  }
  // Benefits a visit commonly checks (offered, not imposed: any name may be typed).
  const BENEFITS = ["劳模待遇", "劳模津贴", "医疗补助", "困难帮扶金", "疗休养"];

  async function buildVisitForm(ctx, form, body) {
    const pairings = (await lists.pairings()).filter((p) => !p.ended_on);
    const byWorker = new Map(pairings.map((p) => [p.model_worker_id, p]));
    // Every living model worker (an administrator may record an ad-hoc visit to an unpaired
    // one); a director's list holds their own.
    const all = (await lists.workers()).filter((x) => !x.died_on);
    const county = new Map(all.map((x) => [x.model_worker_id, x.county_code]));
    const workers = all.map((x) => {
      const p = byWorker.get(x.model_worker_id);
      return [x.model_worker_id, () => (p ? `${shownText(x.name)} — ${shownText(p.director_name)}` : `${shownText(x.name)} · ${t("form.unpaired")}`)];
    });
    if (ctx.worker && !county.has(ctx.worker)) workers.unshift([ctx.worker, S.workers.get(ctx.worker) || ctx.worker]);
    const w = select(workers, "", { empty: "form.choose", value: ctx.worker });
    const region = input({ type: "text", inputmode: "numeric", maxlength: "6", pattern: "33[0-9]{4}" });
    const dirs = [...S.directors].map(([id, n]) => [id, n]);
    if (role() === "director" && S.me.director_id) dirs.splice(0, dirs.length, [S.me.director_id, S.directors.get(S.me.director_id) || S.me.name]);
    const lead = select(dirs, "", { empty: "form.choose" });
    // Without an active pairing the visit is ad hoc and needs its reason.
    const adhoc = h("textarea", { rows: "2", maxlength: "2000" });
    const adhocField = field("adhoc_reason", "ff.adhoc_reason", adhoc, { personal: true, class: "wide" });
    const sync = () => {
      const p = byWorker.get(w.value);
      if (p) { region.value = p.county_code || p.city_code || ""; lead.value = p.director_id; }
      else if (county.has(w.value)) region.value = county.get(w.value);
      adhocField.hidden = !!p || !w.value;
    };
    w.addEventListener("change", sync);
    const date = input({ type: "date", value: defaultDate() });
    const place = input({ type: "text", maxlength: "500" });
    const gifts = h("fieldset", { class: "rows" }, h("legend", { "data-i18n": "fld.gifts" }, t("fld.gifts")));
    const parts = h("fieldset", { class: "rows wide" }, h("legend", { "data-i18n": "fld.participants" }, t("fld.participants")));
    const g = giftRows("gifts");
    const pr = participantRows("participants", dirs, lead, await SOURCES.body());
    const benefits = benefitRows("benefit_checks");
    gifts.append(g.rows, h("button", { type: "button", class: "link", id: "add-gift", "data-i18n": "form.add_gift", onclick: () => g.add() }, t("form.add_gift")));
    parts.append(pr.rows, h("button", { type: "button", class: "link", id: "add-participant", "data-i18n": "form.add_participant", onclick: () => pr.add() }, t("form.add_participant")));
    const findings = ["health", "living", "family"].map((k) => field(`findings.${k}`, `fld.findings_${k}`, h("textarea", { rows: "2" }), { personal: true }));
    body.append(
      field("model_worker_id", "fld.model_worker_id", w, { required: true }),
      adhocField,
      field("visited_on", "fld.visited_on", date, { required: true }),
      field("region_code", "fld.region_code", region, { required: true }),
      field("place", "fld.place", place, { personal: true }),
      field("participants[0].who.director_id", "fld.lead", lead, { required: true }),
      parts, gifts, ...findings, benefits.el,
      check("medical_advice_given", "fld.medical_advice_given"),
      check("contact_exchanged.phone", "fld.contact_phone"),
      check("contact_exchanged.wechat", "fld.contact_wechat"));
    g.add();
    sync();
    return () => {
      const p = byWorker.get(w.value);
      const participants = [{ who: { kind: "director", director_id: lead.value || null }, role: "lead" }, ...pr.read()];
      const text = (path) => form.querySelector(`[data-path="${path}"] textarea`).value.trim() || null;
      const checked = (path) => form.querySelector(`[data-path="${path}"] input`).checked;
      return {
        visit_id: form.newId("visit_id"),
        model_worker_id: w.value || null,
        pairing_id: adhocField.hidden ? (ctx.pairing && ctx.worker === w.value ? ctx.pairing : p ? p.pairing_id : null) : null,
        adhoc_reason: adhocField.hidden ? null : adhoc.value.trim() || null,
        visited_on: date.value || null,
        region_code: region.value.trim(),
        place: place.value.trim() || null,
        participants,
        gifts: g.read(),
        findings: { health: text("findings.health"), living: text("findings.living"), family: text("findings.family") },
        medical_advice_given: checked("medical_advice_given"),
        contact_exchanged: { phone: checked("contact_exchanged.phone"), wechat: checked("contact_exchanged.wechat") },
        benefit_checks: benefits.read(),
      };
    };
  }

  // A correction shows the visit as it stands, offers its values for editing and sends only
  // what was changed (a list is replaced whole, so a changed gift sends every gift).
  async function buildCorrectionForm(ctx, form, body) {
    const options = await SOURCES.visit({});
    const pick = select(options, "", { empty: "form.choose", value: options.some(([v]) => v === ctx.visit) ? ctx.visit : "" });
    const panel = h("div", { class: "current wide", id: "visit-current" });
    const edits = h("div", { class: "form-grid wide", id: "visit-edits" });
    const reason = h("textarea", { rows: "2", maxlength: "2000" });
    body.append(field("visit_id", "fld.visit_id", pick, { required: true, class: "wide" }), panel, edits,
      field("reason", "ff.CorrectVisit.reason", reason, { required: true, personal: true, class: "wide" }));
    let current = null, read = () => ({});
    const load = async () => {
      current = await showVisit(pick.value, panel);
      fill(edits);
      if (!current) { read = () => ({}); return; }
      const date = input({ type: "date", value: current.visited_on });
      const region = input({ type: "text", inputmode: "numeric", maxlength: "6", value: current.region_code });
      edits.append(field("changes.visited_on", "fld.visited_on", date), field("changes.region_code", "fld.region_code", region));
      if (!current.full) { read = () => ({ visited_on: date.value !== current.visited_on ? date.value || null : null, region_code: region.value.trim() !== current.region_code ? region.value.trim() : null }); return; }
      const plain = (v) => (typeof v === "string" ? v : "");
      const place = input({ type: "text", maxlength: "500", value: plain(current.place) });
      const advice = h("input", { type: "checkbox" }); advice.checked = !!current.medical_advice_given;
      const fnd = ["health", "living", "family"].map((k) => [k, h("textarea", { rows: "2" }, plain(current.findings?.[k]))]);
      const g = giftRows("changes.gifts", current.gifts || []);
      const gifts = h("fieldset", { class: "rows wide" }, h("legend", { "data-i18n": "fld.gifts" }, t("fld.gifts")), g.rows,
        h("button", { type: "button", class: "link", "data-i18n": "form.add_gift", onclick: () => g.add() }, t("form.add_gift")));
      edits.append(field("changes.place", "fld.place", place, { personal: true }),
        h("div", { class: "field check", dataset: { path: "changes.medical_advice_given" } }, h("label", {}, advice, " ", h("span", { "data-i18n": "fld.medical_advice_given" }, t("fld.medical_advice_given")))),
        gifts, ...fnd.map(([k, c]) => field(`changes.findings.${k}`, `fld.findings_${k}`, c, { personal: true })));
      const phone = h("input", { type: "checkbox" }); phone.checked = !!current.contact_exchanged?.phone;
      const wechat = h("input", { type: "checkbox" }); wechat.checked = !!current.contact_exchanged?.wechat;
      const box = (path, el, k) => h("div", { class: "field check", dataset: { path } }, h("label", {}, el, " ", h("span", { "data-i18n": k }, t(k))));
      edits.append(box("changes.contact_exchanged.phone", phone, "fld.contact_phone"), box("changes.contact_exchanged.wechat", wechat, "fld.contact_wechat"));
      const benefits = benefitRows("changes.benefit_checks", current.benefit_checks || []);
      edits.append(benefits.el);
      const parts = participantEditor(current.participants || [], await SOURCES.body());
      edits.append(parts.el);
      const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
      read = () => {
        const out = {};
        if (date.value !== current.visited_on) out.visited_on = date.value || null;
        if (region.value.trim() !== current.region_code) out.region_code = region.value.trim();
        if (place.value.trim() !== plain(current.place)) out.place = place.value.trim();
        if (advice.checked !== !!current.medical_advice_given) out.medical_advice_given = advice.checked;
        const giftsNow = stripNulls(g.read());
        if (!same(giftsNow, stripNulls(current.gifts || []))) out.gifts = giftsNow;
        const f = Object.fromEntries(fnd.map(([k, c]) => [k, c.value.trim() || null]));
        if (fnd.some(([k, c]) => c.value.trim() !== plain(current.findings?.[k]))) out.findings = f;
        if (phone.checked !== !!current.contact_exchanged?.phone || wechat.checked !== !!current.contact_exchanged?.wechat) out.contact_exchanged = { phone: phone.checked, wechat: wechat.checked };
        const checks = benefits.read();
        if (!same(checks, current.benefit_checks || [])) out.benefit_checks = checks;
        const list = parts.read(); if (list) out.participants = list;
        return out;
      };
    };
    pick.addEventListener("change", load);
    await load();
    return () => ({ visit_id: pick.value || null, reason: reason.value.trim(), changes: read() });
  }

  // The participants of a visit being corrected: the lead and the others, prefilled. The list
  // is replaced whole, so it is sent only when it changed. A named person whose name this
  // reader cannot open (withheld or erased) stays as recorded: the row is kept, not editable.
  function participantEditor(current, bodies) {
    const key = (p) => JSON.stringify([p.who?.kind, p.who?.director_id || p.who?.person_id || null, typeof p.who?.name === "string" ? p.who.name : null, p.role, p.office || null, p.body_id || null]);
    const before = current.map(key).join("|");
    const dirs = [...S.directors];
    const leadNow = current.find((p) => p.role === "lead");
    const lead = select(dirs, "", { empty: "form.choose", value: leadNow?.who?.director_id });
    const pr = participantRows("changes.participants", dirs, lead, bodies, current.filter((p) => p.role !== "lead"));
    const el = h("fieldset", { class: "rows wide" }, h("legend", { "data-i18n": "fld.participants" }, t("fld.participants")),
      field("changes.participants[0].who.director_id", "fld.lead", lead, { required: true }), pr.rows,
      h("button", { type: "button", class: "link", id: "correct-add-participant", "data-i18n": "form.add_participant", onclick: () => pr.add() }, t("form.add_participant")));
    const read = () => {
      const list = [{ who: { kind: "director", director_id: lead.value || null }, role: "lead" }, ...pr.read()];
      return list.map(key).join("|") === before ? null : stripNulls(list);
    };
    return { el, read };
  }

  // Erasure names the person and the legal basis and asks once more before it is sent; the
  // answer then shows what was destroyed (`erasureReport`).
  const NAMED = "named";
  async function buildErasureForm(ctx, form, body) {
    const [workers, directors] = await Promise.all([SOURCES.worker({}), SOURCES.director({})]);
    const subject = h("select", {},
      h("option", { value: "", "data-i18n": "form.choose" }, t("form.choose")),
      group("form.subject.worker", "modelworker", workers.map(([v, l]) => option(v, l, { "data-kind": "modelworker" }))),
      group("form.subject.director", "director", directors.map(([v, l]) => option(v, l, { "data-kind": "director" }))),
      group("form.subject.named", "named", [h("option", { value: NAMED, "data-kind": "named", "data-i18n": "form.subject.named_pick" }, t("form.subject.named_pick"))]));
    // A named person (a union official on a visit) has no list of their own: their name lives
    // only in the visits they took part in, so they are found through one of those visits.
    const visits = await SOURCES.visit({ only: (v) => v.participants > 1 });
    const visit = select(visits, "", { empty: "form.choose" });
    const person = h("select", {}, h("option", { value: "", "data-i18n": "form.choose" }, t("form.choose")));
    const visitField = field("erase.visit", "form.erase_visit", visit, { class: "wide" });
    const personField = field("erase.person", "form.erase_person", person, { required: true, class: "wide" });
    visitField.hidden = personField.hidden = true;
    let visitStream = null;
    visit.addEventListener("change", async () => {
      fill(person, h("option", { value: "", "data-i18n": "form.choose" }, t("form.choose")));
      visitStream = visit.value ? `visit-${visit.value}` : null;
      if (!visit.value) return;
      form.dataset.pending = "1";
      try {
        const v = await currentVisit(visit.value);
        const named = new Map();
        for (const p of v?.participants || []) if (p.who?.kind === "named") named.set(p.who.person_id, p);
        for (const [id, p] of named) person.append(option(id, () => participantsText([p]), { "data-kind": "named" }));
        if (!named.size) person.append(h("option", { value: "", disabled: "", "data-i18n": "form.erase_no_named" }, t("form.erase_no_named")));
      } finally {
        delete form.dataset.pending;
      }
    });
    const basis = select(ENUMS.legal, enumPrefix("legal"), { empty: "form.choose" });
    const confirmBox = h("div", { class: "confirm wide", id: "erase-confirm", hidden: true });
    body.append(field("subject_id", "ff.subject_id", subject, { required: true }), visitField, personField, field("legal_basis", "ff.legal_basis", basis, { required: true }),
      h("p", { class: "muted wide", "data-i18n": "form.erase_help" }, t("form.erase_help")), confirmBox);
    subject.addEventListener("change", () => { visitField.hidden = personField.hidden = subject.value !== NAMED; });
    const chosen = () => (subject.value === NAMED ? person : subject);
    form.confirmed = false;
    // The first submission only asks; the second (after "erase") sends.
    form.beforeSend = (payload) => {
      if (form.confirmed || !payload.subject_id || !payload.legal_basis) return true;
      const opt = chosen().selectedOptions[0];
      fill(confirmBox, h("p", { id: "erase-question" }, t("form.erase_confirm", { n: opt.textContent, b: t(`${enumPrefix("legal")}.${payload.legal_basis}`) })),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "danger", id: "erase-yes", "data-i18n": "form.erase_yes", onclick: () => { form.confirmed = true; form.requestSubmit(); } }, t("form.erase_yes")),
          h("button", { type: "button", id: "erase-no", "data-i18n": "form.erase_no", onclick: () => { confirmBox.hidden = true; } }, t("form.erase_no"))));
      confirmBox.hidden = false;
      $("#erase-yes").focus();
      return false;
    };
    const reset = () => { form.confirmed = false; confirmBox.hidden = true; };
    subject.addEventListener("change", reset); basis.addEventListener("change", reset); person.addEventListener("change", reset);
    form.subjectInfo = () => {
      const c = chosen();
      const kind = c.selectedOptions[0]?.dataset.kind;
      // The records that held the person's data: their own stream, or the visit that named them.
      return { kind, stream: kind === "named" ? visitStream : kind ? `${kind}-${c.value}` : null, name: S.workers.get(c.value) || S.directors.get(c.value) || c.selectedOptions[0]?.textContent };
    };
    return () => ({ subject_id: chosen().value || null, legal_basis: basis.value || null });
  }

  // After an erasure: the event that recorded it, and every personal value of the person's own
  // records that now reads "erased" (their key is gone, so nothing can open them again).
  async function erasureReport(payload, res, info) {
    const ev = res.events[0];
    const page = await api(`/api/v1/streams/${encodeURIComponent(ev.stream_id)}`);
    const e = page.events.find((x) => x.position === ev.position) || page.events[page.events.length - 1];
    const destroyed = [];
    if (info.stream) {
      const own = await api(`/api/v1/streams/${encodeURIComponent(info.stream)}`);
      const walk = (v, path, type) => {
        // A named person's name sits in a visit's participant list.
        const what = /participants\.\d+\.who\.name$/.test(path) ? `${t("fld.participants")} · ${t("fld.official_name")}` : I18n.tOr(`ff.${path}`, path);
        if (v && typeof v === "object" && !Array.isArray(v) && v.erased === true) destroyed.push(`${I18n.tOr(`ev.${type}`, type)}: ${what}`);
        else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k, type);
      };
      for (const x of own.events) walk(x.data, "", x.event_type);
    }
    return h("div", { class: "card erased-report", id: "erase-report", dataset: { position: ev.position } },
      h("h3", {}, t("form.erased_title", { n: info.name || "" })),
      h("dl", { class: "kv" },
        h("dt", {}, t("form.erased_event")), h("dd", {}, `${I18n.tOr(`ev.${e.event_type}`, e.event_type)} · #${e.position}`),
        h("dt", {}, t("ff.legal_basis")), h("dd", {}, t(`${enumPrefix("legal")}.${e.data.legal_basis}`)),
        h("dt", {}, t("form.erased_on")), h("dd", {}, e.data.erased_on || e.occurred_at || "—"),
        h("dt", {}, t("form.erased_key")), h("dd", {}, t("form.erased_key_text"))),
      h("p", {}, t("form.erased_fields", { n: destroyed.length })),
      h("ul", { class: "plain", id: "erase-destroyed" }, destroyed.map((d) => h("li", {}, d))));
  }

  async function buildForm(name, ctx) {
    const form = h("form", { class: "card record", novalidate: true, dataset: { command: name }, "aria-labelledby": "record-form-title" });
    form.append(h("h2", { id: "record-form-title", "data-i18n": `cmd.${name}` }, t(`cmd.${name}`)));
    const body = h("div", { class: "form-grid" });
    form.append(body);
    const formError = h("p", { class: "error form-error", role: "alert", hidden: true });
    const ok = h("p", { class: "ok", role: "status", hidden: true });
    const submit = h("button", { type: "submit", class: name === "ErasePersonalData" ? "danger" : "primary", "data-i18n": "form.submit" }, t("form.submit"));
    form.append(formError, h("div", { class: "actions" }, submit), ok);

    // The ids a command creates (a new visit's, a new body's) are drawn once per form, not per
    // submission: a form sent again after an answer that never arrived names the same record,
    // so it cannot create a second one even when it was changed in between (the service refuses
    // it as already recorded). A fresh form (after a success) draws new ones.
    const ids = new Map();
    form.newId = (path) => {
      if (!ids.has(path)) ids.set(path, uuid());
      return ids.get(path);
    };
    let collect;
    if (name === "RecordVisit") collect = await buildVisitForm(ctx, form, body);
    else if (name === "CorrectVisit") collect = await buildCorrectionForm(ctx, form, body);
    else if (name === "ErasePersonalData") collect = await buildErasureForm(ctx, form, body);
    else collect = await buildSpecForm(name, ctx, form, body);
    if (form.querySelector(".field.personal")) body.prepend(h("p", { class: "muted wide personal-note", "data-i18n": "form.personal_note" }, t("form.personal_note")));

    // One Idempotency-Key per request: the same form sent again unchanged (after a lost answer:
    // a network error, a 5xx) is the same request under the same key, so the service replays
    // the first one's result instead of recording it twice; a changed form is a new request
    // under a new key. A double click is stopped by `busy`.
    let lastSend = null;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (form.dataset.busy) return;
      clearErrors(form); ok.hidden = true;
      let payload;
      try {
        payload = stripNulls(collect());
      } catch (e) {
        if (!e.local) throw e;
        form.problem = { code: "local", local: e.local }; form.payload = {}; showErrors(form);
        return;
      }
      if (form.beforeSend && !form.beforeSend(payload)) return;
      form.dataset.busy = "1";
      delete form.dataset.outcome;
      submit.disabled = true; submit.textContent = t("form.submitting");
      submit.prepend(h("span", { class: "spinner", "aria-hidden": "true" }));
      const info = form.subjectInfo ? form.subjectInfo() : null;
      try {
        const sent = JSON.stringify(payload);
        if (!lastSend || lastSend.sent !== sent) lastSend = { sent, key: uuid() };
        const res = await api(`/api/v1/commands/${name}`, { method: "POST", json: payload, headers: { "Idempotency-Key": lastSend.key } });
        const pos = Math.max(0, ...res.events.map((e) => e.position));
        form.problem = null;
        ok.hidden = false; ok.textContent = t("form.saved", { p: pos });
        toast(t("form.saved", { p: pos }));
        await caughtUp(pos);
        if (name === "RecordVisit" && payload.model_worker_id) { location.hash = `#/worker/${payload.model_worker_id}`; return; }
        const report = name === "ErasePersonalData" ? await erasureReport(payload, res, info) : null;
        // A fresh form (its pickers reloaded) replaces this one before the result is shown.
        const fresh = await buildForm(name, ctx);
        form.replaceWith(fresh);
        const result = $("#record-result");
        if (result) fill(result, h("p", { class: "ok", dataset: { command: name, position: pos } }, t("form.saved_cmd", { c: t(`cmd.${name}`), p: pos })), report);
      } catch (e) {
        form.dataset.outcome = "rejected";
        if (e.problem) { form.problem = e.problem; form.payload = payload; showErrors(form); } else throw e;
        form.confirmed = false;
        const box = form.querySelector("#erase-confirm"); if (box) box.hidden = true;
      } finally {
        delete form.dataset.busy;
        submit.disabled = false; submit.textContent = t("form.submit");
      }
    });
    form.relocalize = () => { I18n.apply(form); relabel(form); if (form.problem) showErrors(form); };
    enhanceRegionFields(form); // regions picked by name (see the lists section)
    return form;
  }

  // Optional fields left empty are left out, so the server applies its defaults.
  function stripNulls(o) {
    if (Array.isArray(o)) return o.map(stripNulls);
    if (o && typeof o === "object") {
      const out = {};
      for (const [k, v] of Object.entries(o)) if (v !== null) out[k] = stripNulls(v);
      return out;
    }
    return o;
  }

  function clearErrors(form) {
    for (const e of form.querySelectorAll(".field .error")) { e.hidden = true; e.textContent = ""; }
    for (const e of form.querySelectorAll("[aria-invalid]")) e.removeAttribute("aria-invalid");
    const fe = form.querySelector(".form-error"); fe.hidden = true; fe.textContent = "";
  }

  // A server message about one field, in the user's language. Validation messages come in
  // English only; the ones the page knows are translated, the rest are named generically with
  // the server's words kept in the tooltip.
  function fieldMessage(err, p = {}) {
    if (I18n.lang === "en") return err.message;
    // A refused webhook URL: the refusal's code says why.
    if (/^webhook_url_/.test(p.code || "") && err.field === "delivery.url") return I18n.tOr(`problem.${p.code}`, t("err.format"));
    const m = err.message || "";
    if (/^missing field/.test(m)) return t("err.missing");
    if (/must not be negative/.test(m)) return t("err.negative");
    if (/not a known Zhejiang division/.test(m)) return t("err.region");
    return t("err.format");
  }

  function problemText(p) {
    if (p.status === 403) return t("err.forbidden");
    return t("err.generic", { d: problemDetail(p) });
  }

  // The subscriptions view's refusals that are about one field.
  function rejectionField(p) {
    const first = (p.detail || "").split(" ")[0];
    switch (p.code) {
      case "subscription_url_invalid": case "subscription_url_credentials": return "delivery.url";
      case "subscription_subject_prefix_invalid": return "delivery.subject_prefix";
      case "subscription_name_too_long": return "name";
      case "subscription_filter_unknown": return first;
      case "subscription_filter_too_long": return "filter.types";
      case "subscription_grace_too_long": return "grace_seconds";
      case "position_after_head": return "after";
      default: return null;
    }
  }

  // Where a domain refusal belongs in `form` (`REJECTION_PLACES`), or null for the whole form.
  function rejectionPlace(p, payload, form) {
    const has = (path) => [...form.querySelectorAll("[data-path]")].some((f) => f.dataset.path === path || f.dataset.path.startsWith(`${path}[`) || f.dataset.path.startsWith(`${path}.`));
    for (const c of REJECTION_PLACES[p.code] || []) {
      // The field a refusal names itself is the first word of its English detail.
      if (c === "$field") { const f = (p.detail || "").split(" ")[0]; if (f && has(f)) return f; continue; }
      if (c === "$cash") {
        const list = payload.gifts ? "gifts" : "changes.gifts";
        const gifts = payload.gifts || payload.changes?.gifts || [];
        const i = gifts.findIndex((g) => g.kind === "cash" && g.amount_fen === undefined);
        return `${list}[${Math.max(0, i)}].amount_fen`;
      }
      if (has(c)) return c;
    }
    return null;
  }

  // A refusal in the page's words (`rej.<code>`), else the server's in the user's language.
  const rejectionText = (p) => I18n.tOr(`rej.${p.code}`, null) ?? problemDetail(p);

  function showErrors(form) {
    clearErrors(form);
    const p = form.problem;
    let errs;
    if (p.local) errs = [{ field: p.local.field, text: t(p.local.key), raw: "" }];
    else errs = (p.errors || []).map((e) => ({ field: e.field, text: fieldMessage(e, p), raw: e.message }));
    if (!errs.length && p.code in REJECTION_PLACES) {
      const f = rejectionPlace(p, form.payload || {}, form);
      if (f) errs.push({ field: f, text: rejectionText(p), raw: p.detail });
    } else if (!errs.length) {
      const f = rejectionField(p);
      if (f) errs.push({ field: f, text: problemDetail(p), raw: p.detail });
    }
    let placed = 0, firstInvalid = null;
    for (const e of errs) {
      // The exact path, else the nearest enclosing one (`participants[1].who.kind` → the row).
      let target = null;
      for (let path = e.field; path && !target; path = path.replace(/(\.[^.[\]]*|\[\d+\])$/, "")) {
        target = [...form.querySelectorAll(".field[data-path]")].find((f) => f.dataset.path === path || f.dataset.path.startsWith(`${path}.`) || f.dataset.path.startsWith(`${path}[`));
        if (path.replace(/(\.[^.[\]]*|\[\d+\])$/, "") === path) break;
      }
      if (!target) continue;
      const msg = target.querySelector(".error");
      msg.hidden = false; msg.textContent = e.text; msg.title = e.raw || "";
      const control = target.querySelector("input, select, textarea");
      if (control) { control.setAttribute("aria-invalid", "true"); firstInvalid = firstInvalid || control; }
      placed++;
    }
    const fe = form.querySelector(".form-error");
    fe.hidden = false;
    const whole = p.code in REJECTION_PLACES ? rejectionText(p) : problemText(p);
    fe.textContent = placed === errs.length && placed > 0 ? t("form.fix") : whole;
    if (firstInvalid) firstInvalid.focus();
  }

  // Waits (briefly) until the dashboards have applied log position `pos`, so the view shown
  // next includes what was just recorded.
  async function caughtUp(pos) {
    if (!["admin", "auditor"].includes(role())) { await new Promise((r) => setTimeout(r, 300)); return; }
    for (let i = 0; i < 40; i++) {
      try {
        const lag = await api("/api/v1/dashboard/projections");
        if (lag.checkpoint >= pos) return;
      } catch (_) { return; }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // ---------- audit ----------

  let auditAfter = 0;
  async function renderAudit(_r, { quiet }) {
    const cpEl = $("#audit-checkpoint");
    if (!quiet) { loading(cpEl); loading($("#audit-log")); }
    auditAfter = 0;
    renderOps();
    await Promise.all([loadCheckpoint(!quiet), loadEvents(false)]);
  }

  let checkpoint = null;
  async function loadCheckpoint(verifyNow) {
    const cpEl = $("#audit-checkpoint");
    $("#audit-verify").hidden = true;
    try {
      checkpoint = await api("/api/v1/audit/checkpoint");
    } catch (e) {
      checkpoint = null;
      fill(cpEl, h("p", { class: "muted" }, e.status === 404 ? t("audit.none") : problemText(e.problem)));
      fill($("#audit-result"));
      verdict = null;
      return;
    }
    const kv = (k, v) => [h("dt", {}, t(k)), h("dd", {}, v)];
    fill(cpEl, kv("audit.tree_size", h("span", { id: "cp-size" }, checkpoint.tree_size)), kv("audit.root", h("code", { class: "hash" }, checkpoint.root_hash)),
      kv("audit.signed_at", recorded(checkpoint.signed_at)), kv("audit.key", h("code", { class: "hash" }, checkpoint.public_key || "—")));
    $("#audit-verify").hidden = false;
    if (verifyNow) await verify();
  }

  // Checks the checkpoint's note and signature, then the inclusion proofs of the first and
  // last events and a few in between against its root, all in this browser.
  // The last verification verdict as a function of the language, so that switching language
  // re-renders it instead of leaving it in the old one.
  let verdict = null;
  function showVerdict(cls, text) { verdict = { cls, text }; renderVerdict(); }
  function renderVerdict() {
    const result = $("#audit-result");
    if (!verdict || !result) return;
    result.className = verdict.cls;
    result.textContent = verdict.text();
  }

  async function verify() {
    const cp = checkpoint;
    if (!cp) return;
    const bar = $("#audit-progress");
    const n = cp.tree_size;
    const picks = [...new Set([1, n, Math.ceil(n / 2), ...Array.from({ length: 5 }, () => 1 + Math.floor(Math.random() * n))])].filter((p) => p >= 1 && p <= n).sort((a, b) => a - b);
    bar.hidden = false; bar.max = picks.length + 1; bar.value = 0;
    // `why` is a function too: the reason is rendered in whatever language is current.
    const fail = (why) => showVerdict("verdict bad", () => t("audit.bad", { why: why() }));
    try {
      showVerdict("verdict", () => t("audit.checking", { i: 0, n: picks.length }));
      const note = await Merkle.checkNote(cp);
      bar.value = 1;
      if (!note.body) return fail(() => t("audit.bad_note"));
      if (note.signature === "bad") return fail(() => t("audit.bad_sig"));
      for (const [i, pos] of picks.entries()) {
        showVerdict("verdict", () => t("audit.checking", { i: i + 1, n: picks.length }));
        const [leaf, proof] = await Promise.all([
          api(`/api/v1/audit/leaf/${pos}`),
          api(`/api/v1/audit/proof/inclusion?position=${pos}&tree_size=${n}`),
        ]);
        const lh = await Merkle.leafHash(leaf.encoding);
        if (Merkle.hex(lh) !== proof.leaf_hash) return fail(() => t("audit.bad_proof", { p: pos }));
        const root = await Merkle.rootFromInclusion(pos - 1, n, lh, proof.proof.map(Merkle.unhex));
        if (!root || Merkle.hex(root) !== cp.root_hash) return fail(() => t("audit.bad_proof", { p: pos }));
        bar.value = i + 2;
      }
      const sig = note.signature;
      showVerdict("verdict good", () => t("audit.ok", { n: picks.length, s: sig === "ok" ? t("audit.sig_ok") : t("audit.sig_unsupported") }));
    } catch (e) {
      fail(() => (e.problem ? problemText(e.problem) : String(e)));
    } finally {
      bar.hidden = true;
    }
  }

  async function loadEvents(more) {
    const f = $("#audit-filter");
    const box = $("#audit-log");
    const res = await api(`/api/v1/events${q({ after: auditAfter, limit: 100, type: f.type.value.trim(), category: f.category.value.trim() }, false)}${S.asOfPos && mayReplay() ? `&as_of_position=${S.asOfPos}` : ""}`);
    const rows = res.events.map((e) => h("tr", { dataset: { position: e.position } },
      h("td", { class: "num" }, e.position),
      h("td", {}, I18n.tOr(`ev.${e.event_type}`, e.event_type), h("div", { class: "muted small" }, e.event_type)),
      h("td", { class: "small" }, e.stream_id),
      h("td", {}, actorName(e.metadata.actor_id, e.metadata.actor_role), h("div", { class: "muted small" }, I18n.tOr(`role.${e.metadata.actor_role}`, e.metadata.actor_role))),
      h("td", {}, e.occurred_at || "—"),
      h("td", {}, recorded(e.recorded_at))));
    let tbody = box.querySelector("tbody");
    if (!more || !tbody) {
      if (!rows.length) { fill(box, h("p", { class: "muted" }, t("audit.empty"))); $("#audit-more").hidden = true; return; }
      tbody = h("tbody", {});
      fill(box, h("div", { class: "scroll" }, h("table", { class: "table", id: "audit-table" },
        h("thead", {}, h("tr", {}, ["col.position", "col.type", "col.stream", "col.actor", "col.occurred", "col.recorded"].map((k, i) => h("th", { scope: "col", class: i ? "" : "num" }, t(k))))),
        tbody)));
    }
    tbody.append(...rows);
    auditAfter = res.next_after;
    $("#audit-more").hidden = res.events.length < 100;
  }

  // ---------- long operations ----------

  // A rebuild of the read models (administrators) or an export of the audit log (auditors and
  // administrators) runs on the server; the page starts it and polls its state every half
  // second. What each last showed is kept here, so a language switch can redraw it.
  const OPS = { rebuild: newOp(), export: newOp() };
  function newOp() {
    return { op: null, starting: false, problem: null, note: null, timer: null, file: null, fileProblem: null };
  }

  function resetOps() {
    for (const kind of Object.keys(OPS)) {
      clearTimeout(OPS[kind].timer);
      OPS[kind] = newOp();
    }
    renderOps();
  }

  function renderOps() {
    const r = role();
    $("#ops").hidden = !["admin", "auditor"].includes(r);
    $("#op-rebuild-box").hidden = r !== "admin";
    for (const kind of Object.keys(OPS)) renderOp(kind);
  }

  // A problem from the API or a failed operation's error, in the user's language: the codes the
  // page knows have words in both languages; anything else shows the server's detail.
  function opProblem(p) {
    if (p.status === 403) return t("err.forbidden");
    return I18n.tOr(`ops.err.${p.code}`, p.detail || p.code);
  }

  async function startOp(kind) {
    const o = OPS[kind];
    if (o.starting || o.op?.state === "running") return;
    clearTimeout(o.timer);
    Object.assign(o, newOp(), { starting: true });
    renderOp(kind);
    try {
      o.op = await api(`/api/v1/operations/${kind}`, { method: "POST" });
    } catch (e) {
      // One of this kind is already running (perhaps started by someone else): follow it.
      if (e.status === 409 && e.problem.code === "operation_in_progress" && e.location) {
        o.note = "ops.already";
        o.op = { operation_id: e.location.split("/").pop(), kind, state: "running", done: 0, total: 0 };
      } else {
        o.problem = e.problem?.code ? e.problem : { code: "network", detail: String(e) };
      }
    }
    o.starting = false;
    renderOp(kind);
    if (o.op?.state === "running") o.timer = setTimeout(() => pollOp(kind), 500);
  }

  async function pollOp(kind) {
    const o = OPS[kind];
    o.timer = null;
    if (!o.op || !(S.token || S.csrf)) return;
    try {
      o.op = await api(`/api/v1/operations/${o.op.operation_id}`, { quiet: true });
    } catch (e) {
      // A dropped connection is retried; anything else ends the polling.
      if (e.status !== 0) {
        o.problem = e.status === 404 ? { code: "gone" } : e.problem;
        o.op = null;
      }
    }
    if (OPS[kind] !== o) return; // signed out meanwhile
    renderOp(kind);
    if (o.op?.state === "running") o.timer = setTimeout(() => pollOp(kind), 500);
  }

  function renderOp(kind) {
    const o = OPS[kind], op = o.op;
    const bar = $(`#op-${kind}-progress`), pct = $(`#op-${kind}-pct`), status = $(`#op-${kind}-status`);
    const running = o.starting || op?.state === "running";
    $(`#op-${kind}`).disabled = running;
    $(`#op-${kind}-bar`).hidden = !running && op?.state !== "succeeded";
    status.className = "verdict";
    const percent = (p) => { bar.value = p; pct.textContent = `${p}%`; };
    if (o.problem) {
      status.className = "verdict bad";
      status.textContent = t("ops.failed", { why: opProblem(o.problem) });
    } else if (!op) {
      bar.removeAttribute("value"); pct.textContent = "";
      status.textContent = o.starting ? t("ops.starting") : "";
    } else if (op.state === "running") {
      if (op.total > 0) {
        percent(Math.min(100, Math.floor((op.done * 100) / op.total)));
        status.textContent = t("ops.running", { d: num(op.done), n: num(op.total) });
      } else {
        bar.removeAttribute("value"); pct.textContent = "";
        status.textContent = t("ops.running_unknown");
      }
      if (o.note) status.textContent = `${t(o.note)} ${status.textContent}`;
    } else if (op.state === "succeeded") {
      percent(100);
      status.className = "verdict good";
      const r = op.result || {};
      status.textContent = kind === "rebuild"
        ? t("ops.rebuilt", { g: r.generation, n: num(r.events ?? op.done), s: (r.seconds ?? 0).toFixed(1) })
        : t("ops.exported", { n: num(r.events), k: num(r.checkpoints), size: bytes(r.bytes) });
    } else {
      status.className = "verdict bad";
      status.textContent = t("ops.failed", { why: opProblem(op.error || {}) });
    }
    if (kind === "export") renderExportFile(o);
  }

  function bytes(n) {
    const fmt = (v, unit) => new Intl.NumberFormat(I18n.lang, { style: "unit", unit, unitDisplay: "short", maximumFractionDigits: 1 }).format(v);
    for (const [unit, f] of [["gigabyte", 1e9], ["megabyte", 1e6], ["kilobyte", 1e3]]) if (n >= f) return fmt(n / f, unit);
    return fmt(n, "byte");
  }

  // The finished export's link. The file needs the bearer token, so a click fetches it with
  // the Authorization header and hands it to the browser as a Blob with `<a download>`.
  function renderExportFile(o) {
    const box = $("#op-export-file");
    const r = o.op?.state === "succeeded" ? o.op.result : null;
    box.hidden = !r;
    if (!r) { fill(box); return; }
    let link = $("#op-export-link");
    if (!link) {
      link = h("a", { id: "op-export-link", class: "button primary", onclick: downloadExport });
      fill(box, link, h("span", { id: "op-export-error", class: "error", role: "alert" }));
    }
    link.href = r.download;
    link.setAttribute("download", r.file_name);
    link.textContent = t(o.file === "downloading" ? "ops.downloading" : o.file === "done" ? "ops.downloaded" : "ops.download", { f: r.file_name });
    $("#op-export-error").textContent = o.fileProblem ? t("ops.err.download", { d: opProblem(o.fileProblem) }) : "";
  }

  async function downloadExport(e) {
    e.preventDefault();
    const o = OPS.export, r = o.op?.result;
    if (!r || o.file === "downloading") return;
    o.file = "downloading"; o.fileProblem = null;
    renderOp("export");
    busy(1);
    try {
      let res;
      try {
        res = await fetch(r.download, { headers: authHeaders() });
      } catch (_) {
        throw new ApiError(0, { code: "network", detail: t("err.network") });
      }
      if (!res.ok) {
        const problem = (res.headers.get("content-type") || "").includes("json") ? await res.json() : null;
        throw new ApiError(res.status, problem || { status: res.status, code: `HTTP ${res.status}` });
      }
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: r.file_name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      // Revoked later, not at once: the browser reads the blob after the click returns.
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      o.file = "done";
      $("#op-export-link").dataset.downloaded = String(blob.size);
    } catch (err) {
      o.file = null;
      o.fileProblem = err.problem?.code ? err.problem : { code: "network", detail: String(err) };
    } finally {
      busy(-1);
    }
    if (OPS.export === o) renderOp("export");
  }

  // ---------- subscriptions (administrators) ----------

  // The event types and stream categories a filter may name; the domain refuses any other, so
  // a misspelt type cannot silently deliver nothing.
  const EVENT_TYPES = [
    "ModelWorkerRegistered", "HardshipAssessed", "HardshipExited", "ModelWorkerRelocated", "ModelWorkerDied",
    "ModelWorkerPaired", "ModelWorkerUnpaired", "DirectorAppointed", "DirectorTermEnded", "DirectorPaired",
    "DirectorUnpaired", "PairAssigned", "PairEnded", "PairActivityLogged", "PairActivityWithdrawn",
    "VisitRecorded", "VisitCorrected", "VisitVoided", "ContactRecorded", "IssueRaised", "IssueAcknowledged",
    "IssueEscalated", "BodyResponseRecorded", "IssueProgressNoted", "IssueResolved", "IssueResolvedOnSpot",
    "IssueResolutionConfirmed", "IssueClosed", "IssueReopened", "BodyRegistered", "PersonalDataErased",
    "SubscriptionCreated", "SubscriptionPaused", "SubscriptionResumed", "SubscriptionRewound",
    "SubscriptionSecretRotated", "SubscriptionDisabled", "SubscriptionDeleted",
    "AccountCreated", "AccountRoleChanged", "AccountDisabled", "AccountEnabled", "AccountPasswordSet",
  ];
  const CATEGORIES = ["modelworker", "director", "pairing", "visit", "issue", "body", "contact", "privacy", "subscription", "account"];
  const GRACE = [0, 3600, 86400, 604800];

  // What the view shows. A signing secret is answered once (creation, rotation): it is kept in
  // this variable only until dismissed or sign-out, never in any storage, so the panel can be
  // redrawn in the other language.
  const SUBS = { byId: new Map(), drawer: null, secret: null, timer: null };

  function resetSubscriptions() {
    clearTimeout(SUBS.timer);
    Object.assign(SUBS, { byId: new Map(), drawer: null, secret: null, timer: null });
    fill($("#subs-create")); fill($("#subs-list")); fill($("#subs-drawer")); $("#subs-drawer").hidden = true;
    renderSecret();
  }

  async function renderSubscriptions(_r, { quiet }) {
    if (!$("#subs-form")) fill($("#subs-create"), subscriptionForm());
    renderSecret();
    if (!quiet) loading($("#subs-list"));
    await loadSubscriptions(!quiet);
    // The drawer is drawn when opened (so a poll keeps what is typed in it) and again in
    // another language.
    if (SUBS.drawer && $("#subs-drawer").dataset.lang !== I18n.lang) renderDrawer();
    pollSubscriptions();
  }

  // Delivery progress changes without events in the log, so the view asks again every two
  // seconds while it is shown.
  function pollSubscriptions() {
    clearTimeout(SUBS.timer);
    SUBS.timer = setTimeout(async () => {
      if (!(S.token || S.csrf) || parseHash().view !== "subscriptions") return;
      try { await loadSubscriptions(false); } catch (_) { /* the next poll tries again */ }
      pollSubscriptions();
    }, 2000);
  }

  async function loadSubscriptions(track = true) {
    const items = await api("/api/v1/subscriptions", { quiet: !track });
    SUBS.byId = new Map(items.map((s) => [s.id, s]));
    const box = $("#subs-list");
    if (!items.length) {
      fill(box, h("p", { class: "muted", id: "subs-empty" }, t("subs.empty")));
    } else {
      let tbody = $("#subs-table tbody");
      if (!tbody || tbody.dataset.lang !== I18n.lang) {
        tbody = h("tbody", { dataset: { lang: I18n.lang } });
        fill(box, h("div", { class: "scroll" }, h("table", { class: "table", id: "subs-table" },
          h("thead", {}, h("tr", {}, ["subs.col.name", "subs.col.target", "subs.col.state", "subs.col.lag", "subs.col.last_error", "subs.col.next", "subs.col.actions"]
            .map((k) => h("th", { scope: "col", class: k === "subs.col.lag" ? "num" : "" }, t(k))))),
          tbody)));
      }
      // A row whose content did not change is kept as it is, so a poll does not replace a
      // button under the pointer (or the focus).
      const old = new Map([...tbody.children].map((tr) => [tr.dataset.id, tr]));
      tbody.replaceChildren(...items.map((s) => {
        const sig = JSON.stringify([s.name, s.delivery, s.state, s.disabled_reason, s.lag_events, Math.round(s.lag_seconds), s.delivered_total,
          s.last_status, s.last_error, s.next_attempt_at]);
        const kept = old.get(s.id);
        return kept && kept.dataset.sig === sig ? kept : subscriptionRow(s, sig);
      }));
    }
    if (SUBS.drawer && !SUBS.byId.has(SUBS.drawer)) closeDrawer();
    else if (SUBS.drawer) await loadAttempts();
  }

  function subscriptionRow(s, sig) {
    const target = s.delivery.kind === "webhook" ? s.delivery.url : s.delivery.subject_prefix || "caretrail";
    const stopped = s.state === "paused" || s.state === "disabled";
    const act = (key, onclick) => h("button", { type: "button", class: "link", dataset: { act: key }, onclick }, t(`subs.${key}`));
    return h("tr", { dataset: { id: s.id, state: s.state, sig } },
      h("th", { scope: "row", class: "sub-name" }, s.name),
      h("td", { class: "sub-target" }, h("span", { class: "badge kind" }, t(`subs.kind.${s.delivery.kind}`)), " ", h("code", {}, target)),
      h("td", {},
        h("span", { class: `badge sub-state sub-${s.state}` }, I18n.tOr(`subs.state.${s.state}`, s.state)),
        s.disabled_reason ? h("div", { class: "muted small" }, I18n.tOr(`subs.reason.${s.disabled_reason}`, s.disabled_reason)) : null),
      h("td", { class: "num" }, t("subs.lag", { n: num(s.lag_events), s: num(Math.round(s.lag_seconds)) }),
        h("div", { class: "muted small sub-delivered" }, t("subs.delivered", { n: num(s.delivered_total) }))),
      h("td", { class: "small sub-error" }, s.last_error ? [s.last_status ? `HTTP ${s.last_status} · ` : "", s.last_error] : "—"),
      h("td", { class: "small" }, s.next_attempt_at ? recorded(s.next_attempt_at) : "—"),
      h("td", { class: "row-actions" },
        stopped ? act("resume", () => subscriptionAction(s.id, "resume")) : act("pause", () => subscriptionAction(s.id, "pause")),
        act("attempts", () => openDrawer(s.id, null)),
        act("rewind", () => openDrawer(s.id, "after")),
        s.delivery.kind === "webhook" ? act("rotate", () => openDrawer(s.id, "grace_seconds")) : null,
        act("delete", () => subscriptionAction(s.id, "delete"))));
  }

  // A problem in the user's language: the server's Chinese detail, else the page's words for
  // the codes it knows, else the server's detail.
  function problemDetail(p) {
    if (I18n.lang === "en") return p.detail || p.code;
    return p.detail_zh || I18n.tOr(`problem.${p.code}`, p.detail || p.code);
  }

  async function subscriptionAction(id, act) {
    const s = SUBS.byId.get(id);
    if (!s) return;
    try {
      if (act === "delete") {
        if (!window.confirm(t("subs.confirm_delete", { n: s.name }))) return;
        await api(`/api/v1/subscriptions/${encodeURIComponent(id)}`, { method: "DELETE" });
        if (SUBS.drawer === id) closeDrawer();
      } else {
        await api(`/api/v1/subscriptions/${encodeURIComponent(id)}/${act}`, { method: "POST" });
      }
      toast(t(`subs.done.${act}`, { n: s.name }));
    } catch (e) {
      toast(e.problem ? problemText(e.problem) : String(e), true);
    }
    await loadSubscriptions().catch((e) => toast(problemText(e.problem || {}), true));
  }

  // The drawer of one subscription: its recent attempts, a rewind and (webhooks) a rotation.
  function openDrawer(id, focus) {
    SUBS.drawer = id;
    renderDrawer();
    loadAttempts().catch((e) => toast(problemText(e.problem || {}), true));
    const box = $("#subs-drawer");
    box.scrollIntoView({ block: "nearest" });
    (focus ? box.querySelector(`[data-path="${focus}"] input, [data-path="${focus}"] select`) : box.querySelector("h2"))?.focus();
  }

  function closeDrawer() {
    SUBS.drawer = null;
    const box = $("#subs-drawer");
    box.hidden = true;
    fill(box);
  }

  function renderDrawer() {
    const s = SUBS.byId.get(SUBS.drawer);
    const box = $("#subs-drawer");
    if (!s) { closeDrawer(); return; }
    box.hidden = false;
    box.dataset.id = s.id;
    box.dataset.lang = I18n.lang;
    const rewind = h("form", { class: "inline-form", id: "subs-rewind", novalidate: true },
      field("after", "subs.rewind_after", input({ type: "number", min: "0", max: String(s.head), step: "1", value: "0", inputmode: "numeric" }), { required: true }),
      h("p", { class: "error form-error", role: "alert", hidden: true }),
      h("div", { class: "actions" }, h("button", { type: "submit" }, t("subs.rewind"))));
    rewind.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const after = rewind.querySelector("input").value.trim();
      drawerSubmit(rewind, "rewind", { after: after === "" ? null : Number(after) });
    });
    const grace = select(GRACE.map(String), "subs.grace", { value: "86400" });
    const rotate = s.delivery.kind === "webhook" ? h("form", { class: "inline-form", id: "subs-rotate", novalidate: true },
      field("grace_seconds", "subs.rotate_grace", grace),
      h("p", { class: "error form-error", role: "alert", hidden: true }),
      h("div", { class: "actions" }, h("button", { type: "submit" }, t("subs.rotate")))) : null;
    rotate?.addEventListener("submit", (ev) => { ev.preventDefault(); drawerSubmit(rotate, "rotate-secret", { grace_seconds: Number(grace.value) }); });
    fill(box,
      h("div", { class: "drawer-head" },
        h("h2", { tabindex: "-1" }, t("subs.drawer"), " ", h("span", { class: "sub-name" }, s.name)),
        h("button", { type: "button", class: "link", id: "subs-drawer-close", onclick: closeDrawer }, t("subs.close"))),
      h("div", { class: "grid2" }, rewind, rotate),
      h("h3", {}, t("subs.attempts")),
      h("div", { id: "subs-attempts" }, h("p", { class: "loading" }, t("loading"))));
  }

  async function drawerSubmit(form, act, payload) {
    if (form.dataset.busy) return;
    const id = SUBS.drawer, s = SUBS.byId.get(id);
    form.dataset.busy = "1";
    clearErrors(form);
    try {
      const res = await api(`/api/v1/subscriptions/${encodeURIComponent(id)}/${act}`, { method: "POST", json: stripNulls(payload) });
      form.problem = null;
      if (act === "rotate-secret") {
        SUBS.secret = { name: res.name, secret: res.secret, until: res.previous_valid_until };
        showSecret();
      } else {
        toast(t("subs.done.rewind", { n: s.name, p: payload.after }));
      }
      await loadSubscriptions();
    } catch (e) {
      if (!e.problem) throw e;
      form.problem = e.problem; form.payload = payload; showErrors(form);
    } finally {
      delete form.dataset.busy;
    }
  }

  async function loadAttempts() {
    const id = SUBS.drawer;
    const list = await api(`/api/v1/subscriptions/${encodeURIComponent(id)}/attempts?limit=20`, { quiet: true });
    const box = $("#subs-attempts");
    if (!box || SUBS.drawer !== id) return;
    if (!list.length) { fill(box, h("p", { class: "muted" }, t("subs.attempts_empty"))); return; }
    fill(box, h("div", { class: "scroll" }, h("table", { class: "table", id: "subs-attempts-table" },
      h("thead", {}, h("tr", {}, ["subs.att.position", "subs.att.time", "subs.att.outcome", "subs.att.status", "subs.att.latency", "subs.att.detail"]
        .map((k, i) => h("th", { scope: "col", class: i === 0 || i === 3 || i === 4 ? "num" : "" }, t(k))))),
      h("tbody", {}, list.map((a) => h("tr", { dataset: { outcome: a.outcome, position: a.position } },
        h("td", { class: "num" }, a.position),
        h("td", { class: "small" }, recorded(a.attempted_at)),
        h("td", {}, h("span", { class: `badge att-${a.outcome}` }, I18n.tOr(`subs.outcome.${a.outcome}`, a.outcome))),
        h("td", { class: "num" }, a.status ?? "—"),
        h("td", { class: "num" }, num(Math.round(a.latency_ms))),
        h("td", { class: "small sub-error" }, a.error || a.response_excerpt || "—")))))));
  }

  // The secret panel, shown after a creation or a rotation until it is dismissed.
  function showSecret() {
    renderSecret();
    const box = $("#subs-secret");
    box.scrollIntoView({ block: "nearest" });
    $("#subs-secret-value")?.focus();
    $("#subs-secret-value")?.select();
  }

  // Drawn again only for another secret or language, so a redraw of the view keeps the
  // selection and the focus in it.
  let secretDrawn = null;
  function renderSecret() {
    const box = $("#subs-secret");
    const v = SUBS.secret;
    box.hidden = !v;
    if (!v) { fill(box); secretDrawn = null; return; }
    if (secretDrawn && secretDrawn.v === v && secretDrawn.lang === I18n.lang) return;
    secretDrawn = { v, lang: I18n.lang };
    const value = h("input", { type: "text", id: "subs-secret-value", readonly: true, spellcheck: "false", autocomplete: "off", "aria-label": t("subs.secret_label") });
    value.value = v.secret;
    const copy = h("button", { type: "button", id: "subs-secret-copy", onclick: () => copySecret(value, copy) }, t("subs.copy"));
    fill(box,
      h("h2", {}, t(v.until ? "subs.secret_rotated" : "subs.secret_title"), " ", h("span", { class: "sub-name" }, v.name)),
      h("p", { class: "warn", role: "alert" }, t("subs.secret_once")),
      h("div", { class: "secret-row" }, value, copy),
      v.until ? h("p", { class: "muted" }, t("subs.previous_until", { d: recorded(v.until) })) : null,
      h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "subs-secret-done", onclick: () => { SUBS.secret = null; renderSecret(); } }, t("subs.secret_done"))));
  }

  async function copySecret(value, button) {
    let ok = false;
    try {
      await navigator.clipboard.writeText(value.value);
      ok = true;
    } catch (_) {
      // Without clipboard permission, the selected text is copied the old way or by hand.
      value.focus(); value.select();
      try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
    }
    button.textContent = t(ok ? "subs.copied" : "subs.copy_manual");
  }

  function subscriptionForm() {
    const form = h("form", { id: "subs-form", class: "record", novalidate: true });
    const body = h("div", { class: "form-grid" });
    const name = input({ type: "text", maxlength: "100", autocomplete: "off" });
    const kind = select(["webhook", "nats"], "subs.kind");
    const url = input({ type: "url", autocomplete: "off", spellcheck: "false" });
    const prefix = input({ type: "text", placeholder: "caretrail", spellcheck: "false" });
    const urlField = field("delivery.url", "subs.url", url, { required: true, class: "wide" });
    const prefixField = field("delivery.subject_prefix", "subs.subject_prefix", prefix, { class: "wide" });
    const sync = () => { urlField.hidden = kind.value !== "webhook"; prefixField.hidden = kind.value !== "nats"; };
    kind.addEventListener("change", sync);
    const boxes = (path, legend, values, key) => {
      const id = `f${++fieldSeq}`;
      return h("fieldset", { class: "field rows checks", dataset: { path }, "aria-describedby": `${id}-err` },
        h("legend", { "data-i18n": legend }, t(legend)),
        h("div", { class: "check-grid" }, values.map((v) => h("label", { class: "check" },
          h("input", { type: "checkbox", value: v, name: path }), " ",
          h("span", { "data-i18n": `${key}.${v}` }, t(`${key}.${v}`)), " ", h("code", { class: "muted small" }, v)))),
        h("p", { class: "error", id: `${id}-err`, hidden: true }));
    };
    const radio = (value, key, checked) => h("label", { class: "check" },
      h("input", { type: "radio", name: "start", value, checked }), " ", h("span", { "data-i18n": key }, t(key)));
    const startId = `f${++fieldSeq}`;
    const start = h("fieldset", { class: "field rows", dataset: { path: "start_after" }, "aria-describedby": `${startId}-err` },
      h("legend", { "data-i18n": "subs.start" }, t("subs.start")),
      h("div", { class: "inline" }, radio("now", "subs.start.now", true), radio("zero", "subs.start.zero", false)),
      h("p", { class: "error", id: `${startId}-err`, hidden: true }));
    body.append(field("name", "subs.name", name, { required: true }), field("delivery.kind", "subs.kind", kind, { required: true }),
      urlField, prefixField,
      boxes("filter.types", "subs.types", EVENT_TYPES, "ev"), boxes("filter.categories", "subs.categories", CATEGORIES, "cat"), start);
    const submit = h("button", { type: "submit", class: "primary", "data-i18n": "subs.submit" }, t("subs.submit"));
    form.append(body, h("p", { class: "error form-error", role: "alert", hidden: true }), h("div", { class: "actions" }, submit));
    sync();
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (form.dataset.busy) return;
      form.dataset.busy = "1";
      clearErrors(form);
      submit.disabled = true;
      const ticked = (path) => [...form.querySelectorAll(`[data-path="${path}"] input:checked`)].map((i) => i.value);
      const types = ticked("filter.types"), categories = ticked("filter.categories");
      const p = prefix.value.trim();
      const payload = {
        name: name.value.trim(),
        delivery: kind.value === "webhook" ? { kind: "webhook", url: url.value.trim() } : { kind: "nats", subject_prefix: p || null },
        filter: types.length || categories.length ? { types, categories } : null,
        start_after: form.querySelector("input[name=start]:checked").value === "zero" ? 0 : null,
      };
      try {
        const created = await api("/api/v1/subscriptions", { method: "POST", json: stripNulls(payload) });
        form.problem = null;
        form.reset(); sync();
        toast(t("subs.done.create", { n: created.name }));
        if (created.secret) { SUBS.secret = { name: created.name, secret: created.secret, until: null }; showSecret(); }
        await loadSubscriptions();
      } catch (e) {
        if (!e.problem) throw e;
        form.problem = e.problem; form.payload = payload; showErrors(form);
      } finally {
        delete form.dataset.busy;
        submit.disabled = false;
      }
    });
    return form;
  }

  // ---------- live updates ----------

  // EventSource cannot send an Authorization header, so the stream is read with fetch() and
  // parsed here; on a drop it reconnects with Last-Event-ID and resumes after the last event.
  function startLive() {
    if (!["admin", "auditor", "integration", "director"].includes(role())) return;
    stopLive();
    const live = { ctl: new AbortController(), last: null, retry: 500 };
    S.live = live;
    (async () => {
      try {
        const lag = await api("/api/v1/dashboard/projections", { signal: live.ctl.signal });
        live.last = lag.head;
      } catch (_) { live.last = 0; }
      while (S.live === live) {
        try {
          await readStream(live);
        } catch (e) {
          if (live.ctl.signal.aborted) return;
        }
        setLive(false);
        await new Promise((r) => setTimeout(r, live.retry));
        live.retry = Math.min(live.retry * 2, 15000);
      }
    })();
  }

  function stopLive() {
    if (S.live) S.live.ctl.abort();
    S.live = null;
    $("#live").hidden = true;
  }

  function setLive(on) {
    const el = $("#live");
    el.hidden = false;
    el.textContent = on ? t("live.on") : t("live.off");
    el.className = on ? "live on" : "live off";
  }

  async function readStream(live) {
    const headers = { ...authHeaders(), Accept: "text/event-stream" };
    if (live.last !== null) headers["Last-Event-ID"] = String(live.last);
    const res = await fetch("/api/v1/events/subscribe", { headers, signal: live.ctl.signal });
    if (!res.ok || !res.body) throw new Error(`subscribe: ${res.status}`);
    setLive(true);
    live.retry = 500;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let cut;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut).replace(/^\r?\n\r?\n/, "");
        const ev = { id: null, event: "message", data: [] };
        for (const line of block.split(/\r?\n/)) {
          if (!line || line.startsWith(":")) continue;
          const i = line.indexOf(":");
          const k = i < 0 ? line : line.slice(0, i);
          const v = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (k === "id") ev.id = v; else if (k === "event") ev.event = v; else if (k === "data") ev.data.push(v);
        }
        if (ev.id !== null) live.last = Number(ev.id);
        if (ev.event !== "error" && ev.data.length) onLiveEvent(Number(ev.id));
      }
    }
  }

  // Events come in bursts (a visit writes several); refresh once per burst, after the
  // dashboards have applied the newest, and leave forms being filled in alone.
  let liveTimer = null, livePos = 0;
  function onLiveEvent(pos) {
    livePos = Math.max(livePos, pos || 0);
    clearTimeout(liveTimer);
    liveTimer = setTimeout(async () => {
      const view = parseHash().view || home();
      if (view === "record" || view === "signin") return;
      if (S.asOfPos && view !== "audit") return;
      await caughtUp(livePos);
      await route(true);
      const el = $("#live");
      el.textContent = `${t("live.on")} · ${t("live.updated")} ${new Date().toLocaleTimeString(I18n.lang, { hour12: false })}`;
    }, 250);
  }

  // ---------- roster import (administrators) ----------

  // Choose a roster, download its template, upload the filled file for a preview (nothing is
  // written), read each row's result beside its row number, then commit. The file goes to the
  // server as it is; the page reads nothing of it, and the preview repeats no cell, so the
  // page shows row numbers and messages only. The preview and the outcome are kept in `IMP`
  // so a language switch redraws them.
  const IMPORT_KINDS = ["model-workers", "directors", "pairings"];
  const IMP = { preview: null, outcome: null, problem: null };

  function resetImport() {
    Object.assign(IMP, { preview: null, outcome: null, problem: null });
    if ($("#import-box")) fill($("#import-box"));
  }

  // Texts carry `data-i18n`, so a language switch relabels the form in place (keeping the
  // chosen file) and only the result is redrawn.
  function renderImport() {
    const box = $("#import-box");
    if (!$("#import-form")) {
      const i18n = (key) => ({ dataset: { i18n: key } });
      const kinds = h("select", { name: "kind", id: "import-kind" },
        IMPORT_KINDS.map((k) => h("option", { value: k, ...i18n(`import.kind.${k}`) }, t(`import.kind.${k}`))));
      const form = h("form", { id: "import-form", class: "form", onsubmit: (e) => { e.preventDefault(); previewImport(); } },
        h("div", { class: "field" }, h("label", { for: "import-kind", ...i18n("import.kind") }, t("import.kind")), kinds),
        h("div", { class: "actions" },
          h("a", { href: "#", id: "import-template-xlsx", class: "button", ...i18n("import.template_xlsx"), onclick: (e) => { e.preventDefault(); downloadTemplate("xlsx"); } }, t("import.template_xlsx")),
          h("a", { href: "#", id: "import-template-csv", class: "button", ...i18n("import.template_csv"), onclick: (e) => { e.preventDefault(); downloadTemplate("csv"); } }, t("import.template_csv"))),
        h("div", { class: "field" }, h("label", { for: "import-file", ...i18n("import.file") }, t("import.file")),
          h("input", { type: "file", id: "import-file", name: "file", accept: ".xlsx,.csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,text/csv", required: true })),
        h("p", { class: "muted", ...i18n("import.limits") }, t("import.limits")),
        h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "import-preview", ...i18n("import.preview") }, t("import.preview"))));
      fill(box, form, h("div", { id: "import-error", class: "error", role: "alert" }), h("div", { id: "import-result" }));
      form.kind.addEventListener("change", () => { Object.assign(IMP, { preview: null, outcome: null, problem: null }); renderImportResult(); });
    }
    renderImportResult();
  }

  async function downloadTemplate(ext) {
    const kind = $("#import-kind").value;
    const name = `caretrail-${kind}.${ext}`;
    busy(1);
    try {
      const res = await fetch(`/api/v1/imports/templates/${kind}.${ext}`, { headers: authHeaders() });
      if (!res.ok) throw new ApiError(res.status, (res.headers.get("content-type") || "").includes("json") ? await res.json() : null);
      const url = URL.createObjectURL(await res.blob());
      const a = h("a", { href: url, download: name, hidden: true });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      toast(err.problem ? problemText(err.problem) : String(err), true);
    } finally {
      busy(-1);
    }
  }

  async function previewImport() {
    const form = $("#import-form");
    const file = form.file.files[0];
    if (!file) return;
    Object.assign(IMP, { preview: null, outcome: null, problem: null });
    busy(1);
    try {
      let res;
      try {
        res = await fetch(`/api/v1/imports?kind=${encodeURIComponent(form.kind.value)}`, {
          method: "POST",
          headers: { ...authHeaders("POST"), "Content-Type": file.type || "application/octet-stream" },
          body: file,
        });
      } catch (_) {
        throw new ApiError(0, { code: "network", detail: t("err.network") });
      }
      const data = (res.headers.get("content-type") || "").includes("json") ? await res.json() : null;
      if (!res.ok) throw new ApiError(res.status, data || { status: res.status, code: `HTTP ${res.status}` });
      IMP.preview = data;
    } catch (err) {
      IMP.problem = err.problem || { code: "network", detail: String(err) };
    } finally {
      busy(-1);
    }
    renderImportResult();
  }

  async function commitImport() {
    if (!IMP.preview) return;
    try {
      IMP.outcome = await api(`/api/v1/imports/${encodeURIComponent(IMP.preview.id)}/commit`, { method: "POST" });
    } catch (err) {
      IMP.problem = err.problem || { code: "network", detail: String(err) };
    }
    renderImportResult();
  }

  // A server message in the page's language (the API answers both).
  const importMessage = (m) => (I18n.lang === "en" ? m.message : m.message_zh || m.message) || m.code;
  const importProblem = (p) => (I18n.lang === "en" ? p.detail : p.detail_zh || p.detail) || p.code;

  function renderImportResult() {
    const err = $("#import-error"), box = $("#import-result");
    if (!err || !box) return;
    err.textContent = IMP.problem ? t("import.failed", { d: importProblem(IMP.problem) }) : "";
    const p = IMP.preview;
    if (!p) { fill(box); return; }
    const o = IMP.outcome;
    const byRow = new Map((o?.rows || []).map((r) => [r.row, r]));
    const summary = o
      ? t("import.outcome", { w: o.written, r: o.replayed, x: o.rejected, f: o.failed, s: o.skipped })
      : t("import.summary", { n: p.total, v: p.valid, i: p.invalid, a: p.already_imported });
    const rows = p.rows.map((r) => {
      const done = byRow.get(r.row);
      const status = done ? t(`import.outcome.${done.outcome}`) : t(`import.status.${r.status}`);
      const bad = done ? ["rejected", "failed"].includes(done.outcome) : r.status === "invalid";
      const messages = done && done.code ? [importMessage(done)] : (r.problems || []).map((m) => (m.column ? `${m.column}: ${importMessage(m)}` : importMessage(m)));
      return h("tr", { class: bad ? "bad" : "", dataset: { row: r.row, status: done ? done.outcome : r.status } },
        h("th", { scope: "row", class: "num" }, r.row),
        h("td", {}, status),
        h("td", {}, messages.length ? h("ul", { class: "plain" }, messages.map((m) => h("li", {}, m))) : "—"));
    });
    fill(box,
      h("p", { id: "import-summary" }, summary),
      o ? null : h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "import-commit", disabled: p.valid + p.already_imported === 0, onclick: commitImport }, t("import.commit"))),
      h("div", { class: "scroll" }, h("table", { class: "table", id: "import-table" },
        h("thead", {}, h("tr", {}, ["import.col.row", "import.col.status", "import.col.messages"].map((k) => h("th", { scope: "col" }, t(k))))),
        h("tbody", {}, rows))));
  }

  // ---------- chrome ----------

  let toastTimer = null;
  function toast(text, bad = false) {
    const el = $("#toast");
    el.textContent = text; el.hidden = false; el.className = bad ? "toast bad" : "toast";
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
  }

  function renderAsOfNote() {
    const note = $("#asof-note");
    const parts = [];
    if (S.asOf) parts.push(t("asof.showing", { d: S.asOf }));
    if (S.asOfPos && mayReplay()) parts.push(t("asof.replay", { p: S.asOfPos }));
    note.textContent = parts.join("");
    $("#asof-date").value = S.asOf;
    $("#asof-pos").value = S.asOfPos;
  }

  function setLang(l) {
    I18n.set(l);
    I18n.apply();
    $("#lang").textContent = I18n.lang === "en" ? "中文" : "English";
    $("#lang").setAttribute("lang", I18n.lang === "en" ? "zh-CN" : "en");
    renderWho();
    renderAsOfNote();
    renderOps();
    renderVerdict();
    renderSecret();
    for (const f of document.querySelectorAll("#view-subscriptions form")) if (f.problem) showErrors(f);
    if (S.live) setLive(!$("#live").classList.contains("off"));
    const form = $("#record-forms form");
    if (form && !$("#view-record").hidden) {
      form.relocalize();
      for (const tab of document.querySelectorAll("#record-tabs [data-i18n]")) tab.textContent = t(tab.dataset.i18n);
    } else if (S.me) {
      route(true);
    }
  }

  // ---------- accounts: password sign-in, my account ----------
  //
  // A person signs in with a user name and password (`POST /api/v1/session`): the server sets
  // an HttpOnly cookie and answers a CSRF token, kept in memory; a reload asks for it again
  // (`GET /api/v1/session`). Errors are shown beside the form, in the page's language, the
  // lockout with how long it lasts.

  function signinProblem(e) {
    const code = e.problem?.code;
    if (code === "invalid_credentials") return t("signin.wrong");
    if (code === "account_locked") {
      const res = e.retryAfter || 900;
      return t("signin.locked", { minutes: Math.max(1, Math.ceil(res / 60)) });
    }
    if (code === "rate_limited" || code === "sign_in_busy") return t("signin.slow");
    return e.problem ? problemText(e.problem) : String(e);
  }

  async function postSession(path, body) {
    const res = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(S.csrf ? { "X-CSRF-Token": S.csrf } : {}) },
      body: JSON.stringify(body),
    });
    const data = (res.headers.get("content-type") || "").includes("json") ? await res.json() : null;
    if (!res.ok) {
      const err = new ApiError(res.status, data);
      err.retryAfter = Number(res.headers.get("retry-after")) || 0;
      throw err;
    }
    return data;
  }

  async function passwordSignIn(e) {
    e.preventDefault();
    const out = $("#signin-password-error");
    const username = $("#signin-username").value.trim();
    const password = $("#signin-password").value;
    if (!username || !password) { out.textContent = t("signin.needed"); out.hidden = false; return; }
    busy(1);
    try {
      const session = await postSession("/api/v1/session", { username, password });
      S.csrf = session.csrf_token;
      S.token = null; sessionStorage.removeItem("caretrail.token");
      out.hidden = true; out.textContent = "";
      $("#signin-password").value = "";
      await signIn();
    } catch (err) {
      out.textContent = signinProblem(err); out.hidden = false;
      $("#signin-password").value = "";
      $("#signin-password").focus();
    } finally {
      busy(-1);
    }
  }

  // Ends a session on the server (sign out, or everywhere) without waiting for the answer.
  function endSession(path, method) {
    fetch(path, { method, headers: { "X-CSRF-Token": S.csrf } }).catch(() => {});
  }

  // A session that survives a reload: the cookie is still there, the CSRF token is asked for.
  async function resumeSession() {
    try {
      const res = await fetch("/api/v1/session");
      if (!res.ok) return false;
      S.csrf = (await res.json()).csrf_token;
      return true;
    } catch (_) {
      return false;
    }
  }

  function renderAccount() {
    const out = $("#account-password-error");
    out.hidden = true;
    $("#account-password-form").hidden = !S.csrf;
    $("#account-end-all").disabled = !S.csrf;
    if (!S.csrf) toast(t("account.token"));
  }

  async function changePassword(e) {
    e.preventDefault();
    const out = $("#account-password-error");
    const current = $("#account-current").value;
    const next = $("#account-new").value;
    try {
      const session = await postSession("/api/v1/session/password", { current_password: current, new_password: next });
      S.csrf = session.csrf_token;
      $("#account-current").value = ""; $("#account-new").value = "";
      out.hidden = true;
      toast(t("account.saved"));
    } catch (err) {
      const code = err.problem?.code;
      out.textContent = code === "weak_password" || code === "validation_failed" ? t("account.weak")
        : code === "invalid_credentials" ? t("account.wrong") : signinProblem(err);
      out.hidden = false;
    }
  }

  // ---------- accounts and tokens (administrators) ----------

  VIEWS.admin.push("accounts", "tokens");
  const ACCOUNT_ROLES = ["admin", "director", "auditor"];
  const TOKEN_ROLES = ["admin", "director", "auditor", "integration"];

  function roleOptions(select, roles) {
    fill(select, roles.map((r) => h("option", { value: r }, t(`role.${r}`))));
  }
  function directorOptions(select) {
    const dirs = [...S.directors.entries()].sort((a, b) => String(a[1]).localeCompare(String(b[1]), "zh-CN"));
    fill(select, h("option", { value: "" }, t("accounts.none")), dirs.map(([id, name]) => h("option", { value: id }, name)));
  }
  const fieldError = (sel, err) => {
    const out = $(sel);
    if (!err) { out.hidden = true; out.textContent = ""; return; }
    const p = err.problem || {};
    out.textContent = p.errors?.length ? `${p.errors.map((e) => e.field).join(", ")}: ${problemDetail(p)}` : problemText(p);
    out.hidden = false;
  };

  async function renderAccounts() {
    roleOptions($("#accounts-role"), ACCOUNT_ROLES);
    directorOptions($("#accounts-director"));
    const list = $("#accounts-list");
    loading(list);
    const accounts = await api("/api/v1/accounts");
    if (!accounts.length) { fill(list, h("p", { class: "muted" }, t("accounts.empty"))); return; }
    const row = (a) => {
      const state = a.disabled ? t("accounts.disabled")
        : a.locked_until ? t("accounts.locked", { until: recorded(a.locked_until) }) : t("accounts.active");
      const roleSel = h("select", { "aria-label": t("accounts.setrole") }, ACCOUNT_ROLES.map((r) => h("option", { value: r, selected: r === a.role }, t(`role.${r}`))));
      const dirSel = h("select", { "aria-label": t("accounts.director") });
      directorOptions(dirSel);
      if (a.director_id) dirSel.value = a.director_id;
      const pw = h("input", { type: "password", autocomplete: "new-password", minlength: 10, maxlength: 256, placeholder: t("accounts.newpw"), "aria-label": t("accounts.newpw") });
      const act = (path, json) => async () => {
        try {
          await api(`/api/v1/accounts/${a.account_id}/${path}`, { method: "POST", json });
          toast(t("accounts.done"));
          renderAccounts();
        } catch (e) { toast(problemText(e.problem || {}), true); }
      };
      return h("tr", { dataset: { account: a.username } },
        h("td", {}, a.username), h("td", {}, a.role ? t(`role.${a.role}`) : "—"),
        h("td", {}, a.director_id ? S.directors.get(a.director_id) || a.director_id : "—"), h("td", {}, state),
        h("td", { class: "actions" },
          roleSel, dirSel, h("button", { type: "button", onclick: () => act("role", { role: roleSel.value, director_id: roleSel.value === "director" ? dirSel.value || undefined : undefined })() }, t("accounts.setrole")),
          h("button", { type: "button", onclick: act(a.disabled ? "enable" : "disable") }, t(a.disabled ? "accounts.enable" : "accounts.disable")),
          pw, h("button", { type: "button", onclick: () => act("password", { password: pw.value })() }, t("accounts.reset"))));
    };
    fill(list, h("table", {},
      h("thead", {}, h("tr", {}, ["accounts.username", "accounts.role", "accounts.director", "accounts.state", "accounts.actions"].map((k) => h("th", {}, t(k).replace(/（.*|\s\(.*/, ""))))),
      h("tbody", {}, accounts.map(row))));
  }

  async function createAccount(e) {
    e.preventDefault();
    fieldError("#accounts-error", null);
    try {
      await api("/api/v1/accounts", { method: "POST", json: {
        username: $("#accounts-username").value, password: $("#accounts-password").value,
        role: $("#accounts-role").value,
        director_id: $("#accounts-role").value === "director" ? $("#accounts-director").value || undefined : undefined,
      } });
      $("#accounts-username").value = ""; $("#accounts-password").value = "";
      toast(t("accounts.created"));
      renderAccounts();
    } catch (err) { fieldError("#accounts-error", err); }
  }

  // A token made here is shown until the view is opened again or the person signs out.
  function resetTokens() { $("#tokens-secret").hidden = true; fill($("#tokens-secret")); }

  async function renderTokens(_r, _o, keepSecret = false) {
    if (!keepSecret) resetTokens();
    roleOptions($("#tokens-role"), TOKEN_ROLES);
    directorOptions($("#tokens-director"));
    const list = $("#tokens-list");
    loading(list);
    const tokens = await api("/api/v1/tokens");
    const row = (k) => h("tr", { dataset: { token: k.token_id } },
      h("td", {}, k.name), h("td", {}, I18n.tOr(`role.${k.role}`, k.role)), h("td", {}, recorded(k.created_at)),
      h("td", {}, k.expires_at ? recorded(k.expires_at) : t("tokens.never")),
      h("td", {}, k.revoked_at ? `${t("tokens.revoked")} ${recorded(k.revoked_at)}`
        : h("button", { type: "button", onclick: async () => {
          try { await api(`/api/v1/tokens/${k.token_id}`, { method: "DELETE" }); toast(t("tokens.done")); renderTokens(); }
          catch (err) { toast(problemText(err.problem || {}), true); }
        } }, t("tokens.revoke"))));
    fill(list, h("table", {},
      h("thead", {}, h("tr", {}, ["tokens.name", "tokens.role", "tokens.created", "tokens.expires", "accounts.actions"].map((k) => h("th", {}, t(k))))),
      h("tbody", {}, tokens.map(row))));
  }

  async function createToken(e) {
    e.preventDefault();
    fieldError("#tokens-error", null);
    const days = $("#tokens-days").value;
    try {
      const made = await api("/api/v1/tokens", { method: "POST", json: {
        name: $("#tokens-name").value, role: $("#tokens-role").value,
        director_id: $("#tokens-role").value === "director" ? $("#tokens-director").value || undefined : undefined,
        expires_in_days: days ? Number(days) : undefined,
      } });
      // Shown once and kept nowhere: the next render of the view clears it.
      fill($("#tokens-secret"), h("p", {}, t("tokens.secret")), h("code", { class: "secret" }, made.token));
      $("#tokens-secret").hidden = false;
      $("#tokens-name").value = "";
      renderTokens(null, null, true);
    } catch (err) { fieldError("#tokens-error", err); }
  }

  function wireAccounts() {
    $("#accounts-create").addEventListener("submit", createAccount);
    $("#tokens-create").addEventListener("submit", createToken);
    $("#signin-password-form").addEventListener("submit", passwordSignIn);
    $("#account-password-form").addEventListener("submit", changePassword);
    $("#account-end-all").addEventListener("click", () => {
      if (!S.csrf) return;
      endSession("/api/v1/session/end-all", "POST");
      S.csrf = null;
      signOut();
    });
  }

  function wire() {
    wireAccounts();
    $("#lang").addEventListener("click", () => setLang(I18n.lang === "en" ? "zh-CN" : "en"));
    $("#signout").addEventListener("click", signOut);
    $("#signin-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const v = $("#signin-token").value.trim();
      if (!v) return;
      S.token = v; sessionStorage.setItem("caretrail.token", v);
      $("#signin-token").value = "";
      signIn();
    });
    $("#asof-form").addEventListener("submit", (e) => {
      e.preventDefault();
      S.asOf = $("#asof-date").value;
      S.asOfPos = $("#asof-pos").value;
      sessionStorage.setItem("caretrail.asof", S.asOf);
      sessionStorage.setItem("caretrail.asofpos", S.asOfPos);
      delete $("#overdue-filter").dataset.filled;
      Object.keys(PAGERS).forEach(resetPager);
      route();
    });
    $("#asof-clear").addEventListener("click", () => {
      S.asOf = ""; S.asOfPos = "";
      sessionStorage.removeItem("caretrail.asof"); sessionStorage.removeItem("caretrail.asofpos");
      Object.keys(PAGERS).forEach(resetPager);
      route();
    });
    // A changed filter or search starts the list again from its first page.
    for (const name of ["overdue", "workers", "directors"]) {
      const form = $(`#${name}-filter`);
      form.addEventListener("change", () => { resetPager(name); route(); });
      form.addEventListener("submit", (e) => { e.preventDefault(); resetPager(name); route(); });
      let typing = null;
      $(`#${name}-q`).addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { resetPager(name); route(); }, 400); });
    }
    $("#issues-filter").addEventListener("change", () => route());
    $("#audit-filter").addEventListener("submit", (e) => { e.preventDefault(); auditAfter = 0; loadEvents(false).catch((err) => toast(problemText(err.problem || {}), true)); });
    $("#audit-more").addEventListener("click", () => loadEvents(true).catch((err) => toast(problemText(err.problem || {}), true)));
    $("#audit-verify").addEventListener("click", () => verify());
    $("#op-rebuild").addEventListener("click", () => startOp("rebuild"));
    $("#op-export").addEventListener("click", () => startOp("export"));
    window.addEventListener("hashchange", () => route());
  }

  document.addEventListener("DOMContentLoaded", () => {
    takeTokenFromUrl();
    wire();
    setLang(I18n.lang);
    if (S.token) signIn();
    else resumeSession().then((ok) => (ok ? signIn() : showSignin()));
  });
})();

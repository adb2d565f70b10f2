// Portcullis operator dashboard. Plain JavaScript, no framework, no build
// step: it polls /ui/api/state every 2 s and draws the integrations with
// DOM calls only (the CSP enforces Trusted Types, so no HTML strings).
'use strict';

(() => {
  const POLL_MS = 2000;
  let csrf = '';
  let timer = 0;
  const cards = new Map();

  // --- small DOM helpers ---------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }
  function kv(parent, label) {
    const row = el('div', 'kv');
    row.append(el('span', 'k', label));
    const v = el('span', 'v');
    row.append(v);
    parent.append(row);
    return v;
  }

  // --- formatting ------------------------------------------------------------
  const pct = (x) => (100 * x).toFixed(x > 0 && x < 0.001 ? 2 : 1) + '%';
  function ms(x) {
    if (!x) return '–';
    if (x >= 1000) return (x / 1000).toFixed(2) + ' s';
    return (x >= 100 ? x.toFixed(0) : x.toFixed(1)) + ' ms';
  }
  function age(sec) {
    if (sec === undefined || sec === null) return '–';
    const d = Math.floor(sec / 86400), h = Math.floor((sec % 86400) / 3600), m = Math.floor((sec % 3600) / 60);
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + m + 'm';
    if (m > 0) return m + 'm';
    return Math.max(0, Math.floor(sec)) + 's';
  }
  function clock(iso) {
    if (!iso) return '–';
    const t = new Date(iso);
    return isNaN(t) ? '–' : t.toLocaleTimeString([], { hour12: false });
  }
  function when(iso) {
    if (!iso) return '–';
    const t = new Date(iso);
    return isNaN(t) ? '–' : t.toLocaleString([], { hour12: false });
  }

  // --- server calls ----------------------------------------------------------
  function toLogin() { window.location.assign('/ui/login'); }

  async function post(url, body) {
    const res = await fetch(url, {
      method: 'POST', credentials: 'same-origin', cache: 'no-store',
      headers: { 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' },
      body: body === undefined ? '' : JSON.stringify(body),
    });
    if (res.status === 401) { toLogin(); throw new Error('logged out'); }
    let data = {};
    try { data = await res.json(); } catch (_) { /* empty */ }
    return { ok: res.ok && data.ok !== false, message: data.message || data.error || res.statusText };
  }

  function flash(text, bad) {
    const f = document.getElementById('flash');
    f.textContent = text;
    f.className = 'flash' + (bad ? ' bad' : ' good');
    f.hidden = false;
  }

  // Every action is confirmed in a modal dialog first.
  function confirmThen(text, action) {
    const dlg = document.getElementById('confirm');
    document.getElementById('confirm-text').textContent = text;
    dlg.returnValue = '';
    dlg.onclose = async () => {
      if (dlg.returnValue !== 'ok') return;
      try {
        const r = await action();
        flash(r.message, !r.ok);
      } catch (e) {
        flash(String(e.message || e), true);
      }
      refresh();
    };
    dlg.showModal();
    document.getElementById('confirm-cancel').focus();
  }

  function act(name, action, text) {
    confirmThen(text, () => post('/ui/api/integrations/' + encodeURIComponent(name) + '/' + action));
  }

  // --- sparklines -------------------------------------------------------------
  const W = 120, H = 28;
  function sparkBox(label) {
    const box = el('figure', 'spark');
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
    s.append(svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'axis' }));
    box.append(s);
    const cap = el('figcaption', '', label);
    box.append(cap);
    return { box, s, cap, lines: [] };
  }
  // draw puts one polyline per series on a shared scale.
  function draw(sp, series, classes) {
    let max = 0;
    for (const xs of series) for (const x of xs) max = Math.max(max, x);
    if (max <= 0) max = 1;
    series.forEach((xs, i) => {
      let line = sp.lines[i];
      if (!line) {
        line = svg('polyline', { class: classes[i], fill: 'none', 'vector-effect': 'non-scaling-stroke' });
        sp.s.append(line);
        sp.lines[i] = line;
      }
      const step = xs.length > 1 ? W / (xs.length - 1) : W;
      line.setAttribute('points', xs.map((x, j) => `${(j * step).toFixed(1)},${(H - 1 - (x / max) * (H - 3)).toFixed(1)}`).join(' '));
    });
    return max;
  }

  // --- one integration card -------------------------------------------------
  function makeCard(name) {
    const c = { name };
    const root = el('article', 'card');
    root.id = 'int-' + name;
    root.dataset.name = name;
    const head = el('header', 'card-head');
    c.dot = el('span', 'dot');
    head.append(c.dot, el('h2', 'name', name));
    c.badge = el('span', 'badge');
    c.badge.dataset.role = 'health';
    head.append(c.badge);
    root.append(head);
    c.upstream = el('div', 'muted small');
    c.reasons = el('div', 'reasons');
    root.append(c.upstream, c.reasons);

    const nums = el('div', 'nums');
    const num = (label) => {
      const b = el('div', 'num');
      const v = el('strong', '', '–');
      b.append(v, el('span', 'muted', label));
      nums.append(b);
      return v;
    };
    c.rps = num('req/s');
    c.r4 = num('4xx');
    c.r5 = num('5xx');
    c.p50 = num('p50');
    c.p99 = num('p99');
    c.fb = num('fallback');
    root.append(nums);

    const sparks = el('div', 'sparks');
    c.sReq = sparkBox('requests/s, last hour');
    c.sErr = sparkBox('4xx / 5xx');
    c.sLat = sparkBox('p50 / p99 latency');
    sparks.append(c.sReq.box, c.sErr.box, c.sLat.box);
    root.append(sparks);

    const grid = el('div', 'details');
    const state = el('div', 'col');
    state.append(el('h3', '', 'Resilience'));
    c.breaker = kv(state, 'Circuit breaker');
    c.limiter = kv(state, 'Rate-limit budget');
    c.vendor = kv(state, 'Vendor quota left');
    c.inflight = kv(state, 'In flight');
    c.retry = kv(state, 'Retry budget');
    const right = el('div', 'col');
    c.slaHead = el('h3', '', 'SLA month to date');
    right.append(c.slaHead);
    c.avail = kv(right, 'Availability');
    c.slap99 = kv(right, 'p99 latency');
    c.calls = kv(right, 'Calls');
    c.avail.dataset.role = 'sla-availability';
    c.slap99.dataset.role = 'sla-p99';
    right.append(el('h3', '', 'Credential'));
    c.cred = kv(right, 'Type / version');
    c.credAge = kv(right, 'Age');
    c.credRefresh = kv(right, 'Last refresh');
    grid.append(state, right);
    root.append(grid);

    const actions = el('div', 'actions');
    c.kill = el('button', 'btn danger');
    c.kill.type = 'button';
    c.kill.dataset.action = 'kill';
    c.kill.addEventListener('click', () => {
      if (c.disabled) {
        act(name, 'enable', `Turn the kill switch OFF for ${name}? Calls will reach the vendor again.`);
      } else {
        act(name, 'disable', `Turn the kill switch ON for ${name}? Every call will be refused with integration_disabled.`);
      }
    });
    const refreshBtn = el('button', 'btn', 'Refresh credential');
    refreshBtn.type = 'button';
    refreshBtn.dataset.action = 'refresh-credentials';
    refreshBtn.addEventListener('click', () => act(name, 'refresh-credentials',
      `Force a credential refresh for ${name}? The gateway re-reads the secret or fetches a new token now.`));
    actions.append(c.kill, refreshBtn);

    c.chaos = el('div', 'chaos');
    c.chaos.hidden = true;
    c.chaosKind = el('select');
    c.chaosKind.setAttribute('aria-label', 'chaos fault kind');
    for (const k of ['error', 'latency', 'reset', 'revoked']) c.chaosKind.append(new Option(k, k));
    c.chaosFor = el('select');
    c.chaosFor.setAttribute('aria-label', 'chaos duration');
    for (const d of ['1m', '5m', '15m']) c.chaosFor.append(new Option(d, d));
    c.chaosFor.value = '5m';
    const start = el('button', 'btn', 'Start chaos');
    start.type = 'button';
    start.dataset.action = 'chaos-start';
    start.addEventListener('click', () => {
      const kind = c.chaosKind.value, dur = c.chaosFor.value;
      confirmThen(`Start a chaos fault on ${name}: ${kind} for ${dur}? Real callers will see it.`,
        () => post('/ui/api/chaos/start', { integration: name, kind, for: dur }));
    });
    c.chaosStop = el('button', 'btn', 'Stop chaos');
    c.chaosStop.type = 'button';
    c.chaosStop.dataset.action = 'chaos-stop';
    c.chaosStop.addEventListener('click', () => confirmThen(`Stop every chaos fault on ${name}?`,
      () => post('/ui/api/chaos/stop', { integration: name })));
    c.chaosActive = el('span', 'muted small');
    c.chaos.append(c.chaosKind, c.chaosFor, start, c.chaosStop, c.chaosActive);
    actions.append(c.chaos);
    root.append(actions);
    c.root = root;
    return c;
  }

  function updateCard(c, v, st) {
    c.disabled = v.disabled;
    c.root.dataset.health = v.health;
    c.root.className = 'card ' + v.health;
    c.badge.textContent = { ok: 'OK', warn: 'WARN', bad: 'FAILING', off: 'DISABLED' }[v.health] || v.health;
    c.upstream.textContent = `${v.upstream} · ${v.routes} route${v.routes === 1 ? '' : 's'}`;
    c.reasons.textContent = v.reasons.length ? v.reasons.join(' · ') : 'healthy';

    const m = v.traffic.last_minute;
    c.rps.textContent = m.rps.toFixed(m.rps >= 10 ? 0 : 2);
    c.r4.textContent = pct(m.rate_4xx);
    c.r5.textContent = pct(m.rate_5xx);
    c.r5.className = m.rate_5xx >= st.thresholds.bad_rate_5xx ? 'hot' : '';
    c.p50.textContent = ms(m.p50_ms);
    c.p99.textContent = ms(m.p99_ms);
    c.fb.textContent = String(m.fallback);

    const sp = v.traffic.sparks, step = sp.step_seconds || 30;
    const maxRps = draw(c.sReq, [sp.requests.map((x) => x / step)], ['l-req']);
    c.sReq.cap.textContent = `requests/s, last hour (max ${maxRps.toFixed(maxRps >= 10 ? 0 : 2)})`;
    draw(c.sErr, [sp.count_4xx, sp.count_5xx], ['l-4xx', 'l-5xx']);
    const maxLat = draw(c.sLat, [sp.p50_ms, sp.p99_ms], ['l-p50', 'l-p99']);
    c.sLat.cap.textContent = `p50 / p99 latency (max ${ms(maxLat)})`;

    c.breaker.textContent = v.breaker + (v.breaker_since ? ` since ${clock(v.breaker_since)}` : '');
    c.breaker.className = 'v ' + (v.breaker === 'open' ? 'hot' : v.breaker === 'half-open' ? 'warm' : '');
    const l = v.limiter;
    c.limiter.textContent = l.rate > 0 ? `${Math.floor(l.tokens)} / ${l.burst} tokens at ${l.rate}/s · ${l.refused} refused` : `no limit · ${l.refused} refused`;
    c.vendor.textContent = l.vendor_remaining < 0 ? 'unknown' : String(l.vendor_remaining) + (l.vendor_reset ? ` (resets ${clock(l.vendor_reset)})` : '');
    if (l.paused_until) c.vendor.textContent += ` · paused until ${clock(l.paused_until)}`;
    c.inflight.textContent = `${v.in_flight} / ${v.max_in_flight || '∞'}`;
    c.retry.textContent = `${v.retry_budget.retries} used of ${v.retry_budget.allowed.toFixed(1)} allowed`;

    if (v.sla) {
      const s = v.sla;
      const mark = (met) => (met === undefined ? '' : met ? ' ✓' : ' ✗');
      c.avail.textContent = `${s.availability_pct.toFixed(3)}%` + (s.target_uptime_pct ? ` (SLA ${s.target_uptime_pct}%${mark(s.uptime_met)})` : '');
      c.avail.className = 'v ' + (s.uptime_met === false ? 'hot' : '');
      c.slap99.textContent = ms(s.p99_ms) + (s.target_p99_ms ? ` (SLA ${ms(s.target_p99_ms)}${mark(s.p99_met)})` : '');
      c.slap99.className = 'v ' + (s.p99_met === false ? 'hot' : '');
      c.calls.textContent = `${s.calls} (${s.failed} failed) since ${when(s.since)}`;
    } else {
      c.avail.textContent = c.slap99.textContent = c.calls.textContent = 'not measured';
    }
    const cr = v.credential;
    if (cr) {
      c.cred.textContent = cr.type + (cr.version ? ' / ' + cr.version : '') + (cr.revoked ? ' · REVOKED' : '');
      c.cred.className = 'v ' + (cr.revoked ? 'hot' : '');
      c.credAge.textContent = (cr.created ? age(cr.age_seconds) : 'unknown') + (cr.max_age_seconds ? ` (max ${age(cr.max_age_seconds)})` : '') + (cr.overdue ? ' · rotate it' : '');
      c.credAge.className = 'v ' + (cr.overdue ? 'warm' : '');
      c.credRefresh.textContent = (cr.last_refresh ? clock(cr.last_refresh) : '–') + (cr.last_error ? ` · ${cr.last_error}` : '');
    } else {
      c.cred.textContent = 'none';
      c.credAge.textContent = c.credRefresh.textContent = '–';
    }

    c.kill.textContent = v.disabled ? 'Kill switch: ON — turn off' : 'Kill switch: off — turn on';
    c.kill.className = 'btn ' + (v.disabled ? 'primary' : 'danger');

    const chaos = st.features.chaos && st.chaos;
    c.chaos.hidden = !(chaos && chaos.enabled);
    if (chaos && chaos.enabled) {
      const mine = chaos.faults.filter((f) => f.integration === v.name);
      c.chaosStop.disabled = mine.length === 0;
      c.chaosActive.textContent = mine.map((f) => `${f.kind} (${f.id}) until ${clock(f.expires_at)}`).join(', ');
    }
  }

  // --- sections ---------------------------------------------------------------
  function row(cells) {
    const tr = el('tr');
    for (const x of cells) tr.append(el('td', '', x === undefined || x === '' ? '–' : String(x)));
    return tr;
  }

  function render(st) {
    document.getElementById('updated').textContent = 'updated ' + clock(st.now);
    document.getElementById('actor').textContent = st.actor;
    const probs = document.getElementById('problems');
    probs.hidden = st.problems.length === 0;
    probs.textContent = st.problems.length ? 'Could not read: ' + st.problems.join(', ') + ' (see the gateway log).' : '';

    const box = document.getElementById('integrations');
    const seen = new Set();
    for (const v of st.integrations) {
      let c = cards.get(v.name);
      if (!c) {
        c = makeCard(v.name);
        cards.set(v.name, c);
      }
      box.append(c.root); // keeps the server's order
      updateCard(c, v, st);
      seen.add(v.name);
    }
    for (const [name, c] of cards) {
      if (!seen.has(name)) { c.root.remove(); cards.delete(name); }
    }
    if (st.integrations.length === 0 && !box.firstChild) box.append(el('p', 'muted', 'No integrations configured.'));

    document.getElementById('queue-section').hidden = !st.features.queue;
    if (st.queue) {
      document.getElementById('queue').textContent = `${st.queue.depth} queued call${st.queue.depth === 1 ? '' : 's'}` +
        (st.queue.depth > 0 && st.queue.oldest ? `, oldest ${age(st.queue.oldest_age_seconds)} old` : '');
    }
    document.getElementById('anomalies-section').hidden = !st.features.anomalies;
    const an = document.getElementById('anomalies');
    an.replaceChildren(...st.anomalies.map((a) => row([when(a.time), a.kind, a.integration, a.route, a.field, a.rule, a.message])));
    if (st.anomalies.length === 0) an.append(row(['none', '', '', '', '', '', '']));
    document.getElementById('findings-section').hidden = !st.features.findings;
    const fi = document.getElementById('findings');
    fi.replaceChildren(...st.findings.map((f) => row([f.severity, f.id, f.subject, f.message, f.fix])));
    if (st.findings.length === 0) fi.append(row(['none', '', '', '', '']));
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const res = await fetch('/ui/api/state', { credentials: 'same-origin', cache: 'no-store' });
      if (res.status === 401) { toLogin(); return; }
      if (!res.ok) throw new Error('state: HTTP ' + res.status);
      render(await res.json());
      document.body.classList.remove('stale');
    } catch (e) {
      document.body.classList.add('stale');
      document.getElementById('updated').textContent = 'disconnected — retrying';
    }
    timer = setTimeout(refresh, POLL_MS);
  }

  async function start() {
    const res = await fetch('/ui/api/session', { credentials: 'same-origin', cache: 'no-store' });
    if (res.status === 401) { toLogin(); return; }
    const s = await res.json();
    csrf = s.csrf;
    document.getElementById('actor').textContent = s.actor;
    document.getElementById('logout').addEventListener('click', async () => {
      try { await post('/ui/logout'); } finally { toLogin(); }
    });
    refresh();
  }

  document.addEventListener('DOMContentLoaded', start);
})();

// loadfeed dashboard: polls the poller's /status and /status/history once a
// second and draws, per service, the weight, CPU, memory and connections of
// every server over the last minutes (uPlot), the servers' states and
// reasons, the last weight changes, and policy or engine problems. Which
// metrics it charts and tabulates, and how, comes from /status's
// metricCatalog, so a metric added to the catalog shows here by itself.
// Plain browser JavaScript served as is; every text from the poller is
// inserted with textContent (node ids and reasons come from agents and files).
(() => {
  'use strict';

  const POLL_MS = 1000;
  const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#475569', '#ea580c'];
  const pct = (v) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%`);
  const num = (v) => (v === null || v === undefined ? '–' : String(Math.round(v)));
  const sig = (v) => (v === null || v === undefined ? '–' : String(Number(v.toPrecision(3))));
  const FORMATS = { percent: pct, integer: num, decimal: sig };
  /** The catalog's display groups (label, format, column, chart, fields), from the first /status. */
  let catalog = [];
  /** The charts: weight, each charted metric (by field), connections; set with the catalog. */
  let METRICS = [];
  function setCatalog(groups) {
    catalog = groups;
    METRICS = [
      { key: 'weight', title: 'weight', fmt: num },
      ...groups.filter((g) => g.chart).flatMap((g) => g.fields.map((f) => ({ key: f, title: g.fields.length > 1 ? `${g.label} ${f}` : g.label, fmt: FORMATS[g.format] }))),
      { key: 'connections', title: 'connections', fmt: num },
    ];
    const heads = ['node', 'state', 'host', 'cores', ...groups.map((g) => g.label), 'samples', 'last sample'];
    $('agent-head').replaceChildren(...heads.map((h, i) => el('th', { class: i >= 3 ? 'num' : '', text: h })));
  }
  /** A group's values in a table cell: one value, or each of a shared column's (a / b / c). */
  function groupCell(g, of) {
    const values = g.fields.map(of);
    return values.every((v) => v === null || v === undefined) ? '–' : values.map(FORMATS[g.format]).join(' / ');
  }
  /** A history series of a server: weight and connections, or a charted metric by field. */
  const seriesOf = (s, key) => (key === 'weight' || key === 'connections' ? s[key] : s.metrics[key]);
  const GOOD_STATES = new Set(['live']);
  const WARN_STATES = new Set(['blackout', 'slow-start', 'held', 'drained', 'fallback', 'guarded']);

  /** name → { t: number[] (s), servers: Map(address → { node, [chart key]: values[] }), view } */
  const services = new Map();
  let since = 0;
  let windowS = 300;

  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  async function getJson(path) {
    const res = await fetch(path, { cache: 'no-store' });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return res.json();
  }

  // ---- history: merge the new frames, keep the chosen window -------------

  function mergeHistory(history) {
    const seen = new Set();
    for (const hs of history.services) {
      seen.add(hs.name);
      let store = services.get(hs.name);
      if (!store) {
        store = { t: [], servers: new Map(), view: null };
        services.set(hs.name, store);
      }
      const before = store.t.length;
      for (const t of hs.t) store.t.push(t / 1000);
      for (const s of hs.servers) {
        let series = store.servers.get(s.address);
        if (!series) {
          series = { node: s.node };
          for (const m of METRICS) series[m.key] = new Array(before).fill(null);
          store.servers.set(s.address, series);
        }
        series.node = s.node;
        for (const m of METRICS) series[m.key].push(...seriesOf(s, m.key));
      }
      // Servers absent from these frames get gaps, so columns stay aligned.
      for (const series of store.servers.values()) {
        for (const m of METRICS) while (series[m.key].length < store.t.length) series[m.key].push(null);
      }
      const last = store.t[store.t.length - 1];
      let drop = 0;
      while (drop < store.t.length && store.t[drop] < last - 600) drop += 1;
      if (drop > 0) {
        store.t.splice(0, drop);
        for (const series of store.servers.values()) for (const m of METRICS) series[m.key].splice(0, drop);
      }
      for (const [address, series] of store.servers) {
        if (series.weight.every((v) => v === null)) store.servers.delete(address);
      }
      if (hs.t.length > 0) since = Math.max(since, hs.t[hs.t.length - 1]);
    }
    if (history.services.length > 0 || since > 0) {
      for (const [name, store] of services) {
        if (!seen.has(name)) {
          store.view?.section.remove();
          services.delete(name);
        }
      }
    }
  }

  // ---- one section per service ---------------------------------------------

  function serviceView(name, store) {
    if (store.view) return store.view;
    const title = el('h2', { text: name });
    const meta = el('span', { class: 'muted' });
    const charts = el('div', { class: 'charts' });
    const boxes = {};
    for (const m of METRICS) {
      const box = el('div', { class: 'chart', 'data-metric': m.key, 'data-points': '0' }, el('h3', { text: m.title }));
      boxes[m.key] = box;
      charts.append(box);
    }
    const rows = el('tbody');
    const columns = catalog.filter((g) => g.column).map((g) => g.label);
    const heads = ['', 'server', 'state', 'weight', 'share', ...columns, 'conns', 'app', 'why'];
    const table = el(
      'table',
      { class: 'servers' },
      el('thead', {}, el('tr', {}, ...heads.map((h, i) => el('th', { class: i >= 3 && i < heads.length - 2 ? 'num' : '', text: h })))),
      rows,
    );
    const changes = el('ol', { class: 'changes' });
    const section = el(
      'section',
      { class: 'card service', 'data-service': name },
      el('div', { class: 'service-head' }, title, meta),
      charts,
      el('div', { class: 'below' }, el('div', { class: 'table-wrap' }, table), el('div', { class: 'changes-wrap' }, el('h3', { text: 'last weight changes' }), changes)),
    );
    $('services').append(section);
    store.view = { section, meta, boxes, rows, changes, plots: {}, order: '' };
    return store.view;
  }

  function colorOf(store, address) {
    const i = [...store.servers.keys()].indexOf(address);
    return COLORS[(i < 0 ? 0 : i) % COLORS.length];
  }

  function drawCharts(store) {
    const view = store.view;
    const addresses = [...store.servers.keys()];
    const order = addresses.join(' ');
    const cutoff = (store.t[store.t.length - 1] ?? 0) - windowS;
    let from = 0;
    while (from < store.t.length && store.t[from] < cutoff) from += 1;
    const xs = store.t.slice(from);
    for (const m of METRICS) {
      const box = view.boxes[m.key];
      const data = [xs, ...addresses.map((a) => store.servers.get(a)[m.key].slice(from))];
      let plot = view.plots[m.key];
      if (plot && view.order !== order) {
        plot.destroy();
        plot = null;
      }
      if (!plot) {
        plot = new uPlot(
          {
            width: Math.max(240, box.clientWidth - 8),
            height: 170,
            legend: { show: true, live: false },
            cursor: { drag: { x: false, y: false } },
            scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max * 1.1, m.fmt === pct ? 0.1 : 1)] } },
            axes: [{ stroke: '#64748b', grid: { stroke: '#e2e8f0' } }, { stroke: '#64748b', grid: { stroke: '#e2e8f0' }, size: 48, values: (u, vals) => vals.map((v) => m.fmt(v)) }],
            series: [
              {},
              ...addresses.map((a) => ({
                label: store.servers.get(a).node ?? a,
                stroke: colorOf(store, a),
                width: 2,
                value: (u, v) => m.fmt(v),
              })),
            ],
          },
          data,
          box,
        );
        view.plots[m.key] = plot;
      } else {
        plot.setData(data);
      }
      box.setAttribute('data-points', String(xs.length));
      box.setAttribute('data-series', String(addresses.length));
    }
    view.order = order;
  }

  function drawService(svc, store, changes) {
    const view = serviceView(svc.name, store);
    view.meta.textContent = `${svc.engine} · ${svc.address} · ${svc.servers.length} server${svc.servers.length === 1 ? '' : 's'} · total weight ${svc.totalWeight}`;
    drawCharts(store);
    view.rows.replaceChildren(
      ...svc.servers.map((s) => {
        const share = el('span', { class: 'bar' }, el('span', { class: 'fill' }));
        share.firstChild.style.width = `${Math.round(s.share * 100)}%`;
        const swatch = el('span', { class: 'swatch' });
        swatch.style.background = colorOf(store, s.address);
        return el(
          'tr',
          { 'data-server': s.address, 'data-weight': String(s.weight), 'data-state': s.state },
          el('td', {}, swatch),
          el('td', {}, el('div', { text: s.node ?? '(no agent)' }), el('div', { class: 'muted small', text: s.address })),
          el('td', {}, el('span', { class: `state ${stateClass(s.state)}`, text: s.state })),
          el('td', { class: 'num', text: String(s.weight) }),
          el('td', { class: 'num' }, el('span', { text: pct(s.share) }), share),
          ...catalog.filter((g) => g.column).map((g) => el('td', { class: g.fields.length > 1 ? 'num small' : 'num', text: groupCell(g, (f) => s.metrics[f]) })),
          el('td', { class: 'num', text: num(s.connections) }),
          // The application metrics the service's policy reads, as the server last reported them.
          el('td', { class: 'small', text: Object.entries(s.app).map(([k, v]) => `${k.replace(/^app\./, '')} ${sig(v)}`).join(' · ') || '–' }),
          el('td', { class: 'reason', text: s.reason || '–' }),
        );
      }),
    );
    const mine = changes.filter((c) => c.service === svc.name).slice(-12).reverse();
    view.changes.replaceChildren(
      ...(mine.length === 0
        ? [el('li', { class: 'muted', text: 'no weight change yet' })]
        : mine.map((c) =>
            el(
              'li',
              {},
              el('span', { class: 'muted', text: new Date(c.at).toLocaleTimeString() }),
              ' ',
              el('strong', { text: c.node ?? c.server }),
              ` ${c.from === null ? 'new' : c.from} → ${c.to} `,
              el('span', { class: 'muted', text: c.reason }),
            ),
          )),
    );
  }

  function stateClass(state) {
    if (GOOD_STATES.has(state)) return 'ok';
    if (WARN_STATES.has(state)) return 'warn';
    return 'bad';
  }

  // ---- page-wide parts -----------------------------------------------------

  function drawHeader(status) {
    const health = $('health');
    health.textContent = status.health.status;
    health.className = `badge badge-${status.health.status}`;
    health.title = status.health.reasons.join('\n');
    const p = status.policy;
    $('policy').textContent = `policy ${p.file}, loaded ${new Date(p.loadedAt).toLocaleTimeString()} · reloads ${p.reloads.ok} ok, ${p.reloads.refused} refused`;
    $('updated').textContent = `updated ${new Date(status.generatedAt).toLocaleTimeString()}`;
    const problems = $('problems');
    const boxes = [];
    if (p.refused.length > 0) {
      boxes.push(
        el('div', { class: 'problem' },
          el('strong', { text: `Policy ${p.file} refused; the last good policy (loaded ${new Date(p.loadedAt).toLocaleString()}) stays in force:` }),
          el('ul', {}, ...p.refused.map((r) => el('li', { text: r })))),
      );
    }
    if (status.engineError) boxes.push(el('div', { class: 'problem' }, el('strong', { text: 'Engine failing: ' }), status.engineError));
    problems.replaceChildren(...boxes);
    problems.hidden = boxes.length === 0;
  }

  function drawAgents(nodes) {
    const rows = [...nodes].sort((a, b) => (a.id < b.id ? -1 : 1)).map((n) =>
      el(
        'tr',
        { 'data-node': n.id },
        el('td', { text: n.id }),
        el('td', {}, el('span', { class: `state ${n.state === 'live' ? (n.drained === null ? 'ok' : 'warn') : 'bad'}`, text: n.drained === null ? n.state : `${n.state}, drained` })),
        el('td', { class: 'muted', text: n.hostname }),
        el('td', { class: 'num', text: String(Math.round(n.cores * 100) / 100) }),
        ...catalog.map((g) => el('td', { class: g.fields.length > 1 ? 'num small' : 'num', text: groupCell(g, (f) => n[f]) })),
        el('td', { class: 'num', text: String(n.samples) }),
        el('td', { class: 'num', text: n.sampleAgeMs === null ? '–' : `${(n.sampleAgeMs / 1000).toFixed(1)} s ago` }),
      ),
    );
    const colspan = String(6 + catalog.length);
    $('agent-rows').replaceChildren(...(rows.length > 0 ? rows : [el('tr', {}, el('td', { colspan, class: 'muted', text: 'no agent connected' }))]));
  }

  // Per resource type: the version ACKed, marked when the last one sent is not (yet) ACKed.
  const XDS_TYPES = ['Listener', 'RouteConfiguration', 'Cluster', 'ClusterLoadAssignment'];
  function drawXds(xds) {
    $('xds').hidden = xds === null;
    if (xds === null) return;
    $('xds-summary').textContent = `on ${xds.listen || '–'} · version ${xds.version} · ${xds.responses} responses · ${xds.nacks} NACKs`;
    const rows = xds.clients.map((c) => {
      const byType = new Map(c.types.map((t) => [t.typeUrl.slice(t.typeUrl.lastIndexOf('.') + 1), t]));
      const version = (name) => {
        const t = byType.get(name);
        if (!t) return el('td', { class: 'muted', text: '–' });
        const behind = t.sentVersion !== t.ackedVersion;
        return el('td', { class: behind ? 'warn' : '', text: `${t.ackedVersion === null ? 'none' : t.ackedVersion}${behind ? ` (sent ${t.sentVersion})` : ''}` });
      };
      const nacks = c.types.reduce((n, t) => n + t.nacks, 0);
      const last = c.types.map((t) => t.lastNack).filter((m) => m !== null).pop() || '';
      return el(
        'tr',
        { 'data-xds-node': c.node },
        el('td', { text: c.node || '(no node id)' }),
        el('td', { class: 'muted', text: c.peer }),
        el('td', { class: 'muted', text: new Date(c.connectedAtMs).toLocaleTimeString() }),
        ...XDS_TYPES.map(version),
        el('td', { class: nacks > 0 ? 'num bad' : 'num', text: String(nacks) }),
        el('td', { class: 'small', text: last }),
      );
    });
    $('xds-rows').replaceChildren(...(rows.length > 0 ? rows : [el('tr', {}, el('td', { colspan: '9', class: 'muted', text: 'no xDS client connected' }))]));
  }

  function offline(err) {
    const health = $('health');
    health.textContent = 'unreachable';
    health.className = 'badge badge-unknown';
    health.title = String(err && err.message ? err.message : err);
    $('updated').textContent = `cannot reach the poller (${health.title}); retrying`;
  }

  async function tick() {
    try {
      const [status, history] = await Promise.all([getJson('status'), getJson(`status/history?since=${since}`)]);
      if (METRICS.length === 0) setCatalog(status.metricCatalog);
      mergeHistory(history);
      drawHeader(status);
      for (const svc of status.services) {
        const store = services.get(svc.name) || { t: [], servers: new Map(), view: null };
        services.set(svc.name, store);
        drawService(svc, store, status.changes);
      }
      drawAgents(status.nodes);
      drawXds(status.xds);
      document.body.setAttribute('data-ready', 'true');
    } catch (err) {
      offline(err);
    } finally {
      setTimeout(() => void tick(), POLL_MS);
    }
  }

  $('window').addEventListener('change', (e) => {
    windowS = Number(e.target.value);
    for (const store of services.values()) if (store.view) drawCharts(store);
  });
  new ResizeObserver(() => {
    for (const store of services.values()) {
      if (!store.view) continue;
      for (const m of METRICS) {
        const plot = store.view.plots[m.key];
        const width = Math.max(240, store.view.boxes[m.key].clientWidth - 8);
        if (plot && plot.width !== width) plot.setSize({ width, height: 170 });
      }
    }
  }).observe($('services'));
  void tick();
})();

// SPDX-License-Identifier: Apache-2.0
// The kiln dashboard. Everything that came from a build (log lines, file
// names, spec fields, reasons, project names) is hostile: it reaches the
// page through textContent and createElement only. Never innerHTML,
// insertAdjacentHTML, document.write or a URL built from build data.
'use strict';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let cleanup = [];
let me = null;

// el('td', {class: 'mono'}, 'text', childNode, ...): text is text.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'onclick') e.addEventListener('click', v);
    else if (k === 'onchange') e.addEventListener('change', v);
    else if (k === 'onsubmit') e.addEventListener('submit', v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function isId(v) {
  return Number.isSafeInteger(v) && v > 0;
}

function isDigest(v) {
  return typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
}

function isProject(v) {
  return typeof v === 'string' && /^[a-z0-9][a-z0-9-]{0,62}$/.test(v);
}

function bytes(n) {
  if (typeof n !== 'number') return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}

function ms(n) {
  return typeof n === 'number' ? (n / 1000).toFixed(3) + ' s' : '-';
}

function stateCell(s) {
  const st = typeof s === 'string' && /^[a-z_]+$/.test(s) ? s : 'unknown';
  return el('td', {class: 'state-' + st}, String(s));
}

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// GET a JSON document. 401: back to the login form.
async function getJSON(path) {
  const r = await fetch(path, {credentials: 'same-origin', headers: {'Accept': 'application/json'}});
  if (r.status === 401) {
    showLogin('Your session ended; log in again.');
    throw new HttpError(401, 'unauthorized');
  }
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) {
    const msg = body && body.error && typeof body.error.message === 'string' ? body.error.message : 'HTTP ' + r.status;
    throw new HttpError(r.status, msg);
  }
  return body;
}

// A section that depends on an endpoint this server may not have yet.
function unavailable(err) {
  if (err instanceof HttpError && (err.status === 404 || err.status === 405))
    return el('p', {class: 'muted'}, 'Not available on this server.');
  if (err instanceof HttpError && err.status === 403)
    return el('p', {class: 'muted'}, 'Your token may not see this (' + err.message + ').');
  return el('p', {class: 'error'}, 'Error: ' + (err && err.message ? err.message : String(err)));
}

function reset() {
  for (const f of cleanup) f();
  cleanup = [];
  clear(main);
}

// ---- login ----

function showLogin(message) {
  reset();
  me = null;
  nav.hidden = true;
  const input = el('input', {type: 'password', id: 'token', name: 'token', autocomplete: 'off', placeholder: 'kiln_…'});
  const msg = el('p', {class: 'error', id: 'login-error'}, message || '');
  const form = el('form', {class: 'login', id: 'login', onsubmit: async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    const r = await fetch('/login', {
      method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-Kiln-Login': '1'},
      body: JSON.stringify({token: input.value}),
    });
    input.value = '';
    if (r.ok) {
      location.hash = '#/jobs';
      start();
    } else {
      msg.textContent = 'Login refused: invalid, expired or revoked token.';
    }
  }},
  el('h1', {}, 'Log in to kiln'),
  el('label', {for: 'token'}, 'API token', input),
  el('button', {type: 'submit', id: 'login-button'}, 'Log in'),
  msg);
  main.append(form);
  input.focus();
}

document.getElementById('logout').addEventListener('click', async () => {
  await fetch('/logout', {method: 'POST', credentials: 'same-origin', headers: {'X-Kiln-Login': '1'}});
  showLogin('Logged out.');
});

// ---- jobs ----

let alertsByJob = new Map();

async function loadAlerts() {
  try {
    const a = await getJSON('/v1/alerts?limit=200');
    alertsByJob = new Map();
    for (const x of a.alerts || []) {
      if (!isId(x.job)) continue;
      if (!alertsByJob.has(x.job)) alertsByJob.set(x.job, []);
      alertsByJob.get(x.job).push(x);
    }
    return a.alerts || [];
  } catch (e) {
    if (e instanceof HttpError && e.status === 401) throw e;
    return null;
  }
}

function viewJobs(params) {
  const project = el('input', {id: 'f-project', name: 'project', value: params.get('project') || '', placeholder: 'all'});
  const state = el('select', {id: 'f-state', name: 'state'});
  for (const s of ['', 'queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'interrupted']) {
    const o = el('option', {value: s}, s || 'any');
    if (s === (params.get('state') || '')) o.selected = true;
    state.append(o);
  }
  const apply = (ev) => {
    if (ev) ev.preventDefault();
    const q = new URLSearchParams();
    if (project.value) q.set('project', project.value);
    if (state.value) q.set('state', state.value);
    location.hash = '#/jobs' + (q.toString() ? '?' + q.toString() : '');
  };
  state.addEventListener('change', apply);
  const form = el('form', {class: 'filters', onsubmit: apply},
    el('label', {}, 'Project', project), el('label', {}, 'State', state),
    el('button', {type: 'submit'}, 'Filter'));
  const tbody = el('tbody', {id: 'jobs-body'});
  const status = el('p', {class: 'muted', id: 'jobs-status'}, 'Loading…');
  main.append(el('h1', {}, 'Jobs'), form, status,
    el('table', {id: 'jobs'}, el('thead', {}, el('tr', {},
      el('th', {}, 'Job'), el('th', {}, 'Project'), el('th', {}, 'State'), el('th', {}, 'Reason'),
      el('th', {}, 'Created'), el('th', {}, 'Finished'), el('th', {}, 'Alerts'))), tbody));

  const refresh = async () => {
    const q = new URLSearchParams({limit: '100'});
    if (params.get('project')) q.set('project', params.get('project'));
    if (params.get('state')) q.set('state', params.get('state'));
    try {
      await loadAlerts();
      const d = await getJSON('/v1/jobs?' + q.toString());
      clear(tbody);
      for (const j of d.jobs || []) {
        if (!isId(j.id)) continue;
        const n = (alertsByJob.get(j.id) || []).length;
        tbody.append(el('tr', {'data-job': String(j.id)},
          el('td', {}, el('a', {href: '#/job/' + j.id}, '#' + j.id)),
          el('td', {}, j.project), stateCell(j.state), el('td', {}, j.reason || ''),
          el('td', {}, j.created_at || ''), el('td', {}, j.finished_at || ''),
          el('td', {class: n ? 'flag' : ''}, n ? '⚑ ' + n : '')));
      }
      status.textContent = (d.jobs || []).length + ' job(s), updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      if (e.status !== 401) status.textContent = 'Error: ' + e.message;
    }
  };
  refresh();
  const t = setInterval(refresh, 2000);
  cleanup.push(() => clearInterval(t));
}

// ---- one job ----

function kv(pairs) {
  const dl = el('dl', {class: 'kv'});
  for (const [k, v] of pairs) dl.append(el('dt', {}, k), el('dd', {}, v === null || v === undefined ? '-' : v));
  return dl;
}

async function viewJob(id) {
  const head = el('h1', {}, 'Job #' + id);
  const status = el('div', {id: 'job-status'});
  const resources = el('div', {id: 'job-resources'});
  const violations = el('div', {id: 'job-violations'});
  const artifacts = el('div', {id: 'job-artifacts'});
  const provenance = el('div', {id: 'job-provenance'});
  const network = el('div', {id: 'job-network'});
  const log = el('pre', {class: 'log', id: 'log'});
  main.append(head, status, el('h2', {}, 'Resource use'), resources,
    el('h2', {}, 'Violations and alerts'), violations,
    el('h2', {}, 'Network'), network,
    el('h2', {}, 'Artifacts'), artifacts, el('h2', {}, 'Provenance'), provenance,
    el('h2', {}, 'Log'), log);

  const render = async () => {
    const j = await getJSON('/v1/jobs/' + id);
    clear(status);
    status.append(kv([
      ['Project', j.project], ['State', el('span', {class: 'state-' + (/^[a-z_]+$/.test(j.state) ? j.state : 'x'), id: 'job-state'}, j.state)],
      ['Reason', j.reason], ['Exit code', j.exit_code], ['Error', j.error],
      ['Created', j.created_at], ['Started', j.started_at], ['Finished', j.finished_at],
      ['Spec digest', el('span', {class: 'mono'}, j.spec_sha256 || '-')],
      ['Source digest', el('span', {class: 'mono'}, j.source_sha256 || '-')],
      ['Script', el('span', {class: 'mono', id: 'job-script'}, j.spec && typeof j.spec.script === 'string' ? j.spec.script : '-')],
    ]));
    const r = j.report || {};
    clear(resources);
    resources.append(kv([
      ['Wall time', ms(r.wall_time_ms)], ['CPU (user + system)', typeof r.user_cpu_ms === 'number' ? ms(r.user_cpu_ms + (r.system_cpu_ms || 0)) : '-'],
      ['Peak memory', bytes(r.peak_memory_bytes)], ['Output', bytes(r.output_bytes)],
      ['Sandbox start', typeof r.setup_ms === 'number' ? r.setup_ms.toFixed(1) + ' ms' : '-'],
    ]));
    clear(violations);
    const rows = [];
    for (const [name, n] of Object.entries(r.denied_syscalls || {}))
      rows.push(el('tr', {}, el('td', {}, 'denied syscall'), el('td', {class: 'mono'}, name), el('td', {}, String(n))));
    if (['memory', 'pids', 'disk', 'timeout', 'output-limit'].includes(j.reason))
      rows.push(el('tr', {}, el('td', {}, 'limit hit'), el('td', {}, j.reason), el('td', {}, '1')));
    if (j.reason === 'secret_in_artifact')
      rows.push(el('tr', {class: 'flag'}, el('td', {}, 'secret in an artifact'), el('td', {}, j.error || ''), el('td', {}, '1')));
    await loadAlerts();
    for (const a of alertsByJob.get(id) || [])
      rows.push(el('tr', {class: 'flag'}, el('td', {}, '⚑ alert'), el('td', {}, a.rule), el('td', {}, a.detail || '')));
    violations.append(rows.length ? el('table', {}, el('tbody', {}, ...rows)) : el('p', {class: 'muted'}, 'None.'));
    return j;
  };

  let j;
  try { j = await render(); } catch (e) { if (e.status !== 401) status.append(unavailable(e)); return; }

  try {
    const a = await getJSON('/v1/jobs/' + id + '/artifacts');
    const tb = el('tbody', {id: 'artifacts-body'});
    for (const f of a.artifacts || []) {
      const link = isDigest(f.sha256) ? el('a', {href: '/v1/artifacts/' + f.sha256, download: ''}, 'download') : '';
      tb.append(el('tr', {}, el('td', {class: 'mono'}, f.name), el('td', {}, bytes(f.size)),
        el('td', {class: 'mono'}, f.sha256), el('td', {}, link)));
    }
    artifacts.append((a.artifacts || []).length ? el('table', {}, el('thead', {}, el('tr', {},
      el('th', {}, 'Name'), el('th', {}, 'Size'), el('th', {}, 'SHA-256'), el('th', {}, ''))), tb)
      : el('p', {class: 'muted'}, 'None.'));
  } catch (e) { if (e.status !== 401) artifacts.append(unavailable(e)); }

  try {
    const eg = await getJSON('/v1/jobs/' + id + '/egress');
    const tb = el('tbody', {id: 'network-body'});
    for (const a of eg.attempts || [])
      tb.append(el('tr', {class: a.allowed ? '' : 'flag'}, el('td', {}, a.kind), el('td', {class: 'mono'}, a.host || a.addr || ''),
        el('td', {}, String(a.port)), el('td', {}, a.allowed ? 'allowed' : 'refused'), el('td', {}, a.reason || ''),
        el('td', {}, bytes(a.bytes_up) + ' / ' + bytes(a.bytes_down))));
    network.append((eg.attempts || []).length ? el('table', {}, el('thead', {}, el('tr', {},
      el('th', {}, 'Kind'), el('th', {}, 'Destination'), el('th', {}, 'Port'), el('th', {}, 'Result'),
      el('th', {}, 'Reason'), el('th', {}, 'Up / down'))), tb) : el('p', {class: 'muted'}, 'None.'));
  } catch (e) { if (e.status !== 401) network.append(unavailable(e)); }

  try {
    const r = await fetch('/v1/jobs/' + id + '/provenance', {method: 'GET', credentials: 'same-origin'});
    if (r.ok) provenance.append(el('a', {href: '/v1/jobs/' + id + '/provenance', download: 'job-' + id + '.provenance.json'}, 'Download provenance'));
    else provenance.append(unavailable(new HttpError(r.status, 'HTTP ' + r.status)));
  } catch (e) { provenance.append(unavailable(e)); }

  // The live log: one EventSource, closed at the end (an EventSource
  // reconnects by itself, which would replay the log).
  const es = new EventSource('/v1/jobs/' + id + '/log?follow=1');
  cleanup.push(() => es.close());
  es.addEventListener('log', (ev) => {
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(document.createTextNode(ev.data + '\n'));
    if (atEnd) log.scrollTop = log.scrollHeight;
  });
  es.addEventListener('end', () => {
    es.close();
    render().catch(() => {});
  });
  es.onerror = () => { es.close(); };
  if (j && (j.state === 'queued' || j.state === 'running')) {
    const t = setInterval(() => render().catch(() => {}), 2000);
    cleanup.push(() => clearInterval(t));
  }
}

// ---- security ----

async function viewSecurity() {
  main.append(el('h1', {}, 'Security'));
  const alerts = el('div', {id: 'sec-alerts'});
  const viol = el('div', {id: 'sec-violations'});
  const events = el('div', {id: 'sec-events'});
  const rejected = el('div', {id: 'sec-rejections'});
  main.append(el('h2', {}, 'Alerts'), alerts, el('h2', {}, 'Recent violations'), viol,
    el('h2', {}, 'Refused signed submissions'), rejected,
    el('h2', {}, 'Rejected submissions and authentication failures'), events);
  try {
    const a = await getJSON('/v1/alerts?limit=100');
    const tb = el('tbody');
    for (const x of a.alerts || [])
      tb.append(el('tr', {class: 'flag'}, el('td', {}, x.created_at), el('td', {}, isId(x.job) ? el('a', {href: '#/job/' + x.job}, '#' + x.job) : ''),
        el('td', {}, x.project), el('td', {}, x.rule), el('td', {}, x.detail || '')));
    alerts.append((a.alerts || []).length ? el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Time'),
      el('th', {}, 'Job'), el('th', {}, 'Project'), el('th', {}, 'Rule'), el('th', {}, 'Detail'))), tb) : el('p', {class: 'muted'}, 'None.'));
  } catch (e) { if (e.status !== 401) alerts.append(unavailable(e)); }
  try {
    const s = await getJSON('/v1/security');
    const tv = el('tbody');
    for (const v of s.violations || [])
      tv.append(el('tr', {}, el('td', {}, v.finished_at || ''), el('td', {}, isId(v.job) ? el('a', {href: '#/job/' + v.job}, '#' + v.job) : ''),
        el('td', {}, v.project), el('td', {}, v.kind), el('td', {}, String(v.count))));
    viol.append((s.violations || []).length ? el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Time'),
      el('th', {}, 'Job'), el('th', {}, 'Project'), el('th', {}, 'Kind'), el('th', {}, 'Count'))), tv) : el('p', {class: 'muted'}, 'None.'));
    const tr = el('tbody');
    for (const x of s.rejections || [])
      tr.append(el('tr', {}, el('td', {}, x.time), el('td', {}, x.project), el('td', {}, x.code),
        el('td', {class: 'mono'}, x.key_id || ''), el('td', {}, x.message)));
    rejected.append((s.rejections || []).length ? el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Time'),
      el('th', {}, 'Project'), el('th', {}, 'Code'), el('th', {}, 'Key'), el('th', {}, 'Message'))), tr)
      : el('p', {class: 'muted'}, 'None.'));
    const te = el('tbody');
    for (const x of s.events || [])
      te.append(el('tr', {}, el('td', {}, x.time), el('td', {}, x.kind), el('td', {}, x.reason)));
    events.append((s.events || []).length ? el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Time'),
      el('th', {}, 'What'), el('th', {}, 'Reason'))), te) : el('p', {class: 'muted'}, 'None since kilnd started.'));
  } catch (e) {
    if (e.status !== 401) { viol.append(unavailable(e)); rejected.append(unavailable(e)); events.append(unavailable(e)); }
  }
}

// ---- policy ----

async function viewPolicy() {
  main.append(el('h1', {}, 'Policy'));
  const box = el('div', {id: 'policy'});
  main.append(box);
  let projects = [];
  try {
    const p = await getJSON('/v1/projects');
    projects = (p.projects || []).map((x) => x.name).filter(isProject);
  } catch (e) {
    if (e.status === 401) return;
    if (me && isProject(me.project)) projects = [me.project];
    else { box.append(unavailable(e)); return; }
  }
  for (const name of projects) {
    const sec = el('section', {}, el('h2', {}, name));
    box.append(sec);
    try {
      const pol = await getJSON('/v1/policies/' + name);
      sec.append(kv([['Digest', el('span', {class: 'mono'}, pol.digest || '-')],
        ['Source', pol.source || '-'], ['Last reload', pol.loaded_at || pol.reloaded_at || '-']]),
      el('pre', {class: 'log'}, JSON.stringify(pol, null, 2)));
    } catch (e) { if (e.status !== 401) sec.append(unavailable(e)); }
  }
}

// ---- routing ----

function route() {
  if (!me) return;
  reset();
  const h = location.hash || '#/jobs';
  const [path, qs] = h.slice(1).split('?');
  const params = new URLSearchParams(qs || '');
  let m;
  if ((m = /^\/job\/([1-9][0-9]{0,15})$/.exec(path))) viewJob(Number(m[1]));
  else if (path === '/security') viewSecurity();
  else if (path === '/policy') viewPolicy();
  else viewJobs(params);
}

async function start() {
  try {
    const r = await fetch('/v1/session', {credentials: 'same-origin', headers: {'Accept': 'application/json'}});
    if (!r.ok) { showLogin(''); return; }
    me = await r.json();
  } catch (e) { showLogin('Cannot reach kilnd.'); return; }
  nav.hidden = false;
  route();
}

window.addEventListener('hashchange', route);
start();

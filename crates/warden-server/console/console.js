// The Warden console: decision search and explanations, entitlement reviews, the
// service-account inventory and policy diffs, over Warden's own admin API.
//
// Served under a strict Content-Security-Policy (script-src 'self', no inline code or style).
// Every piece of data is put on the page with textContent or as attribute values through the
// DOM API, never parsed as markup: decision records carry strings that callers chose.
// The session is a cookie the page cannot read; the CSRF token it sends with every call is held
// in memory only, and GET /console/session hands it out again after a reload. The admin
// credential is sent once, to log in, and kept nowhere.

const state = {
  csrf: null,
  admin: null,
  expiresAt: null,
  tenant: '',
  lastSearch: null,
  campaign: null,
};

// ------------------------------------------------------------------------------------------
// DOM helpers

const $ = (id) => document.getElementById(id);

/** An element with attributes and children. Strings become text nodes, never markup. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'on') {
        for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
      } else if (key === 'class') {
        el.className = value;
      } else if (key === 'text') {
        el.textContent = String(value);
      } else if (key === 'hidden' || key === 'disabled' || key === 'checked' || key === 'required') {
        el[key] = Boolean(value);
      } else if (key === 'value') {
        el.value = String(value);
      } else {
        el.setAttribute(key, value === true ? '' : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A table with a caption, column headers (th scope=col) and rows of cells. */
function table(caption, headers, rows, attrs) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs || null,
      h('caption', null, caption),
      h('thead', null, h('tr', null, headers.map((name) => h('th', { scope: 'col' }, name)))),
      h('tbody', null, rows)));
}

/** A description list from [term, definition] pairs (definitions may be nodes). */
function facts(pairs) {
  return h('dl', { class: 'facts' },
    pairs.filter(([, value]) => value !== undefined).map(([term, value]) => [
      h('dt', null, term),
      h('dd', null, value === null || value === '' ? '—' : value),
    ]));
}

function badge(text, kind) {
  const known = ['allow', 'deny', 'pending', 'keep', 'revoke', 'warn', 'ok', 'muted'];
  return h('span', { class: `badge badge-${known.includes(kind) ? kind : 'muted'}` }, text);
}

function pre(text, label) {
  return h('pre', { class: 'code', tabindex: '0', 'aria-label': label || null }, text);
}

function hashLink(path, text, label) {
  return h('a', { href: `#${path}`, 'aria-label': label || null }, text);
}

function visuallyHidden(text) {
  return h('span', { class: 'visually-hidden' }, text);
}

// ------------------------------------------------------------------------------------------
// Formatting

function entity(ref) {
  if (!ref || typeof ref !== 'object') return ref ? String(ref) : '—';
  return `${ref.type}::${JSON.stringify(String(ref.id ?? ''))}`;
}

function when(seconds) {
  if (seconds === null || seconds === undefined || seconds === '') return '—';
  const date = new Date(Number(seconds) * 1000);
  if (Number.isNaN(date.getTime())) return String(seconds);
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function recordTime(text) {
  return typeof text === 'string' ? text.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—';
}

function json(value) {
  return JSON.stringify(value, null, 2);
}

function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many || `${one}s`}`;
}

// ------------------------------------------------------------------------------------------
// Status and errors (the live regions)

function say(text) {
  $('alert').textContent = '';
  $('status').textContent = text || '';
}

function complain(error) {
  $('status').textContent = '';
  const alert = $('alert');
  alert.replaceChildren();
  if (error instanceof ApiError) {
    append(alert, [error.message]);
    const problems = Array.isArray(error.problem?.errors) ? error.problem.errors : [];
    if (problems.length) {
      alert.append(h('ul', { class: 'problems' }, problems.slice(0, 50).map((p) => h('li', null, problemLine(p)))));
    }
  } else {
    append(alert, [error && error.message ? error.message : String(error)]);
  }
}

function problemLine(p) {
  if (!p || typeof p !== 'object') return String(p);
  const where = p.file ? `${p.file}${p.line ? `:${p.line}${p.column ? `:${p.column}` : ''}` : ''}: ` : '';
  const which = p.uid ? `${p.uid}: ` : p.index !== undefined ? `item ${p.index}: ` : '';
  return `${where}${which}${p.message ?? json(p)}`;
}

// ------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, problem, fallback) {
    const detail = problem && typeof problem.detail === 'string' && problem.detail
      ? problem.detail
      : fallback;
    super(detail);
    this.status = status;
    this.problem = problem;
  }
}

async function problemOf(response) {
  const type = response.headers.get('content-type') || '';
  if (type.includes('json')) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }
  return null;
}

function fallbackText(response) {
  const titles = {
    400: 'The request was refused as invalid.',
    401: 'Not logged in.',
    403: 'Not allowed with this credential.',
    404: 'Not found.',
    409: 'Conflict: it changed in the meantime.',
    415: 'The request was not JSON.',
    429: 'Too many requests: wait a moment and try again.',
    503: 'Warden cannot answer this now.',
  };
  return titles[response.status] || `Warden answered ${response.status} ${response.statusText}`.trim();
}

/**
 * Calls Warden. `options.body` is sent as JSON; `options.as` is 'json' (default), 'text' or
 * 'blob'. Throws ApiError with the problem's `detail` for any answer but 2xx.
 */
async function api(method, path, options = {}) {
  const headers = { Accept: options.accept || 'application/json' };
  if (state.csrf) headers['X-CSRF-Token'] = state.csrf;
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new Error(`Warden could not be reached (${error.message}).`);
  }
  if (!response.ok) {
    const problem = await problemOf(response);
    let fallback = fallbackText(response);
    const retry = response.headers.get('retry-after');
    if (response.status === 429 && retry) fallback += ` (retry after ${retry} s)`;
    const error = new ApiError(response.status, problem, fallback);
    if (response.status === 401 && options.sessionCall !== true && state.csrf) {
      sessionEnded();
    }
    throw error;
  }
  if (response.status === 204) return null;
  if (options.as === 'text') return response.text();
  if (options.as === 'blob') return response.blob();
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

const enc = encodeURIComponent;

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && String(value).trim() !== '') {
      search.set(key, String(value).trim());
    }
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

// ------------------------------------------------------------------------------------------
// Session

function startSession(answer) {
  state.csrf = answer.csrf_token;
  state.admin = answer.admin || {};
  state.expiresAt = answer.expires_at ?? null;
  if (state.admin.tenant_scope) state.tenant = state.admin.tenant_scope;
  const scope = state.admin.tenant_scope ? `tenant ${state.admin.tenant_scope}` : 'all tenants';
  const who = $('who');
  who.replaceChildren('Logged in as ', h('strong', null, state.admin.credential_id || 'an admin'),
    ` (${scope})`, state.expiresAt ? ` until ${when(state.expiresAt).slice(11)}` : '');
  $('nav').hidden = false;
  for (const id of ['search-tenant', 'reviews-tenant', 'accounts-tenant']) {
    const input = $(id);
    input.readOnly = Boolean(state.admin.tenant_scope);
    if (state.admin.tenant_scope) input.value = state.admin.tenant_scope;
  }
}

function endSession() {
  state.csrf = null;
  state.admin = null;
  state.expiresAt = null;
  state.lastSearch = null;
  state.campaign = null;
  state.tenant = '';
  $('nav').hidden = true;
  // Nothing of this session stays in the page for the next person at this browser.
  for (const id of ['decision-search', 'reviews-tenant-form', 'new-campaign', 'accounts-form', 'diff-form']) {
    $(id).reset();
  }
  for (const id of ['search-tenant', 'reviews-tenant', 'accounts-tenant']) $(id).readOnly = false;
  $('campaign-reviewer').disabled = true;
  $('campaign-due').value = defaultDueDate();
  $('status').textContent = '';
  $('alert').textContent = '';
  $('who').replaceChildren();
  for (const id of ['decision-results', 'campaign-list', 'review-body', 'decision-body', 'accounts-results', 'diff-results']) {
    $(id).replaceChildren();
  }
}

function sessionEnded() {
  endSession();
  show('login');
  window.setTimeout(() => complain(new Error('Your console session has ended: log in again.')), 0);
}

async function resumeSession() {
  try {
    const answer = await api('GET', '/console/session', { sessionCall: true });
    startSession(answer);
    return true;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) complain(error);
    return false;
  }
}

async function login(event) {
  event.preventDefault();
  const input = $('login-credential');
  const credential = input.value.trim();
  if (!credential) {
    complain(new Error('Enter an admin credential.'));
    input.focus();
    return;
  }
  const button = event.submitter || event.target.querySelector('button');
  button.disabled = true;
  say('Logging in…');
  try {
    const answer = await api('POST', '/console/session', { body: { credential }, sessionCall: true });
    input.value = '';
    startSession(answer);
    say('Logged in.');
    if (!location.hash || location.hash === '#' || location.hash.startsWith('#/login')) {
      location.hash = '#/decisions';
    } else {
      route();
    }
  } catch (error) {
    input.value = '';
    complain(error);
    input.focus();
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  try {
    await api('DELETE', '/console/session', { sessionCall: true });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) {
      complain(error);
      return;
    }
  }
  endSession();
  history.replaceState(null, '', '#/login');
  show('login');
  say('Logged out.');
}

// ------------------------------------------------------------------------------------------
// Views and routing

const VIEWS = ['loading', 'login', 'decisions', 'decision', 'reviews', 'review', 'accounts', 'diff'];
const SECTION_OF = { decision: 'decisions', review: 'reviews' };

function show(name) {
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  const section = SECTION_OF[name] || name;
  for (const link of document.querySelectorAll('#nav a[data-section]')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const heading = $(`view-${name}`).querySelector('h1');
  document.title = `${heading ? heading.textContent : 'Warden'} · Warden console`;
  if (heading && name !== 'loading') heading.focus({ preventScroll: false });
}

function tenantFor(input) {
  const value = input.value.trim() || state.tenant || '';
  if (!input.value.trim() && value) input.value = value;
  return value;
}

async function route() {
  if (!state.csrf) {
    show('login');
    $('login-credential').focus();
    return;
  }
  const path = (location.hash || '#/decisions').slice(1);
  const parts = path.split('/').filter(Boolean).map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  });
  const [section, first, second] = parts;
  switch (section) {
    case 'decisions':
      if (first) return showDecision(first);
      show('decisions');
      tenantFor($('search-tenant'));
      if (state.lastSearch) renderDecisions(state.lastSearch.answer, state.lastSearch.params);
      return;
    case 'reviews':
      if (first && second) return showCampaign(first, second);
      show('reviews');
      if (first) {
        $('reviews-tenant').value = first;
        return loadCampaigns(first);
      }
      if (tenantFor($('reviews-tenant'))) return loadCampaigns($('reviews-tenant').value.trim());
      return;
    case 'service-accounts':
      show('accounts');
      if (first) {
        $('accounts-tenant').value = first;
        return loadAccounts(first);
      }
      tenantFor($('accounts-tenant'));
      return;
    case 'diff':
      show('diff');
      return;
    default:
      location.replace('#/decisions');
  }
}

// ------------------------------------------------------------------------------------------
// Decisions: search

async function searchDecisions(event) {
  event.preventDefault();
  const params = {
    tenant: $('search-tenant').value,
    principal: $('search-principal').value,
    resource: $('search-resource').value,
    decision: $('search-decision').value,
    reason: $('search-reason').value,
    since: $('search-since').value,
    limit: $('search-limit').value,
  };
  if (params.tenant.trim()) state.tenant = params.tenant.trim();
  say('Searching…');
  try {
    const answer = await api('GET', `/v1/admin/decisions${query(params)}`);
    state.lastSearch = { answer, params };
    renderDecisions(answer, params);
    const found = Array.isArray(answer.decisions) ? answer.decisions.length : 0;
    say(`${plural(found, 'decision')} found${answer.truncated ? ' (the search stopped at its scan limit: narrow it or shorten "since")' : ''}.`);
  } catch (error) {
    complain(error);
  }
}

function renderDecisions(answer, params) {
  const decisions = Array.isArray(answer?.decisions) ? answer.decisions : [];
  const box = $('decision-results');
  box.replaceChildren();
  const summary = [`${plural(decisions.length, 'decision')}, newest first`];
  if (typeof answer?.scanned === 'number') summary.push(`${plural(answer.scanned, 'record')} scanned`);
  if (answer?.truncated) summary.push('the search read as many records as one search may and stopped: narrow it or shorten "since" to see older matches');
  box.append(h('p', { class: 'summary' }, summary.join('; '), '.'));
  if (!decisions.length) {
    box.append(h('p', null, 'No decision matches.'));
    return;
  }
  const rows = decisions.map((record) => h('tr', { 'data-decision-id': record.id },
    h('td', null, h('time', { datetime: record.time }, recordTime(record.time))),
    h('td', { class: 'mono' }, entity(record.principal)),
    h('td', { class: 'mono' }, record.action ?? '—'),
    h('td', { class: 'mono' }, entity(record.resource)),
    h('td', null, badge(record.decision ?? '—', record.decision)),
    h('td', { class: 'mono' }, record.reason ?? '—'),
    h('td', null, hashLink(`/decisions/${enc(record.id)}`, 'Explain',
      `Explain decision ${record.id}`))));
  const caption = params && params.decision ? `Decisions (${params.decision})` : 'Decisions';
  box.append(table(caption, ['Time', 'Principal', 'Action', 'Resource', 'Decision', 'Reason', 'Details'], rows,
    { id: 'decision-table' }));
}

// ------------------------------------------------------------------------------------------
// Decisions: one record

async function showDecision(id) {
  show('decision');
  $('decision-title').textContent = 'Decision';
  const body = $('decision-body');
  body.replaceChildren(h('p', null, 'Loading…'));
  try {
    const record = await api('GET', `/v1/decisions/${enc(id)}`);
    renderDecision(record);
    $('decision-title').textContent = `Decision ${record.id}`;
    document.title = `Decision ${record.id} · Warden console`;
    say('');
  } catch (error) {
    body.replaceChildren(h('p', null, 'This decision could not be shown.'));
    complain(error);
  }
}

function renderDecision(record) {
  const body = $('decision-body');
  body.replaceChildren();
  const explanation = record.explanation && typeof record.explanation === 'object' ? record.explanation : null;
  const verdict = record.decision === 'allow' || record.decision === 'deny' ? record.decision : 'muted';
  const box = h('div', { class: `explanation explanation-${verdict}`, id: 'explanation' },
    h('h2', null, 'In plain words'),
    h('p', { class: 'headline', id: 'explanation-summary' },
      explanation?.summary || explanation?.headline || 'No explanation was recorded for this decision.'));
  const details = Array.isArray(explanation?.details) ? explanation.details : [];
  if (details.length) {
    box.append(h('ul', { class: 'explanation-details', id: 'explanation-details' },
      details.map((line) => h('li', null, line))));
  }
  body.append(box);

  body.append(h('h2', null, 'The decision'), facts([
    ['Decision', badge(record.decision ?? '—', record.decision)],
    ['Reason code', h('code', null, record.reason ?? '—')],
    ['Time', record.time ? h('time', { datetime: record.time }, recordTime(record.time)) : null],
    ['Principal', h('code', null, entity(record.principal))],
    ['Action', h('code', null, record.action ?? '—')],
    ['Resource', h('code', null, entity(record.resource))],
    ['Tenant', record.resource?.tenant ?? record.principal?.tenant ?? null],
    ['Entry point', record.entry ?? null],
    ['Policy revision', record.policy_revision ? h('code', null, record.policy_revision) : null],
    ['Caller', record.caller ?? null],
    ['Origin', record.origin ?? null],
    ['Latency', record.latency_us !== undefined && record.latency_us !== null ? `${record.latency_us} µs` : null],
    ['Log position', record.seq !== undefined ? `#${record.seq}` : null],
  ]));

  const policies = Array.isArray(record.policies) ? record.policies : [];
  body.append(h('h2', null, 'Determining policies'));
  if (policies.length) {
    body.append(table('Policies that determined the decision', ['Policy', 'Description'],
      policies.map((p) => h('tr', null,
        h('th', { scope: 'row', class: 'mono' }, p.id ?? String(p)),
        h('td', null, p.description ?? '—')))));
  } else {
    body.append(h('p', null, 'No policy determined it (a deny with no permit, or a refusal before any policy).'));
  }

  const errors = Array.isArray(record.errors) ? record.errors : [];
  body.append(h('h2', null, 'Errors'));
  body.append(errors.length
    ? h('ul', { class: 'errors' }, errors.map((e) => h('li', null, typeof e === 'string' ? e : json(e))))
    : h('p', null, 'None.'));

  body.append(h('h2', null, 'Token'));
  const token = record.token && typeof record.token === 'object' ? record.token : null;
  body.append(token
    ? facts([
      ['Issuer', token.issuer ?? null],
      ['Subject', token.subject ?? null],
      ['Token id (jti)', token.jti ?? null],
    ])
    : h('p', null, 'No bearer token was part of this decision.'));

  if (record.context !== undefined && record.context !== null) {
    body.append(h('h2', null, 'Request context'), pre(json(record.context), 'Request context'));
  }
  if (record.hash) {
    body.append(h('p', { class: 'hint' }, 'Record hash ', h('code', null, record.hash)));
  }
  body.append(h('h2', null, 'Raw record'), pre(json(record), 'Raw record as JSON'));
}

// ------------------------------------------------------------------------------------------
// Reviews: campaigns of a tenant

function reviewsTenantSubmit(event) {
  event.preventDefault();
  const tenant = $('reviews-tenant').value.trim();
  if (!tenant) {
    complain(new Error('Enter a tenant.'));
    $('reviews-tenant').focus();
    return;
  }
  state.tenant = tenant;
  const target = `#/reviews/${enc(tenant)}`;
  if (location.hash === target) loadCampaigns(tenant);
  else location.hash = target;
}

async function loadCampaigns(tenant) {
  state.tenant = tenant;
  const box = $('campaign-list');
  box.replaceChildren(h('p', null, 'Loading…'));
  try {
    const answer = await api('GET', `/v1/admin/tenants/${enc(tenant)}/reviews`);
    renderCampaigns(tenant, Array.isArray(answer?.campaigns) ? answer.campaigns : []);
    say(`${plural(answer?.campaigns?.length ?? 0, 'campaign')} in ${tenant}.`);
  } catch (error) {
    box.replaceChildren();
    complain(error);
  }
}

function counts(campaign) {
  const c = campaign.counts || {};
  return { total: c.total ?? 0, pending: c.pending ?? 0, kept: c.kept ?? 0, revoked: c.revoked ?? 0 };
}

function renderCampaigns(tenant, campaigns) {
  const box = $('campaign-list');
  box.replaceChildren();
  if (!campaigns.length) {
    box.append(h('p', null, `No review campaign in ${tenant} yet.`));
    return;
  }
  const rows = campaigns.map((campaign) => {
    const c = counts(campaign);
    return h('tr', { 'data-campaign-id': campaign.id },
      h('th', { scope: 'row' }, hashLink(`/reviews/${enc(tenant)}/${enc(campaign.id)}`, campaign.name || campaign.id,
        `Open campaign ${campaign.name || campaign.id}`)),
      h('td', null, scopeText(campaign.scope)),
      h('td', { class: 'mono' }, campaign.reviewer ?? '—'),
      h('td', null, when(campaign.due_at)),
      h('td', null, statusBadge(campaign.status)),
      h('td', null, `${c.pending} of ${c.total}`),
      h('td', null, String(c.kept)),
      h('td', null, String(c.revoked)),
      h('td', null, campaign.created_by ?? '—'));
  });
  box.append(table(`Review campaigns of ${tenant}`,
    ['Campaign', 'Scope', 'Reviewer', 'Due', 'Status', 'Pending', 'Kept', 'Revoked', 'Created by'], rows));
}

// `open`, `overdue` (due with items undecided) or `complete` (nothing left to decide).
function statusBadge(status) {
  const kind = { open: 'pending', overdue: 'deny', complete: 'ok' }[status] || 'muted';
  return badge(status ?? '—', kind);
}

function scopeText(scope) {
  return { roles: 'Role grants', service_accounts: 'Service accounts', both: 'Role grants and service accounts' }[scope]
    || String(scope ?? '—');
}

function defaultDueDate() {
  const due = new Date(Date.now() + 14 * 86400 * 1000);
  return due.toISOString().slice(0, 10);
}

async function createCampaign(event) {
  event.preventDefault();
  const form = event.target;
  const tenant = tenantFor($('reviews-tenant'));
  if (!tenant) {
    complain(new Error('Enter the tenant above first.'));
    $('reviews-tenant').focus();
    return;
  }
  const name = $('campaign-name').value.trim();
  if (!name) {
    complain(new Error('Give the campaign a name.'));
    $('campaign-name').focus();
    return;
  }
  let reviewer = 'owner';
  if ($('campaign-reviewer-kind').value === 'principal') {
    reviewer = $('campaign-reviewer').value.trim();
    if (!reviewer) {
      complain(new Error('Name the reviewing principal, e.g. User::"acme/alice".'));
      $('campaign-reviewer').focus();
      return;
    }
  }
  const due = /^(\d{4})-(\d{2})-(\d{2})$/.exec($('campaign-due').value);
  if (!due) {
    complain(new Error('Choose a due date.'));
    $('campaign-due').focus();
    return;
  }
  const dueAt = Math.floor(Date.UTC(Number(due[1]), Number(due[2]) - 1, Number(due[3]), 23, 59, 59) / 1000);
  const unusedDays = Number.parseInt($('campaign-unused-days').value, 10);
  const body = {
    name,
    scope: $('campaign-scope').value,
    reviewer,
    due_at: dueAt,
    auto_revoke_overdue: $('campaign-auto-revoke').checked,
    unused_days: Number.isFinite(unusedDays) ? unusedDays : 90,
  };
  const button = event.submitter || form.querySelector('button[type=submit]');
  button.disabled = true;
  say('Creating the campaign…');
  try {
    const answer = await api('POST', `/v1/admin/tenants/${enc(tenant)}/reviews`, { body });
    const campaign = answer?.campaign || answer;
    $('campaign-name').value = '';
    say(`Campaign ${campaign.name || campaign.id} created.`);
    location.hash = `#/reviews/${enc(tenant)}/${enc(campaign.id)}`;
  } catch (error) {
    complain(error);
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------------------------------
// Reviews: one campaign and its items

// A campaign's items come a page at a time (GET …/reviews/{id}?after=&limit=): the first page on
// opening, the next on "Load more items". The page size is 500 (the API's default; it allows up
// to 1,000); a `data-page-size` attribute on <body> (1 to 1000) makes it another, which is how
// the browser tests get small pages.
const PAGE_SIZE = 500;

function pageSize() {
  const asked = Number.parseInt(document.body.dataset.pageSize ?? '', 10);
  return Number.isInteger(asked) && asked >= 1 && asked <= 1000 ? asked : PAGE_SIZE;
}

function campaignPath(tenant, id, after, limit) {
  return `/v1/admin/tenants/${enc(tenant)}/reviews/${enc(id)}${query({ after: after > 0 ? after : undefined, limit })}`;
}

function pageItems(answer) {
  return Array.isArray(answer?.items) ? answer.items : [];
}

// The `after` of the next page, or null when this was the last.
function nextOf(answer) {
  return Number.isSafeInteger(answer?.next) ? answer.next : null;
}

async function showCampaign(tenant, id) {
  show('review');
  state.tenant = tenant;
  state.campaign = null;
  $('review-back').setAttribute('href', `#/reviews/${enc(tenant)}`);
  $('review-title').textContent = 'Campaign';
  const body = $('review-body');
  body.replaceChildren(h('p', null, 'Loading…'));
  try {
    const answer = await api('GET', campaignPath(tenant, id, 0, pageSize()));
    state.campaign = { tenant, campaign: answer.campaign, items: pageItems(answer), next: nextOf(answer), loading: false };
    renderCampaign();
    say(state.campaign.next !== null ? `${shownText()} More can be loaded.` : '');
  } catch (error) {
    body.replaceChildren(h('p', null, 'This campaign could not be shown.'));
    complain(error);
  }
}

function renderCampaign() {
  const { tenant, campaign, items, next } = state.campaign;
  $('review-title').textContent = `Campaign: ${campaign.name || campaign.id}`;
  document.title = `Campaign ${campaign.name || campaign.id} · Warden console`;
  const body = $('review-body');
  body.replaceChildren();
  body.append(h('div', { id: 'campaign-facts' }, campaignFacts(campaign)));
  body.append(reportTools(tenant, campaign));
  body.append(h('h2', null, 'Items'));
  if (!items.length && next === null) {
    body.append(h('p', null, 'This campaign has no item.'));
    return;
  }
  const rows = items.map((item) => itemRow(item));
  body.append(table(`Entitlements under review in ${tenant}`,
    ['Principal', 'Entitlement', 'Granted', 'Expires', 'Last used', 'Usage', 'Reviewer', 'Decision', 'Actions'],
    rows, { id: 'items-table' }));
  body.append(h('div', { id: 'items-pager', class: 'pager' }, pagerContent()));
}

function shownText() {
  const { campaign, items } = state.campaign;
  const total = Math.max(counts(campaign).total, items.length);
  return items.length >= total
    ? `All ${plural(total, 'item')} shown.`
    : `Showing ${items.length} of ${plural(total, 'item')}.`;
}

// How many items are shown, and the button that loads the next page (while there is one).
function pagerContent() {
  const { next, loading } = state.campaign;
  const shown = h('p', { id: 'items-shown', class: 'hint', tabindex: '-1' }, shownText());
  if (next === null) return [shown];
  // Not disabled while loading (a disabled button would drop the keyboard focus): marked busy,
  // and a second click waits for the first.
  return [shown, h('div', { class: 'row-actions' },
    h('button', {
      type: 'button', id: 'load-more', 'aria-describedby': 'items-shown',
      'aria-disabled': loading ? 'true' : null, on: { click: loadMore },
    }, loading ? 'Loading more items…' : 'Load more items'))];
}

// The pager brought up to date in place where it can be (a focused button keeps the focus).
function renderPager() {
  const pager = $('items-pager');
  if (!pager || !state.campaign) return;
  const { next, loading } = state.campaign;
  const shown = $('items-shown');
  const button = $('load-more');
  if (shown && (next !== null) === Boolean(button)) {
    shown.textContent = shownText();
    if (button) {
      button.textContent = loading ? 'Loading more items…' : 'Load more items';
      if (loading) button.setAttribute('aria-disabled', 'true');
      else button.removeAttribute('aria-disabled');
    }
    return;
  }
  pager.replaceChildren(...pagerContent());
}

async function loadMore() {
  const view = state.campaign;
  if (!view || view.next === null || view.loading) return;
  const { tenant, campaign } = view;
  view.loading = true;
  renderPager();
  say('Loading more items…');
  try {
    const answer = await api('GET', campaignPath(tenant, campaign.id, view.next, pageSize()));
    if (state.campaign !== view) return;
    view.loading = false;
    if (answer?.campaign) setCampaignHeader(answer.campaign);
    // An item already shown (none should be: pages follow item numbers) is not shown twice.
    const known = new Set(view.items.map((item) => String(item.id)));
    const added = pageItems(answer).filter((item) => !known.has(String(item.id)));
    view.items.push(...added);
    view.next = nextOf(answer);
    const tbody = document.querySelector('#items-table tbody');
    const rows = added.map((item) => itemRow(item));
    if (tbody) tbody.append(...rows);
    renderPager();
    say(shownText());
    // The keyboard goes on from the first row loaded (or the count, when nothing was left).
    const target = rows.length ? rows[0].querySelector('th') : $('items-shown');
    if (target) {
      target.setAttribute('tabindex', '-1');
      target.focus({ preventScroll: false });
    }
  } catch (error) {
    if (state.campaign !== view) return;
    view.loading = false;
    renderPager();
    complain(error);
    $('load-more')?.focus();
  }
}

// The campaign's facts (counts, status) as the server answered them; the rows stay as they are.
function setCampaignHeader(campaign) {
  if (!state.campaign || state.campaign.campaign?.id !== campaign.id) return;
  state.campaign.campaign = campaign;
  $('campaign-facts')?.replaceChildren(campaignFacts(campaign));
  renderPager();
}

function campaignFacts(campaign) {
  const c = counts(campaign);
  return facts([
    ['Id', h('code', null, campaign.id)],
    ['Tenant', campaign.tenant ?? state.campaign.tenant],
    ['Scope', scopeText(campaign.scope)],
    ['Reviewer', h('code', null, campaign.reviewer ?? '—')],
    ['Due', when(campaign.due_at)],
    ['Status', statusBadge(campaign.status)],
    ['Overdue items', campaign.auto_revoke_overdue ? 'revoked automatically' : 'left for the reviewer'],
    ['Unused after', campaign.unused_days !== undefined ? plural(campaign.unused_days, 'day') : null],
    ['Created', `${when(campaign.created_at)} by ${campaign.created_by ?? '—'}`],
    ['Progress', `${c.pending} pending, ${c.kept} kept, ${c.revoked} revoked, of ${c.total}`],
  ]);
}

function describeItem(item) {
  return { who: String(item.principal ?? '—'), what: String(item.entitlement ?? item.role ?? item.client_id ?? '—') };
}

// The usage column: in use or unused, and the role the last allow went through when that is a
// lesser one than the role granted (the policy named a role this one includes).
function usageCell(item, usage) {
  const cell = [usage.unused
    ? badge(usage.unused_days !== null && usage.unused_days !== undefined ? `Unused ${usage.unused_days} d` : 'Unused', 'warn')
    : badge('In use', 'ok')];
  const through = typeof usage.used_through === 'string' ? usage.used_through : '';
  if (through && item.role && through !== item.role) {
    cell.push(h('br'), h('span', { class: 'used-through' }, 'used through ', h('code', null, through)),
      h('br'), h('span', { class: 'hint' }, 'a lesser role may be enough'));
  }
  return cell;
}

function itemRow(item) {
  const { who, what } = describeItem(item);
  const usage = item.usage && typeof item.usage === 'object' ? item.usage : {};
  let lastUsed = 'never, in the log';
  if (usage.last_allowed_at) {
    lastUsed = usage.last_decision_id
      ? hashLink(`/decisions/${enc(usage.last_decision_id)}`, when(usage.last_allowed_at),
        `Last allowed decision for ${what} of ${who}, ${when(usage.last_allowed_at)}`)
      : when(usage.last_allowed_at);
  }
  const granted = [h('span', null, item.granted_by ?? '—'), h('br'), h('span', { class: 'hint' }, when(item.granted_at))];
  if (item.grant_reason) granted.push(h('br'), h('span', { class: 'hint' }, `“${item.grant_reason}”`));
  if (item.kind === 'service_account' && Array.isArray(item.scopes) && item.scopes.length) {
    granted.push(h('br'), h('span', { class: 'hint' }, `scopes: ${item.scopes.join(' ')}`));
  }
  return h('tr', { 'data-item-id': item.id },
    h('th', { scope: 'row', class: 'mono' }, who),
    h('td', { class: 'mono' }, what, item.kind === 'service_account' ? h('span', { class: 'hint' }, ' (service account)') : null),
    h('td', null, granted),
    h('td', null, when(item.expires_at)),
    h('td', null, lastUsed),
    h('td', { class: 'item-usage' }, usageCell(item, usage)),
    h('td', { class: 'mono' }, item.reviewer ?? '—'),
    h('td', { class: 'item-decision' }, decisionCell(item)),
    h('td', { class: 'item-actions' }, actionsCell(item)));
}

function decisionCell(item) {
  if (!item.decision) {
    return [badge('pending', 'pending'), item.overdue ? [' ', badge('overdue', 'deny')] : null];
  }
  const label = item.decision === 'revoke' ? 'revoked' : item.decision === 'keep' ? 'kept' : item.decision;
  return [
    badge(label, item.decision),
    item.decision === 'revoke' && item.applied === false ? [' ', badge('not applied yet', 'warn')] : null,
    h('br'),
    h('span', { class: 'hint' }, `by ${item.decided_by ?? '—'}, ${when(item.decided_at)}`),
    item.note ? [h('br'), h('span', { class: 'hint' }, `“${item.note}”`)] : null,
  ];
}

function actionsCell(item) {
  if (item.decision || state.campaign?.campaign?.status === 'complete') return '—';
  const { who, what } = describeItem(item);
  return h('div', { class: 'row-actions' },
    h('button', {
      type: 'button', class: 'keep', 'aria-label': `Keep ${what} for ${who}`,
      on: { click: (event) => decide(item, 'keep', '', event.currentTarget) },
    }, 'Keep'),
    h('button', {
      type: 'button', class: 'danger', 'aria-label': `Revoke ${what} from ${who}`,
      on: { click: () => askRevoke(item) },
    }, 'Revoke'));
}

function rowOf(item) {
  for (const row of document.querySelectorAll('#items-table tbody tr')) {
    if (row.dataset.itemId === String(item.id)) return row;
  }
  return null;
}

function askRevoke(item) {
  const row = rowOf(item);
  if (!row) return;
  const { who, what } = describeItem(item);
  const cell = row.querySelector('.item-actions');
  const noteId = `note-${String(item.id).replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const note = h('input', { id: noteId, type: 'text', autocomplete: 'off', required: true });
  const confirm = h('button', {
    type: 'submit', class: 'danger', 'aria-label': `Confirm revoke ${what} from ${who}`,
  }, 'Confirm revoke');
  const form = h('form', { class: 'confirm', novalidate: true },
    h('label', { for: noteId }, `Why revoke ${what} from ${who}?`),
    note,
    h('div', { class: 'row-actions' },
      confirm,
      h('button', {
        type: 'button', 'aria-label': `Cancel revoking ${what} from ${who}`,
        on: { click: () => { cell.replaceChildren(actionsCell(item)); cell.querySelector('button.danger')?.focus(); } },
      }, 'Cancel')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = note.value.trim();
    if (!text) {
      complain(new Error(`Say why ${what} is revoked from ${who}.`));
      note.focus();
      return;
    }
    decide(item, 'revoke', text, confirm);
  });
  cell.replaceChildren(form);
  note.focus();
}

async function decide(item, decision, note, button) {
  const view = state.campaign;
  const { tenant, campaign } = view;
  const { who, what } = describeItem(item);
  if (button) button.disabled = true;
  say(decision === 'revoke' ? `Revoking ${what} from ${who}…` : `Keeping ${what} for ${who}…`);
  const body = { decision, note: note || '' };
  try {
    const answer = await api('POST',
      `/v1/admin/tenants/${enc(tenant)}/reviews/${enc(campaign.id)}/items/${enc(item.id)}`, { body });
    if (state.campaign !== view) return;
    const updated = answer?.item || answer;
    replaceItem(updated);
    refreshFacts();
    say(decision === 'revoke' ? `Revoked ${what} from ${who}.` : `Kept ${what} for ${who}.`);
  } catch (error) {
    if (button) button.disabled = false;
    complain(error);
    if (error instanceof ApiError && error.status === 409 && state.campaign === view) refreshItem(item);
  }
}

// Puts an item as now known in its row (the other rows, and the pages loaded, stay).
function replaceItem(updated) {
  const items = state.campaign.items;
  const index = items.findIndex((item) => String(item.id) === String(updated.id));
  const before = index >= 0 ? items[index] : null;
  if (index >= 0) items[index] = updated;
  const row = rowOf(updated);
  if (row) {
    const fresh = itemRow(updated);
    row.replaceWith(fresh);
    const header = fresh.querySelector('th');
    header.setAttribute('tabindex', '-1');
    header.focus({ preventScroll: true });
  }
  const c = state.campaign.campaign.counts;
  if (c && before && !before.decision && updated.decision) {
    c.pending = Math.max(0, (c.pending ?? 1) - 1);
    if (updated.decision === 'keep') c.kept = (c.kept ?? 0) + 1;
    if (updated.decision === 'revoke') c.revoked = (c.revoked ?? 0) + 1;
    $('campaign-facts').replaceChildren(campaignFacts(state.campaign.campaign));
  }
}

// The campaign's counts and status as the server now has them, read with a one-item page (the
// table keeps its rows, its loaded pages and the focus).
async function refreshFacts() {
  const view = state.campaign;
  const { tenant, campaign } = view;
  try {
    const answer = await api('GET', campaignPath(tenant, campaign.id, 0, 1));
    if (state.campaign !== view || !answer?.campaign) return;
    setCampaignHeader(answer.campaign);
  } catch {
    // The counts shown stay as counted here.
  }
}

// One item read again (after a 409: someone decided it first), with the campaign's counts: a
// page of one item starting just before it (items are numbered 1, 2, …). Nothing else is
// reloaded.
async function refreshItem(item) {
  const view = state.campaign;
  const { tenant, campaign } = view;
  const number = Number.parseInt(String(item.id), 10);
  if (!Number.isSafeInteger(number) || number < 1 || String(number) !== String(item.id)) {
    refreshFacts();
    return;
  }
  try {
    const answer = await api('GET', campaignPath(tenant, campaign.id, number - 1, 1));
    if (state.campaign !== view) return;
    const [fresh] = pageItems(answer);
    if (fresh && String(fresh.id) === String(item.id)) replaceItem(fresh);
    if (answer?.campaign) setCampaignHeader(answer.campaign);
  } catch {
    // The first error is already shown.
  }
}

// Reports are fetched with the CSRF header and offered as a file made in the page (a plain link
// would carry the cookie but not the header).
function reportTools(tenant, campaign) {
  const output = h('div', { class: 'report-output', id: 'report-output' });
  const get = async (format) => {
    say(`Fetching the ${format.toUpperCase()} report…`);
    try {
      const path = `/v1/admin/tenants/${enc(tenant)}/reviews/${enc(campaign.id)}/report?format=${format}`;
      const text = await api('GET', path, {
        as: 'text', accept: format === 'csv' ? 'text/csv, */*' : 'application/json',
      });
      const type = format === 'csv' ? 'text/csv' : 'application/json';
      const shown = format === 'json' ? prettyJson(text) : text;
      const url = URL.createObjectURL(new Blob([text], { type }));
      const filename = `review-${String(campaign.id).replace(/[^A-Za-z0-9_.-]/g, '_')}.${format}`;
      output.replaceChildren(
        h('h3', null, `${format.toUpperCase()} report`),
        h('p', null, h('a', { href: url, download: filename, class: 'download' }, `Save ${filename}`)),
        pre(shown, `${format.toUpperCase()} report`));
      say(`The ${format.toUpperCase()} report is ready.`);
    } catch (error) {
      complain(error);
    }
  };
  return h('div', { class: 'report-tools' },
    h('h2', null, 'Reports'),
    h('div', { class: 'row-actions' },
      h('button', { type: 'button', on: { click: () => get('json') } }, 'JSON report'),
      h('button', { type: 'button', on: { click: () => get('csv') } }, 'CSV report')),
    output);
}

function prettyJson(text) {
  try {
    return json(JSON.parse(text));
  } catch {
    return text;
  }
}

// ------------------------------------------------------------------------------------------
// Service-account inventory

function accountsSubmit(event) {
  event.preventDefault();
  const tenant = $('accounts-tenant').value.trim();
  if (!tenant) {
    complain(new Error('Enter a tenant.'));
    $('accounts-tenant').focus();
    return;
  }
  state.tenant = tenant;
  const target = `#/service-accounts/${enc(tenant)}`;
  if (location.hash === target) loadAccounts(tenant);
  else location.hash = target;
}

async function loadAccounts(tenant) {
  const box = $('accounts-results');
  box.replaceChildren(h('p', null, 'Loading…'));
  try {
    const report = await api('GET', `/v1/admin/tenants/${enc(tenant)}/service-accounts/report`);
    renderAccounts(tenant, report);
    const accounts = Array.isArray(report?.accounts) ? report.accounts : [];
    const flagged = accounts.filter((a) => Array.isArray(a.findings) && a.findings.length).length;
    say(`${plural(accounts.length, 'service account')} in ${tenant}, ${flagged} with findings.`);
  } catch (error) {
    box.replaceChildren();
    complain(error);
  }
}

function renderAccounts(tenant, report) {
  const box = $('accounts-results');
  box.replaceChildren();
  const accounts = Array.isArray(report?.accounts) ? report.accounts : [];
  const t = report?.thresholds || {};
  box.append(h('p', { class: 'summary' },
    `Report made ${when(report?.generated_at)}. Thresholds: stale after ${t.stale_after_days ?? '?'} d, `
    + `expiring within ${t.expiring_within_days ?? '?'} d, credentials older than ${t.credential_max_age_days ?? '?'} d, `
    + `scopes unused for ${t.unused_scope_days ?? '?'} d.`));
  if (!accounts.length) {
    box.append(h('p', null, `No service account in ${tenant}.`));
    return;
  }
  const rows = accounts.map((account) => {
    const findings = Array.isArray(account.findings) ? account.findings : [];
    const credentials = Array.isArray(account.credentials) ? account.credentials : [];
    return h('tr', { 'data-client-id': account.client_id },
      h('th', { scope: 'row' }, h('span', null, account.name ?? '—'), h('br'),
        h('code', { class: 'hint' }, account.client_id ?? '')),
      h('td', null, h('code', null, account.owner ?? '—'),
        account.owner_status && account.owner_status !== 'active'
          ? [' ', badge(account.owner_status, 'deny')] : null),
      h('td', null, account.purpose ?? '—'),
      h('td', null, badge(account.status ?? '—', account.status === 'active' ? 'ok' : 'muted')),
      h('td', { class: 'mono' }, Array.isArray(account.scopes) && account.scopes.length ? account.scopes.join(' ') : '—'),
      h('td', null, when(account.created_at)),
      h('td', null, when(account.expires_at)),
      h('td', null, account.last_used_at ? when(account.last_used_at) : 'never'),
      h('td', null, credentials.length
        ? h('ul', { class: 'plain' }, credentials.map((c) => h('li', null,
          `${c.kind ?? 'credential'} ${c.id ?? ''}, ${c.age_days ?? '?'} d old, `,
          c.usable ? 'usable' : 'not usable', c.expires_at ? `, expires ${when(c.expires_at)}` : '')))
        : 'none'),
      h('td', null, findings.length
        ? h('ul', { class: 'plain findings' }, findings.map((f) => h('li', null,
          badge(f.code ?? 'finding', 'warn'), ' ', f.detail ?? '')))
        : badge('no finding', 'ok')));
  });
  box.append(table(`Service accounts of ${tenant}`,
    ['Account', 'Owner', 'Purpose', 'Status', 'Scopes', 'Created', 'Expires', 'Last used', 'Credentials', 'Findings'],
    rows, { id: 'accounts-table' }));
}

// ------------------------------------------------------------------------------------------
// Policy diff

const PACK_FILE = /(\.cedar|\.cedarschema|\.cedarschema\.json)$/;

function isPackFile(name) {
  return PACK_FILE.test(name) || name === 'pack.toml';
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(new Error(`${file.name} could not be read`));
    reader.readAsText(file);
  });
}

async function runDiff(event) {
  event.preventDefault();
  const form = event.target;
  const files = {};
  const skipped = [];
  try {
    for (const file of $('diff-files').files) {
      files[file.name] = await readFile(file);
    }
    for (const file of $('diff-folder').files) {
      // A folder's files keep their path below the folder (tenants/acme.cedar).
      const path = (file.webkitRelativePath || file.name).split('/').slice(1).join('/') || file.name;
      if (!isPackFile(path.split('/').pop()) || path.split('/').some((part) => part.startsWith('.'))) {
        skipped.push(path);
        continue;
      }
      files[path] = await readFile(file);
    }
  } catch (error) {
    complain(error);
    return;
  }
  const name = $('diff-name').value.trim();
  if (name || $('diff-text').value.trim()) {
    if (!name) {
      complain(new Error('Give the typed-in file a name, e.g. documents.cedar.'));
      $('diff-name').focus();
      return;
    }
    files[name] = $('diff-text').value;
  }
  if (!Object.keys(files).length) {
    complain(new Error('Choose the candidate files, or type one in.'));
    $('diff-files').focus();
    return;
  }
  const body = { files };
  const since = $('diff-since').value.trim();
  if (since) body.since = since;
  const expect = $('diff-expect').value.split('\n').map((line) => line.trim()).filter(Boolean);
  if (expect.length) body.expect = expect;
  const examples = Number.parseInt($('diff-examples').value, 10);
  if (Number.isFinite(examples)) body.examples = examples;
  const button = event.submitter || form.querySelector('button[type=submit]');
  button.disabled = true;
  say(`Replaying the decision log against ${plural(Object.keys(files).length, 'file')}…`);
  try {
    const answer = await api('POST', '/v1/admin/diff', { body });
    renderDiff(answer, Object.keys(files), skipped);
    const report = answer?.report || {};
    say(`${plural(report.changed ?? 0, 'decision')} would change; ${answer?.unexpected ?? 0} unexpected.`);
  } catch (error) {
    $('diff-results').replaceChildren();
    complain(error);
  } finally {
    button.disabled = false;
  }
}

function changeRow(change) {
  const direction = change.direction === 'allow_to_deny' ? 'allow → deny' : change.direction === 'deny_to_allow' ? 'deny → allow' : String(change.direction ?? '—');
  const reasons = Array.isArray(change.reasons) ? change.reasons.join(' → ') : '—';
  return h('tr', null,
    h('td', null, change.decision_id
      ? hashLink(`/decisions/${enc(change.decision_id)}`, recordTime(change.time), `Decision ${change.decision_id}`)
      : recordTime(change.time)),
    h('td', null, change.tenant ?? '—'),
    h('td', { class: 'mono' }, change.principal ?? '—'),
    h('td', { class: 'mono' }, change.action ?? '—'),
    h('td', { class: 'mono' }, change.resource ?? '—'),
    h('td', null, badge(direction, change.direction === 'allow_to_deny' ? 'deny' : 'allow')),
    h('td', { class: 'mono' }, reasons),
    h('td', { class: 'mono' }, Array.isArray(change.policies) && change.policies.length ? change.policies.join(', ') : '—'));
}

const CHANGE_HEADERS = ['Decision', 'Tenant', 'Principal', 'Action', 'Resource', 'Change', 'Reasons', 'Policies'];

function renderDiff(answer, names, skipped) {
  const box = $('diff-results');
  box.replaceChildren();
  const report = answer?.report || {};
  const changed = report.changed ?? 0;
  const allowToDeny = report.allow_to_deny ?? 0;
  box.append(h('h2', null, 'Result'));
  box.append(h('p', { class: `headline ${changed ? 'headline-warn' : 'headline-ok'}`, id: 'diff-headline' },
    changed
      ? `${plural(changed, 'recorded decision')} would change: ${allowToDeny} allow → deny, ${changed - allowToDeny} deny → allow; ${answer?.unexpected ?? 0} not expected.`
      : 'No recorded decision would change.'));
  const notReplayed = report.not_replayed && typeof report.not_replayed === 'object'
    ? Object.entries(report.not_replayed).map(([reason, count]) => `${reason}: ${count}`).join(', ')
    : '';
  box.append(facts([
    ['Pack in force', h('code', null, answer?.current_revision ?? '—')],
    ['Candidate', h('code', null, answer?.candidate_revision ?? '—')],
    ['Entity data', answer?.entity_state === 'today' ? 'as it is today' : (answer?.entity_state ?? '—')],
    ['Candidate files', names.join(', ')],
    ['Records read', String(report.read ?? 0)],
    ['Replayed', `${report.replayed ?? 0} (${report.distinct_requests ?? 0} distinct requests)`],
    ['Not replayed', notReplayed || 'none'],
    ['Drift', `${plural(report.drift ?? 0, 'replay')} under the pack in force ${(report.drift ?? 0) === 1 ? 'differs' : 'differ'} from what was recorded (the data changed since)`],
    ['Changed', String(changed)],
    ['Unexpected', String(answer?.unexpected ?? report.unexpected ?? 0)],
    ['Took', `${report.elapsed_ms ?? '?'} ms`],
  ]));
  if (skipped.length) {
    box.append(h('p', { class: 'hint' }, `Left out (not pack files): ${skipped.join(', ')}`));
  }
  const groups = Array.isArray(report.groups) ? report.groups : [];
  if (groups.length) {
    box.append(h('h3', null, 'By policy and tenant'));
    for (const group of groups) {
      const direction = group.direction === 'allow_to_deny' ? 'allow → deny' : 'deny → allow';
      const examples = Array.isArray(group.examples) ? group.examples : [];
      box.append(h('div', { class: 'group' },
        h('h4', null, `${direction} · policy `, h('code', null, group.policy ?? '-'), ' · tenant ',
          h('code', null, group.tenant ?? '-'), ` · ${plural(group.count ?? 0, 'decision')}`),
        examples.length
          ? table(`Examples (${examples.length} of ${group.count ?? examples.length})`, CHANGE_HEADERS, examples.map(changeRow))
          : null));
    }
  }
  const changes = Array.isArray(report.changes) ? report.changes : [];
  if (changes.length) {
    const shown = changes.slice(0, 200);
    box.append(h('h3', null, 'Every change'));
    box.append(table(`Changes, oldest first (${shown.length} of ${changed} shown)`, CHANGE_HEADERS, shown.map(changeRow)));
  }
  if (Array.isArray(report.drift_examples) && report.drift_examples.length) {
    box.append(h('h3', null, 'Drift examples'),
      h('ul', null, report.drift_examples.map((id) => h('li', null, hashLink(`/decisions/${enc(id)}`, id)))));
  }
  box.append(h('details', null, h('summary', null, 'Raw answer'), pre(json(answer), 'Raw diff answer')));
}

// ------------------------------------------------------------------------------------------
// Start

function wire() {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('decision-search').addEventListener('submit', searchDecisions);
  $('reviews-tenant-form').addEventListener('submit', reviewsTenantSubmit);
  $('new-campaign').addEventListener('submit', createCampaign);
  $('accounts-form').addEventListener('submit', accountsSubmit);
  $('diff-form').addEventListener('submit', runDiff);
  const kind = $('campaign-reviewer-kind');
  kind.addEventListener('change', () => {
    const named = kind.value === 'principal';
    $('campaign-reviewer').disabled = !named;
    $('campaign-reviewer').required = named;
    if (named) $('campaign-reviewer').focus();
  });
  $('campaign-due').value = defaultDueDate();
  window.addEventListener('hashchange', () => {
    $('alert').textContent = '';
    route();
  });
}

async function start() {
  wire();
  await resumeSession();
  await route();
  document.body.dataset.ready = 'true';
}

start();

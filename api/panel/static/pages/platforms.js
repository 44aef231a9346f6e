// Platforms (bot accounts, OneBot v11 for now): connection status and counters, create/edit/delete, and
// the reverse WebSocket URL to configure in NapCat (or Lagrange, go-cqhttp). The access token is
// write-only: a read shows it masked, and a blank field on edit keeps the stored one.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { del, get, post, put } from '../api.js';
import { t } from '../i18n.js';
import { Badge, Card, Check, ErrorBox, Field, Page, Select, Status, Table, Text, fmt, useAction, useAsync, when } from '../ui.js';

const STATUS_KIND = { connected: 'ok', disconnected: 'warn', error: 'bad' };
const TYPES = [['onebot11', 'OneBot v11'], ['aiocqhttp', 'aiocqhttp (OneBot v11)']];
const BLANK = { name: '', type: 'onebot11', enabled: true, selfId: '', accessToken: '' };

// Where a OneBot v11 implementation connects: this edge, as the browser reaches it.
export function onebotUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/onebot/v11/ws`;
}

function PlatformForm({ platform, onDone }) {
  const editing = !!platform;
  const [v, setV] = useState(editing ? {
    name: platform.display_name || platform.name, type: platform.type, enabled: platform.enabled,
    selfId: (platform.config && platform.config.selfId) || '', accessToken: '',
  } : BLANK);
  const act = useAction();
  const set = (k) => (x) => setV({ ...v, [k]: x });
  const body = () => {
    const config = { selfId: v.selfId.trim() };
    if (v.accessToken) config.accessToken = v.accessToken; // write-only: blank on edit keeps the stored token
    const b = { name: v.name, display_name: v.name, type: v.type, enable: v.enabled, config };
    if (editing) b.expectedVersion = platform.version;
    return b;
  };
  const save = (e) => {
    e.preventDefault();
    act.run(async () => {
      await (editing ? put(`/api/platforms/${encodeURIComponent(platform.id)}`, body()) : post('/api/platforms', body()));
      onDone();
    }, t('Saved'));
  };
  const stored = editing && platform.config ? platform.config.accessToken : '';
  return html`<form class="card" id="platform-form" onSubmit=${save} aria-label=${editing ? t('Edit') : t('Create')}>
    <h2>${editing ? `${t('Edit')} ${platform.display_name || platform.id}` : t('Create')}</h2>
    <div class="row">
      <${Text} label=${t('Name')} name="name" required value=${v.name} onInput=${set('name')} />
      <${Select} label=${t('Type')} value=${v.type} onChange=${set('type')} options=${TYPES} />
    </div>
    <div class="row">
      <${Text} label=${t('Bot account (self id)')} name="selfId" inputmode="numeric" pattern="[0-9]*" value=${v.selfId} onInput=${set('selfId')} />
      <${Text} label=${t('Access token')} name="accessToken" type="password" autocomplete="off" value=${v.accessToken}
        onInput=${set('accessToken')} placeholder=${stored || ''} />
    </div>
    ${editing ? html`<p class="muted">${t('Leave the access token blank to keep the stored one.')}</p>` : null}
    <${Check} label=${t('Enabled')} checked=${v.enabled} onChange=${set('enabled')} />
    <${Status} action=${act} />
    <div class="actions"><button type="submit" class="primary" disabled=${act.busy}>${t('Save')}</button>
      <button type="button" onClick=${() => onDone(false)}>${t('Cancel')}</button></div>
  </form>`;
}

function Connect() {
  return html`<${Card} title=${t('Connect a QQ bot')}>
    <${Field} label=${t('OneBot v11 reverse WebSocket URL')} hint=${t('In NapCat: network settings, add a WebSocket client with this URL and the platform access token.')}>
      <input name="onebotUrl" readonly value=${onebotUrl()} onFocus=${(e) => e.currentTarget.select()} />
    </${Field}>
  </${Card}>`;
}

function Summary({ stats }) {
  if (!stats.data) return html`<${ErrorBox} error=${stats.error} />`;
  const s = stats.data.summary || {};
  return html`<${ErrorBox} error=${stats.error} /><dl class="stats" id="platform-summary">
    <div><dt>${t('Total')}</dt><dd>${fmt(s.total)}</dd></div>
    <div><dt>${t('Connected')}</dt><dd>${fmt(s.running)}</dd></div>
    <div><dt>${t('In error')}</dt><dd>${fmt(s.error)}</dd></div>
    <div><dt>${t('Errors')}</dt><dd>${fmt(s.total_errors)}</dd></div></dl>`;
}

export default function Platforms({ title }) {
  const list = useAsync(() => get('/api/platforms?page_size=100'));
  const stats = useAsync(() => get('/api/platform/stats'));
  const [editing, setEditing] = useState(null); // null: closed, false: new, object: edit
  const act = useAction();
  const refresh = () => { list.reload(); stats.reload(); };
  const remove = (p) => confirm(t('Delete this item?')) && act.run(async () => { await del(`/api/platforms/${encodeURIComponent(p.id)}`); refresh(); });
  const done = () => { setEditing(null); refresh(); };
  const items = list.data ? list.data.items : [];
  const label = (p) => p.display_name || p.name || p.id;
  const counter = (p, k) => (p.stats ? p.stats[k] ?? 0 : '—');
  return html`<${Page} title=${title} actions=${html`<button type="button" class="primary" id="new-platform" onClick=${() => setEditing(false)}>${t('Create')}</button>
      <button type="button" id="refresh-platforms" onClick=${refresh}>${t('Refresh')}</button>`}>
    <${ErrorBox} error=${list.error} />
    <${Status} action=${act} />
    <div class="grid">
      <${Card} title=${t('Statistics')}><${Summary} stats=${stats} /></${Card}>
      <${Connect} />
    </div>
    ${editing !== null ? html`<${PlatformForm} key=${editing ? editing.id : 'new'} platform=${editing || null} onDone=${done} />` : null}
    <${Table} rows=${items} columns=${[
      { label: t('Name'), render: (p) => html`${label(p)}<div class="muted mono">${p.id}</div>` },
      { label: t('Type'), render: (p) => html`<${Badge}>${p.type}<//>` },
      { label: t('Status'), render: (p) => html`<span class="platform-status" data-platform=${p.id}><${Badge} kind=${STATUS_KIND[p.status]}>${t(p.status === 'connected' ? 'Connected' : p.status === 'error' ? 'Error' : 'Disconnected')}<//></span>
        ${p.instanceId ? html`<div class="muted mono">${p.instanceId}</div>` : null}` },
      { label: t('Bot account (self id)'), render: (p) => fmt(p.selfId) },
      { key: 'enabled', label: t('Enabled') },
      { label: t('Received'), render: (p) => counter(p, 'received') },
      { label: t('Sent'), render: (p) => counter(p, 'sent') },
      { label: t('Errors'), render: (p) => counter(p, 'errors') },
      { label: t('Connected at'), render: (p) => when(p.connectedAt) },
      { label: t('Last event'), render: (p) => when(p.lastEventAt) },
      { label: t('Actions'), render: (p) => html`<div class="actions">
        <button type="button" onClick=${() => setEditing(p)} aria-label=${`${t('Edit')} ${label(p)}`}>${t('Edit')}</button>
        <button type="button" class="danger" onClick=${() => remove(p)} aria-label=${`${t('Delete')} ${label(p)}`}>${t('Delete')}</button></div>` },
    ]} />
  </${Page}>`;
}

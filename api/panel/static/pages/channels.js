// Channels (LLM providers): list with health and stats, create/edit, delete, test (the upstream answer),
// live model list.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { del, get, post, put, qs } from '../api.js';
import { t } from '../i18n.js';
import { Badge, Card, Check, ErrorBox, Json, Num, Page, Pager, Select, Status, Table, Text, useAction, useAsync, when } from '../ui.js';

const BLANK = { name: '', adapterType: 'openai', baseUrl: '', apiKey: '', models: '', priority: 100, weight: 1, enabled: true };
const STATUS_KIND = { active: 'ok', idle: 'ok', error: 'bad', cooldown: 'warn', disabled: 'warn' };

function ChannelForm({ channel, onDone }) {
  const editing = !!channel;
  const [v, setV] = useState(editing ? { ...channel, apiKey: '', models: (channel.models || []).join(', ') } : BLANK);
  const act = useAction();
  const set = (k) => (x) => setV({ ...v, [k]: x });
  const body = () => {
    const b = {
      name: v.name, adapterType: v.adapterType, baseUrl: v.baseUrl, priority: v.priority, weight: v.weight, enabled: v.enabled,
      models: v.models.split(',').map((m) => m.trim()).filter(Boolean),
    };
    if (v.apiKey) b.apiKey = v.apiKey; // write-only: blank on edit keeps the stored key
    if (editing) b.expectedVersion = channel.version;
    return b;
  };
  const save = (e) => {
    e.preventDefault();
    act.run(async () => {
      await (editing ? put(`/api/channels/${encodeURIComponent(channel.id)}`, body()) : post('/api/channels', body()));
      onDone();
    }, t('Saved'));
  };
  return html`<form class="card" id="channel-form" onSubmit=${save} aria-label=${editing ? t('Edit') : t('Create')}>
    <h2>${editing ? `${t('Edit')} ${channel.name}` : t('Create')}</h2>
    <div class="row">
      <${Text} label=${t('Name')} name="name" required value=${v.name} onInput=${set('name')} />
      <${Select} label=${t('Type')} value=${v.adapterType} onChange=${set('adapterType')} options=${['openai', 'claude', 'gemini']} />
    </div>
    <${Text} label=${t('Base URL')} name="baseUrl" type="url" required value=${v.baseUrl} onInput=${set('baseUrl')} />
    <${Text} label=${t('API key')} name="apiKey" type="password" autocomplete="off" value=${v.apiKey} onInput=${set('apiKey')}
      placeholder=${editing ? channel.apiKey || '' : ''} />
    <${Text} label=${`${t('Models')} (a, b, c)`} name="models" value=${v.models} onInput=${set('models')} />
    <div class="row">
      <${Num} label=${t('Priority')} name="priority" value=${v.priority} onInput=${set('priority')} min="0" />
      <${Num} label=${t('Weight')} name="weight" value=${v.weight} onInput=${set('weight')} min="1" max="100" />
    </div>
    <${Check} label=${t('Enabled')} checked=${v.enabled} onChange=${set('enabled')} />
    <${Status} action=${act} />
    <div class="actions"><button type="submit" class="primary" disabled=${act.busy}>${t('Save')}</button>
      <button type="button" onClick=${() => onDone(false)}>${t('Cancel')}</button></div>
  </form>`;
}

function Probe({ probe, onClose }) {
  if (!probe) return null;
  return html`<${Card} title=${`${probe.title}: ${probe.channel}`}>
    <${ErrorBox} error=${probe.error} />
    ${probe.busy ? html`<p class="muted" role="status">${t('Loading…')}</p>` : null}
    ${probe.result && probe.kind === 'test' ? html`<dl class="stats" id="test-result">
      <div><dt>${t('Status')}</dt><dd>${probe.result.success ? 'ok' : 'failed'}</dd></div>
      <div><dt>${t('Model')}</dt><dd>${probe.result.model}</dd></div>
      <div><dt>${t('Elapsed (ms)')}</dt><dd>${probe.result.elapsed}</dd></div></dl>
      <h3>${t('Upstream answer')}</h3><pre class="json" id="upstream-answer">${String(probe.result.response ?? '')}</pre>` : null}
    ${probe.result && probe.kind === 'models' ? html`<ul id="model-list">${(Array.isArray(probe.result) ? probe.result : probe.result.models || [])
      .map((m) => html`<li>${typeof m === 'string' ? m : m.id || JSON.stringify(m)}</li>`)}</ul>` : null}
    <button type="button" onClick=${onClose}>${t('Close')}</button>
  </${Card}>`;
}

export default function Channels({ title }) {
  const [pageNo, setPage] = useState(1);
  const list = useAsync(() => get(`/api/channels${qs({ withStats: 1, page: pageNo })}`), [pageNo]);
  const [editing, setEditing] = useState(null); // null: closed, false: new, object: edit
  const [probe, setProbe] = useState(null);
  const act = useAction();
  const run = async (c, kind) => {
    setProbe({ channel: c.name, kind, title: kind === 'test' ? t('Test') : t('Models'), busy: true });
    try {
      const result = kind === 'test' ? await post(`/api/channels/${encodeURIComponent(c.id)}/test`, {})
        : await get(`/api/channels/${encodeURIComponent(c.id)}/models`);
      setProbe((p) => ({ ...p, busy: false, result }));
    } catch (error) {
      setProbe((p) => ({ ...p, busy: false, error }));
    }
    list.reload();
  };
  const remove = (c) => confirm(t('Delete this item?')) && act.run(async () => { await del(`/api/channels/${encodeURIComponent(c.id)}`); list.reload(); });
  const done = () => { setEditing(null); list.reload(); };
  const items = list.data ? list.data.items : [];
  const stat = (c, k) => (c.stats ? c.stats[k] ?? '—' : '—');
  return html`<${Page} title=${title} actions=${html`<button type="button" class="primary" id="new-channel" onClick=${() => setEditing(false)}>${t('Create')}</button>
      <button type="button" onClick=${list.reload}>${t('Refresh')}</button>`}>
    <${ErrorBox} error=${list.error} />
    <${Status} action=${act} />
    ${editing !== null ? html`<${ChannelForm} key=${editing ? editing.id : 'new'} channel=${editing || null} onDone=${done} />` : null}
    <${Probe} probe=${probe} onClose=${() => setProbe(null)} />
    <${Table} rows=${items} columns=${[
      { key: 'name', label: t('Name') },
      { key: 'adapterType', label: t('Type') },
      { label: t('Status'), render: (c) => html`<${Badge} kind=${STATUS_KIND[c.status]}>${c.status}<//>${c.lastError ? html`<div class="muted">${c.lastError}</div>` : null}` },
      { label: t('Models'), render: (c) => (c.models || []).join(', ') || '—' },
      { key: 'priority', label: t('Priority') },
      { label: t('Calls'), render: (c) => `${stat(c, 'calls')} / ${stat(c, 'failed')}` },
      { label: t('Avg latency (ms)'), render: (c) => stat(c, 'avgLatencyMs') },
      { label: t('Tested at'), render: (c) => when(c.testedAt) },
      { label: t('Actions'), render: (c) => html`<div class="actions">
        <button type="button" onClick=${() => run(c, 'test')} aria-label=${`${t('Test')} ${c.name}`}>${t('Test')}</button>
        <button type="button" onClick=${() => run(c, 'models')} aria-label=${`${t('Models')} ${c.name}`}>${t('Models')}</button>
        <button type="button" onClick=${() => setEditing(c)} aria-label=${`${t('Edit')} ${c.name}`}>${t('Edit')}</button>
        <button type="button" class="danger" onClick=${() => remove(c)} aria-label=${`${t('Delete')} ${c.name}`}>${t('Delete')}</button></div>` },
    ]} />
    ${list.data ? html`<${Pager} page=${list.data.page} pageSize=${list.data.page_size} total=${list.data.total} onPage=${setPage} />` : null}
  </${Page}>`;
}

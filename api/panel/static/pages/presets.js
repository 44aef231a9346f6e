// Presets: list (type filter, search), create/edit, delete, set default, copy, export (a download from
// GET /api/presets/{id}/export) and import (multipart file to POST /api/presets/import).
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api, del, get, post, put, qs } from '../api.js';
import { t } from '../i18n.js';
import { Area, Badge, Card, Check, ErrorBox, Field, Num, Page, Pager, Select, Status, Table, Text, useAction, useAsync } from '../ui.js';

function PresetForm({ preset, onDone }) {
  const editing = !!preset;
  const p = preset || {};
  const [v, setV] = useState({
    id: p.id || '', name: p.name || '', description: p.description || '', category: p.category || 'general',
    systemPrompt: p.systemPrompt || '', model: p.model || '', enabled: p.enabled ?? true,
    temperature: p.modelParams ? p.modelParams.temperature : null, maxTokens: p.modelParams ? p.modelParams.max_tokens : null,
  });
  const act = useAction();
  const set = (k) => (x) => setV({ ...v, [k]: x });
  const save = (e) => {
    e.preventDefault();
    const modelParams = { ...(p.modelParams || {}) };
    if (v.temperature !== null) modelParams.temperature = v.temperature; else delete modelParams.temperature;
    if (v.maxTokens !== null) modelParams.max_tokens = v.maxTokens; else delete modelParams.max_tokens;
    const body = { name: v.name, description: v.description, category: v.category, systemPrompt: v.systemPrompt, model: v.model, enabled: v.enabled, modelParams };
    act.run(async () => {
      if (editing) await put(`/api/presets/${encodeURIComponent(p.id)}`, { ...body, expectedVersion: p.version });
      else await post('/api/presets', v.id ? { ...body, id: v.id } : body);
      onDone();
    }, t('Saved'));
  };
  return html`<form class="card" id="preset-form" onSubmit=${save} aria-label=${editing ? t('Edit') : t('Create')}>
    <h2>${editing ? `${t('Edit')} ${p.id}` : t('Create')}</h2>
    <div class="row">
      ${editing ? null : html`<${Text} label="id" name="id" value=${v.id} onInput=${set('id')} pattern="[A-Za-z0-9_-]{3,50}" />`}
      <${Text} label=${t('Name')} name="name" required value=${v.name} onInput=${set('name')} />
      <${Text} label=${t('Category')} name="category" value=${v.category} onInput=${set('category')} />
      <${Text} label=${t('Model')} name="model" value=${v.model} onInput=${set('model')} />
    </div>
    <${Text} label=${t('Description')} name="description" value=${v.description} onInput=${set('description')} />
    <${Area} label=${t('System prompt')} name="systemPrompt" rows="6" value=${v.systemPrompt} onInput=${set('systemPrompt')} />
    <div class="row">
      <${Num} label=${t('Temperature')} name="temperature" step="0.1" min="0" max="2" value=${v.temperature} onInput=${set('temperature')} />
      <${Num} label=${t('Max tokens')} name="maxTokens" min="1" value=${v.maxTokens} onInput=${set('maxTokens')} />
    </div>
    <${Check} label=${t('Enabled')} checked=${v.enabled} onChange=${set('enabled')} />
    <${Status} action=${act} />
    <div class="actions"><button type="submit" class="primary" disabled=${act.busy}>${t('Save')}</button>
      <button type="button" onClick=${() => onDone()}>${t('Cancel')}</button></div>
  </form>`;
}

function ImportForm({ onDone }) {
  const [file, setFile] = useState(null);
  const [overwrite, setOverwrite] = useState(false);
  const act = useAction();
  const submit = (e) => {
    e.preventDefault();
    const form = new FormData();
    form.append('file', file);
    act.run(async () => {
      const r = await api('POST', `/api/presets/import${qs({ overwrite: overwrite ? 'true' : '' })}`, form);
      onDone();
      return r;
    }, t('Done'));
  };
  return html`<form class="card" id="preset-import" onSubmit=${submit}>
    <h2>${t('Import')}</h2>
    <${Field} label=${t('Upload a JSON or YAML preset file')}><input type="file" accept=".json,.yaml,.yml,application/json" required
      onChange=${(e) => setFile(e.currentTarget.files[0])} /></${Field}>
    <${Check} label=${t('Overwrite existing')} checked=${overwrite} onChange=${setOverwrite} />
    <${Status} action=${act} />
    <button type="submit" class="primary" disabled=${!file || act.busy}>${t('Import')}</button>
  </form>`;
}

export default function Presets({ title }) {
  const [filter, setFilter] = useState({ type: 'all', search: '', page: 1 });
  const list = useAsync(() => get(`/api/presets${qs(filter)}`), [filter.type, filter.search, filter.page]);
  const [editing, setEditing] = useState(null);
  const [importing, setImporting] = useState(false);
  const act = useAction();
  const reload = () => { setEditing(null); setImporting(false); list.reload(); };
  const path = (p, tail = '') => `/api/presets/${encodeURIComponent(p.id)}${tail}`;
  const copy = (p) => {
    const newId = prompt(t('New id'), `${p.id}-copy`);
    if (newId) act.run(async () => { await post(path(p, '/copy'), { newId, newName: `${p.name} (copy)` }); list.reload(); });
  };
  const setDefault = (p) => act.run(async () => { await post(path(p, '/set-default')); list.reload(); });
  const remove = (p) => confirm(t('Delete this item?')) && act.run(async () => { await del(path(p)); list.reload(); });
  return html`<${Page} title=${title} actions=${html`
      <button type="button" class="primary" id="new-preset" onClick=${() => setEditing(false)}>${t('Create')}</button>
      <button type="button" onClick=${() => setImporting(!importing)}>${t('Import')}</button>`}>
    <div class="row">
      <${Select} label=${t('Type')} value=${filter.type} onChange=${(type) => setFilter({ ...filter, type, page: 1 })} options=${['all', 'system', 'user']} />
      <${Text} label=${t('Search')} type="search" value=${filter.search} onInput=${(search) => setFilter({ ...filter, search, page: 1 })} />
    </div>
    <${ErrorBox} error=${list.error} />
    <${Status} action=${act} />
    ${importing ? html`<${ImportForm} onDone=${reload} />` : null}
    ${editing !== null ? html`<${PresetForm} key=${editing ? editing.id : 'new'} preset=${editing || null} onDone=${reload} />` : null}
    <${Card}>
    <${Table} rows=${list.data ? list.data.items : []} columns=${[
      { key: 'id', label: 'id' },
      { label: t('Name'), render: (p) => html`${p.name} ${p.isDefault ? html`<${Badge} kind="ok">${t('Default')}<//>` : null}` },
      { key: 'type', label: t('Type') },
      { key: 'model', label: t('Model') },
      { key: 'enabled', label: t('Enabled') },
      { label: t('Actions'), render: (p) => html`<div class="actions">
        <button type="button" onClick=${() => setEditing(p)} aria-label=${`${t('Edit')} ${p.id}`}>${t('Edit')}</button>
        <button type="button" disabled=${p.isDefault} onClick=${() => setDefault(p)} aria-label=${`${t('Set default')} ${p.id}`}>${t('Set default')}</button>
        <button type="button" onClick=${() => copy(p)} aria-label=${`${t('Copy')} ${p.id}`}>${t('Copy')}</button>
        <a class="button" href=${path(p, '/export?format=json')} download=${`${p.id}.json`}>${t('Export')}</a>
        <button type="button" class="danger" onClick=${() => remove(p)} aria-label=${`${t('Delete')} ${p.id}`}>${t('Delete')}</button></div>` },
    ]} />
    ${list.data ? html`<${Pager} page=${list.data.page} pageSize=${list.data.page_size} total=${list.data.total} onPage=${(page) => setFilter({ ...filter, page })} />` : null}
    </${Card}>
  </${Page}>`;
}

// Config: the document (GET /api/config) as a form, one section at a time. Only the fields changed are
// sent (PUT /api/config, deep-merged, with expectedVersion), so masked secrets are never written back.
// History (GET /api/config/history) with rollback (POST /api/config/rollback).
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { get, post, put, qs } from '../api.js';
import { t } from '../i18n.js';
import { Area, Card, Check, ErrorBox, Num, Page, Pager, Select, Status, Table, Text, useAction, useAsync, when } from '../ui.js';

function setIn(obj, path, value) {
  const out = { ...obj };
  let node = out;
  path.slice(0, -1).forEach((k) => { node[k] = { ...(node[k] || {}) }; node = node[k]; });
  node[path[path.length - 1]] = value;
  return out;
}

function Leaf({ path, value, onChange }) {
  const label = path.join('.');
  if (typeof value === 'boolean') return html`<${Check} label=${label} checked=${value} onChange=${onChange} />`;
  if (typeof value === 'number') return html`<${Num} label=${label} value=${value} step="any" onInput=${onChange} />`;
  if (Array.isArray(value) && value.every((x) => typeof x === 'string')) {
    return html`<${Text} label=${`${label} (a, b)`} value=${value.join(', ')}
      onInput=${(v) => onChange(v.split(',').map((x) => x.trim()).filter(Boolean))} />`;
  }
  if (typeof value === 'string' || value === null) return html`<${Text} label=${label} value=${value ?? ''} onInput=${onChange} />`;
  return html`<${Area} label=${`${label} ${t('Value (JSON)')}`} rows="3" value=${JSON.stringify(value, null, 1)}
    onInput=${(v) => { try { onChange(JSON.parse(v)); } catch { /* not JSON yet: keep typing */ } }} />`;
}

function Fields({ path, value, onChange }) {
  return html`${Object.entries(value).map(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length
    ? html`<fieldset><legend>${[...path, k].join('.')}</legend><${Fields} path=${[...path, k]} value=${v} onChange=${onChange} /></fieldset>`
    : html`<${Leaf} path=${[...path, k]} value=${v} onChange=${(x) => onChange([...path, k], x)} />`))}`;
}

function History({ onRolledBack }) {
  const [pageNo, setPage] = useState(1);
  const hist = useAsync(() => get(`/api/config/history${qs({ page: pageNo })}`), [pageNo]);
  const act = useAction();
  const rollback = (h) => confirm(t('Rollback to this version?')) && act.run(async () => {
    await post('/api/config/rollback', { version: h.version });
    hist.reload(); onRolledBack();
  });
  return html`<${Card} title=${t('History')} wide>
    <${ErrorBox} error=${hist.error} /><${Status} action=${act} />
    <${Table} rows=${hist.data ? hist.data.items : []} columns=${[
      { key: 'version', label: t('Version') }, { key: 'actor', label: t('Actor') },
      { label: t('Time'), render: (h) => when(h.changedAt) }, { key: 'kind', label: t('Type') },
      { label: t('Changed paths'), render: (h) => (h.paths || []).join(', ') },
      { label: t('Actions'), render: (h) => html`<button type="button" onClick=${() => rollback(h)} aria-label=${`${t('Rollback')} ${h.version}`}>${t('Rollback')}</button>` },
    ]} />
    ${hist.data ? html`<${Pager} page=${hist.data.page} pageSize=${hist.data.page_size} total=${hist.data.total} onPage=${setPage} />` : null}
  </${Card}>`;
}

export default function Config({ title }) {
  const doc = useAsync(() => get('/api/config'));
  const [section, setSection] = useState('');
  const [patch, setPatch] = useState({});
  const act = useAction();
  const config = doc.data ? doc.data.config : {};
  const sections = Object.keys(config);
  const current = section || sections[0] || '';
  const merged = (base, p) => (p && typeof p === 'object' && !Array.isArray(p) && base && typeof base === 'object' && !Array.isArray(base)
    ? Object.fromEntries([...new Set([...Object.keys(base), ...Object.keys(p)])].map((k) => [k, k in p ? merged(base[k], p[k]) : base[k]]))
    : p === undefined ? base : p);
  const view = merged(config[current] || {}, patch[current]);
  const save = (e) => {
    e.preventDefault();
    act.run(async () => {
      await put('/api/config', { ...patch, expectedVersion: doc.data.version });
      setPatch({}); doc.reload();
    }, t('Saved'));
  };
  const pick = (s) => { setSection(s); setPatch({}); };
  return html`<${Page} title=${title} actions=${html`<button type="button" onClick=${doc.reload}>${t('Refresh')}</button>`}>
    <${ErrorBox} error=${doc.error} />
    ${doc.data ? html`<form class="card" id="config-form" onSubmit=${save}>
      <div class="row">
        <${Select} label=${t('Section')} value=${current} onChange=${pick} options=${sections} />
      </div>
      <p class="muted">${t('Version')} ${doc.data.version}</p>
      ${view && typeof view === 'object' ? html`<${Fields} path=${[current]} value=${view} onChange=${(path, x) => setPatch((p) => setIn(p, path, x))} />`
          : html`<${Leaf} path=${[current]} value=${view} onChange=${(x) => setPatch({ [current]: x })} />`}
      <${Status} action=${act} />
      <button type="submit" class="primary" disabled=${act.busy}>${t('Save')}</button>
    </form>` : null}
    <${History} onRolledBack=${doc.reload} />
  </${Page}>`;
}

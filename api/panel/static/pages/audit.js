// Audit: the event browser (GET /api/audit/events with filters) and one stream's full history
// (GET /api/audit/streams/{streamId}, at #/audit/<streamId>).
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { get, qs } from '../api.js';
import { t } from '../i18n.js';
import { Card, ErrorBox, Json, Page, Pager, Table, Text, useAsync, when } from '../ui.js';

const enc = encodeURIComponent;
const actorOf = (e) => (e.metadata && (e.metadata.actor || e.metadata.principal)) || e.actor || '—';

function EventRows({ items }) {
  return html`<${Table} rows=${items} columns=${[
    { key: 'position', label: '#' },
    { label: t('Time'), render: (e) => when(e.recordedAt || e.timestamp) },
    { key: 'type', label: t('Type') },
    { label: t('Stream'), render: (e) => html`<a href=${`#/audit/${enc(e.stream)}`}>${e.stream}</a> v${e.version}` },
    { label: t('Actor'), render: actorOf },
    { label: t('Detail'), render: (e) => html`<details><summary>JSON</summary><${Json} value=${e} /></details>` },
  ]} />`;
}

function StreamHistory({ id, title }) {
  const hist = useAsync(() => get(`/api/audit/streams/${enc(id)}`), [id]);
  const d = hist.data;
  const items = d ? (Array.isArray(d) ? d : d.items || d.events || []) : [];
  return html`<${Page} title=${`${t('Stream history')}: ${id}`} actions=${html`<a class="button" href="#/audit">${title}</a>`}>
    <${ErrorBox} error=${hist.error} />
    <${Card}><${EventRows} items=${items} /></${Card}>
  </${Page}>`;
}

export default function Audit({ title, arg }) {
  const [f, setF] = useState({ stream: '', type: '', actor: '', since: '', until: '', page: 1 });
  const [applied, setApplied] = useState(f);
  const events = useAsync(() => get(`/api/audit/events${qs(applied)}`), [JSON.stringify(applied)]);
  if (arg) return html`<${StreamHistory} id=${arg} title=${title} />`;
  const set = (k) => (v) => setF({ ...f, [k]: v });
  // datetime-local is the browser's local time: send it as an absolute instant.
  const iso = (v) => (v ? new Date(v).toISOString() : '');
  const apply = (e) => { e.preventDefault(); setApplied({ ...f, since: iso(f.since), until: iso(f.until), page: 1 }); };
  return html`<${Page} title=${title}>
    <form class="row" onSubmit=${apply} aria-label=${t('Filter')}>
      <${Text} label=${t('Stream')} value=${f.stream} onInput=${set('stream')} />
      <${Text} label=${t('Type')} value=${f.type} onInput=${set('type')} />
      <${Text} label=${t('Actor')} value=${f.actor} onInput=${set('actor')} />
      <${Text} label="since" type="datetime-local" value=${f.since} onInput=${set('since')} />
      <${Text} label="until" type="datetime-local" value=${f.until} onInput=${set('until')} />
      <button type="submit" class="primary">${t('Apply')}</button>
    </form>
    <${ErrorBox} error=${events.error} />
    <${Card}>
      <${EventRows} items=${events.data ? events.data.items : []} />
      ${events.data ? html`<${Pager} page=${events.data.page} pageSize=${events.data.page_size} total=${events.data.total} onPage=${(page) => setApplied({ ...applied, page })} />` : null}
    </${Card}>
  </${Page}>`;
}

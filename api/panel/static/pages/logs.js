// Logs: the live `logs` channel of WS /ws (the last 100 lines, then live) with level/service/search
// filters applied in the browser, and the stored logs from GET /api/logs with the same filters on the server.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { get, liveSocket, qs } from '../api.js';
import { t } from '../i18n.js';
import { Card, ErrorBox, Page, Pager, Select, Table, Text, useAsync, when } from '../ui.js';

const LEVELS = ['', 'debug', 'info', 'warning', 'error', 'critical'];
const RANK = { debug: 0, info: 1, warning: 2, warn: 2, error: 3, critical: 4 };
const KEEP = 500;

function matches(line, f) {
  if (f.level && (RANK[String(line.level).toLowerCase()] ?? 0) < RANK[f.level]) return false;
  if (f.service && !String(line.service || '').includes(f.service)) return false;
  if (f.search) {
    const s = f.search.toLowerCase();
    if (!String(line.message || '').toLowerCase().includes(s) && !String(line.logger || '').toLowerCase().includes(s)) return false;
  }
  return true;
}

function Line({ l }) {
  return html`<li class=${`lvl-${String(l.level).toUpperCase()}`}>
    <span class="muted">${when(l.timestamp)}</span> [${String(l.level).toUpperCase()}] ${l.service}/${l.instanceId} ${l.logger}: ${l.message}
    ${l.requestId ? html` <span class="muted">rid=${l.requestId}</span>` : null}</li>`;
}

// The level filter means "this level and above", on the server as in the live list.
const atLeast = (level) => (level ? LEVELS.slice(LEVELS.indexOf(level)).join(',') : '');

function Stored({ f }) {
  const [pageNo, setPage] = useState(1);
  const logs = useAsync(() => get(`/api/logs${qs({ level: atLeast(f.level), service: f.service, search: f.search, page: pageNo })}`), [f.level, f.service, f.search, pageNo]);
  return html`<${Card} title=${t('Stored logs')} wide>
    <button type="button" onClick=${logs.reload}>${t('Refresh')}</button>
    <${ErrorBox} error=${logs.error} />
    <${Table} rows=${logs.data ? logs.data.items : []} columns=${[
      { label: t('Time'), render: (l) => when(l.timestamp) }, { key: 'level', label: t('Level') },
      { key: 'service', label: t('Service') }, { key: 'logger', label: 'logger' }, { key: 'message', label: t('Message') },
    ]} />
    ${logs.data ? html`<${Pager} page=${logs.data.page} pageSize=${logs.data.page_size} total=${logs.data.total} onPage=${setPage} />` : null}
  </${Card}>`;
}

export default function Logs({ title }) {
  const [f, setF] = useState({ level: '', service: '', search: '' });
  const [lines, setLines] = useState([]);
  const [paused, setPaused] = useState(false);
  const [state, setState] = useState('');
  useEffect(() => {
    if (paused) return undefined;
    const sock = liveSocket(['logs'], (frame) => {
      if (frame.channel === 'logs') setLines((old) => [frame.data, ...old].slice(0, KEEP));
      else if (frame.type === 'subscribed') setState('subscribed');
    }, (s) => setState(s === 'open' ? 'connecting' : s));
    return () => sock.close();
  }, [paused]);
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const shown = lines.filter((l) => matches(l, f));
  return html`<${Page} title=${title} actions=${html`
      <button type="button" id="logs-pause" onClick=${() => setPaused(!paused)}>${paused ? t('Resume') : t('Pause')}</button>
      <button type="button" onClick=${() => setLines([])}>${t('Clear list')}</button>`}>
    <div class="row">
      <${Select} label=${t('Level')} value=${f.level} onChange=${set('level')} options=${LEVELS.map((l) => [l, l || '—'])} />
      <${Text} label=${t('Service')} value=${f.service} onInput=${set('service')} />
      <${Text} label=${t('Search')} type="search" value=${f.search} onInput=${set('search')} />
    </div>
    <${Card} title=${t('Live')} wide>
      <p class="muted" id="logs-state" data-state=${paused ? 'paused' : state} aria-live="polite">${paused ? t('Paused') : state === 'subscribed' ? t('Connected') : state}</p>
      <ul class="feed" id="log-feed">${shown.map((l, i) => html`<${Line} key=${i} l=${l} />`)}</ul>
    </${Card}>
    <${Stored} f=${f} />
  </${Page}>`;
}

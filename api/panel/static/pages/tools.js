// Tools: list with enable toggles and dangerous flags, category toggles, the global allowDangerous switch,
// a tool tester (POST /api/tools/test) and the tool logs.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { get, post, put, qs } from '../api.js';
import { t } from '../i18n.js';
import { Area, Card, Check, ErrorBox, Json, Page, Pager, Select, Status, Table, Text, parseJson, useAction, useAsync, when } from '../ui.js';

function Tester({ tools }) {
  const [name, setName] = useState('');
  const [args, setArgs] = useState('{}');
  const [result, setResult] = useState(null);
  const act = useAction();
  const run = (e) => {
    e.preventDefault();
    act.run(async () => {
      setResult(null);
      setResult(await post('/api/tools/test', { toolName: name || tools[0].name, arguments: parseJson(args, t('Arguments (JSON)')) }));
    }, null);
  };
  return html`<form class="card" id="tool-tester" onSubmit=${run}>
    <h2>${t('Tool tester')}</h2>
    <${Select} label=${t('Name')} value=${name} onChange=${setName} options=${tools.map((x) => x.name)} />
    <${Area} label=${t('Arguments (JSON)')} rows="3" value=${args} onInput=${setArgs} />
    <${Status} action=${act} />
    <button type="submit" class="primary" disabled=${act.busy || !tools.length}>${t('Run')}</button>
    ${result ? html`<p>${result.success ? '✓' : '✗'} ${result.toolName} · ${t('Duration')} ${result.duration}</p>
      ${result.error ? html`<${ErrorBox} error=${{ message: result.error }} />` : null}<${Json} value=${result.result} />` : null}
  </form>`;
}

function Logs() {
  const [f, setF] = useState({ toolName: '', success: '', page: 1 });
  const logs = useAsync(() => get(`/api/tools/logs${qs(f)}`), [f.toolName, f.success, f.page]);
  return html`<${Card} title=${t('Tool logs')} wide>
    <div class="row">
      <${Text} label=${t('Name')} value=${f.toolName} onInput=${(toolName) => setF({ ...f, toolName, page: 1 })} />
      <${Select} label=${t('Status')} value=${f.success} onChange=${(success) => setF({ ...f, success, page: 1 })} options=${[['', '—'], ['true', '✓'], ['false', '✗']]} />
      <button type="button" onClick=${logs.reload}>${t('Refresh')}</button>
    </div>
    <${ErrorBox} error=${logs.error} />
    <${Table} rows=${logs.data ? logs.data.items : []} columns=${[
      { label: t('Time'), render: (l) => when(l.timestamp) }, { key: 'toolName', label: t('Name') },
      { key: 'args', label: t('Arguments (JSON)') }, { key: 'success', label: t('Status') },
      { label: t('Result'), render: (l) => (l.error ? l.error : JSON.stringify(l.result)) },
      { key: 'duration', label: t('Duration') }, { key: 'caller', label: t('Actor') },
    ]} />
    ${logs.data ? html`<${Pager} page=${logs.data.page} pageSize=${logs.data.page_size} total=${logs.data.total} onPage=${(page) => setF({ ...f, page })} />` : null}
  </${Card}>`;
}

export default function Tools({ title }) {
  const list = useAsync(() => get(`/api/tools${qs({ page_size: 100 })}`));
  const dangerous = useAsync(() => get('/api/tools/dangerous'));
  const act = useAction();
  const tools = list.data ? list.data.items : [];
  const enc = encodeURIComponent;
  const refresh = () => { list.reload(); dangerous.reload(); };
  const toggle = (x, enabled) => act.run(async () => { await post(`/api/tools/${enc(x.name)}/toggle`, { enabled }); refresh(); }, t('Saved'));
  const flag = (x, isDangerous) => act.run(async () => { await post('/api/tools/dangerous/toggle', { toolName: x.name, isDangerous }); refresh(); }, t('Saved'));
  const category = (key, enabled) => act.run(async () => { await put(`/api/tools/category/${enc(key)}/toggle`, { enabled }); refresh(); }, t('Saved'));
  const allow = (allowDangerous) => act.run(async () => { await put('/api/tools/dangerous', { ...dangerous.data, allowDangerous }); refresh(); }, t('Saved'));
  const categories = list.data && list.data.categories ? Object.entries(list.data.categories) : [];
  return html`<${Page} title=${title} actions=${html`<button type="button" onClick=${refresh}>${t('Refresh')}</button>`}>
    <${ErrorBox} error=${list.error || dangerous.error} />
    <${Status} action=${act} />
    <div class="grid">
      <${Card} title=${t('Category toggles')}>
        ${categories.map(([key, c]) => html`<${Check} label=${`${c.name || key} (${c.toolCount ?? '?'})`} checked=${c.enabled} onChange=${(v) => category(key, v)} />`)}
        ${dangerous.data ? html`<${Check} label=${t('Allow dangerous tools')} checked=${dangerous.data.allowDangerous} onChange=${allow} />` : null}
      </${Card}>
      <${Tester} tools=${tools} />
      <${Card} title=${t('Tools')} wide>
        <${Table} rows=${tools} columns=${[
          { key: 'name', label: t('Name') }, { key: 'description', label: t('Description') },
          { key: 'source', label: t('Source') }, { key: 'category', label: t('Category') },
          { label: t('Enabled'), render: (x) => html`<${Check} label=${`${t('Enabled')}: ${x.name}`} checked=${x.enabled} onChange=${(v) => toggle(x, v)} />` },
          { label: t('Dangerous'), render: (x) => html`<${Check} label=${`${t('Dangerous')}: ${x.name}`} checked=${x.dangerous} onChange=${(v) => flag(x, v)} />` },
        ]} />
      </${Card}>
      <${Logs} />
    </div>
  </${Page}>`;
}

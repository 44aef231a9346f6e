// MCP servers: list with the status on every tools worker (`instances[]`), create/edit (stdio or sse/http),
// delete, connect/disconnect/reconnect, a server's tools, and the Claude Desktop JSON import.
// `env` and `headers` values are write-only: a read shows them masked, and a masked value sent back
// unchanged means "keep the stored one" (the server restores it).
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { del, get, post, put, qs } from '../api.js';
import { t } from '../i18n.js';
import { Area, Badge, Card, Check, ErrorBox, Num, Page, Select, Status, Table, Text, fmt, parseJson, useAction, useAsync, when } from '../ui.js';

const STATUS_KIND = { connected: 'ok', connecting: 'warn', disconnected: 'warn', error: 'bad' };
const BLANK = { name: '', type: 'stdio', command: '', args: '', cwd: '', env: '', url: '', headers: '', timeout: 60, enabled: true, autoReconnect: true };
const POLL_MS = 2000;
const POLL_AFTER_ACTION_MS = 30000; // a worker connects after the command is answered: watch for a while

// `KEY=VALUE` (env) or `Name: value` (headers) lines <-> an object. Values may be masked hints.
const toLines = (obj, sep) => Object.entries(obj || {}).map(([k, v]) => `${k}${sep}${v}`).join('\n');
function fromLines(text, sep, field) {
  const out = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const cut = line.indexOf(sep);
    if (cut <= 0) {
      const err = new Error(`${field}: "${line}" (${sep === '=' ? 'KEY=VALUE' : 'Name: value'})`);
      err.code = 'PARSE_ERROR';
      throw err;
    }
    out[line.slice(0, cut).trim()] = line.slice(cut + 1).trim();
  }
  return out;
}

function ServerForm({ server, onDone }) {
  const editing = !!server;
  const [v, setV] = useState(editing ? {
    ...BLANK, ...server, command: server.command || '', cwd: server.cwd || '', url: server.url || '',
    args: (server.args || []).join('\n'), env: toLines(server.env, '='), headers: toLines(server.headers, ': '),
  } : BLANK);
  const act = useAction();
  const set = (k) => (x) => setV({ ...v, [k]: x });
  const stdio = v.type === 'stdio';
  const body = () => {
    const b = { name: v.name, type: v.type, timeout: v.timeout, enabled: v.enabled, autoReconnect: v.autoReconnect };
    if (stdio) {
      Object.assign(b, {
        command: v.command, args: v.args.split('\n').map((a) => a.trim()).filter(Boolean),
        env: fromLines(v.env, '=', t('Environment')),
      });
      if (v.cwd) b.cwd = v.cwd;
    } else Object.assign(b, { url: v.url, headers: fromLines(v.headers, ':', t('Headers')) });
    return b;
  };
  const save = (e) => {
    e.preventDefault();
    act.run(async () => {
      const b = body();
      await (editing ? put(`/api/mcp/servers/${encodeURIComponent(server.name)}`, b) : post('/api/mcp/servers', b));
      onDone(true);
    }, t('Saved'));
  };
  return html`<form class="card" id="mcp-form" onSubmit=${save} aria-label=${editing ? t('Edit') : t('Create')}>
    <h2>${editing ? `${t('Edit')} ${server.name}` : t('Create')}</h2>
    <div class="row">
      <${Text} label=${t('Name')} name="name" required disabled=${editing} value=${v.name} onInput=${set('name')} />
      <${Select} label=${t('Transport')} value=${v.type} onChange=${set('type')} options=${['stdio', 'sse', 'http']} />
      <${Num} label=${t('Timeout (s)')} name="timeout" value=${v.timeout} onInput=${set('timeout')} min="1" max="3600" />
    </div>
    ${stdio ? html`
      <${Text} label=${t('Command')} name="command" required value=${v.command} onInput=${set('command')} placeholder="npx" />
      <${Area} label=${t('Arguments (one per line)')} name="args" rows="3" value=${v.args} onInput=${set('args')} />
      <${Text} label=${t('Working directory')} name="cwd" value=${v.cwd} onInput=${set('cwd')} />
      <${Area} label=${t('Environment (KEY=VALUE per line)')} name="env" rows="3" value=${v.env} onInput=${set('env')} autocomplete="off" />`
    : html`
      <${Text} label=${t('URL')} name="url" type="url" required value=${v.url} onInput=${set('url')} />
      <${Area} label=${t('Headers (Name: value per line)')} name="headers" rows="3" value=${v.headers} onInput=${set('headers')} autocomplete="off" />`}
    ${editing ? html`<p class="muted">${t('Secret values are shown masked; leave them as they are to keep them.')}</p>` : null}
    <div class="row">
      <${Check} label=${t('Enabled')} checked=${v.enabled} onChange=${set('enabled')} />
      <${Check} label=${t('Reconnect automatically')} checked=${v.autoReconnect} onChange=${set('autoReconnect')} />
    </div>
    <${Status} action=${act} />
    <div class="actions"><button type="submit" class="primary" disabled=${act.busy}>${t('Save')}</button>
      <button type="button" onClick=${() => onDone(false)}>${t('Cancel')}</button></div>
  </form>`;
}

function ServerTools({ name, onClose }) {
  const tools = useAsync(() => get(`/api/mcp/servers/${encodeURIComponent(name)}/tools`), [name]);
  return html`<${Card} title=${`${t('Tools')}: ${name}`}>
    <div id="mcp-tools">
      <${ErrorBox} error=${tools.error} />
      ${tools.loading && !tools.data ? html`<p class="muted" role="status">${t('Loading…')}</p>` : null}
      ${tools.data ? html`<${Table} rows=${tools.data.tools} columns=${[
        { key: 'name', label: t('Name') }, { key: 'description', label: t('Description') },
        { key: 'enabled', label: t('Enabled') }, { key: 'dangerous', label: t('Dangerous') },
      ]} />` : null}
    </div>
    <div class="actions"><button type="button" onClick=${tools.reload}>${t('Refresh')}</button>
      <button type="button" onClick=${onClose}>${t('Close')}</button></div>
  </${Card}>`;
}

const EXAMPLE = '{\n  "mcpServers": {\n    "time": { "command": "uvx", "args": ["mcp-server-time"] }\n  }\n}';

function Import({ onDone, onClose }) {
  const [text, setText] = useState('');
  const [result, setResult] = useState(null);
  const act = useAction();
  const run = (e) => {
    e.preventDefault();
    act.run(async () => {
      setResult(null);
      setResult(await post('/api/mcp/import', parseJson(text, t('Claude Desktop JSON'))));
      onDone();
    }, null);
  };
  return html`<form class="card" id="mcp-import" onSubmit=${run}>
    <h2>${t('Import Claude Desktop JSON')}</h2>
    <${Area} label=${t('Claude Desktop JSON')} rows="8" value=${text} onInput=${setText} placeholder=${EXAMPLE} />
    <${Status} action=${act} />
    ${result ? html`<dl class="stats" id="import-result">
        <div><dt>${t('Imported')}</dt><dd>${fmt(result.success)}</dd></div>
        <div><dt>${t('Failed')}</dt><dd>${fmt(result.failed)}</dd></div>
        <div><dt>${t('Total')}</dt><dd>${fmt(result.total)}</dd></div></dl>
      ${(result.errors || []).length ? html`<ul class="error">${result.errors.map((x) => html`<li>${x.name}: ${x.error}</li>`)}</ul>` : null}` : null}
    <div class="actions"><button type="submit" class="primary" disabled=${act.busy || !text.trim()}>${t('Import')}</button>
      <button type="button" onClick=${onClose}>${t('Close')}</button></div>
  </form>`;
}

function Instances({ server }) {
  const list = server.instances || [];
  if (!list.length) return html`<span class="muted">—</span>`;
  return html`<ul class="plain">${list.map((i) => html`<li><span class="mono">${i.instanceId}</span>${' '}
    <${Badge} kind=${STATUS_KIND[i.status]}>${i.status}<//>${i.error ? html`<div class="muted">${i.error}</div>` : null}</li>`)}</ul>`;
}

export default function Mcp({ title }) {
  const list = useAsync(() => get(`/api/mcp/servers${qs({ page_size: 1000 })}`));
  const [editing, setEditing] = useState(null); // null: closed, false: new, object: edit
  const [toolsOf, setToolsOf] = useState(null);
  const [importing, setImporting] = useState(false);
  const [watchUntil, setWatchUntil] = useState(0);
  const act = useAction();
  const items = list.data ? list.data.items : [];
  const enc = encodeURIComponent;
  const watch = () => setWatchUntil(Date.now() + POLL_AFTER_ACTION_MS);
  const connecting = items.some((s) => s.status === 'connecting');
  useEffect(() => {
    if (!connecting && Date.now() >= watchUntil) return undefined;
    const timer = setInterval(() => {
      if (connecting || Date.now() < watchUntil) list.reload();
      else clearInterval(timer);
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [connecting, watchUntil, list.reload]);
  const action = (s, verb) => act.run(async () => {
    await post(`/api/mcp/servers/${enc(s.name)}/${verb}`, {});
    watch();
    list.reload();
  }, `${t('Done')}: ${s.name}`);
  const remove = (s) => confirm(t('Delete this item?')) && act.run(async () => {
    await del(`/api/mcp/servers/${enc(s.name)}`);
    if (toolsOf === s.name) setToolsOf(null);
    list.reload();
  });
  const done = (saved) => { setEditing(null); if (saved) watch(); list.reload(); };
  const button = (s, verb, label) => html`<button type="button" onClick=${() => action(s, verb)} aria-label=${`${label} ${s.name}`}>${label}</button>`;
  return html`<${Page} title=${title} actions=${html`<button type="button" class="primary" id="new-mcp" onClick=${() => setEditing(false)}>${t('Create')}</button>
      <button type="button" id="import-mcp" onClick=${() => setImporting(true)}>${t('Import')}</button>
      <button type="button" onClick=${list.reload}>${t('Refresh')}</button>`}>
    <${ErrorBox} error=${list.error} />
    <${Status} action=${act} />
    ${editing !== null ? html`<${ServerForm} key=${editing ? editing.name : 'new'} server=${editing || null} onDone=${done} />` : null}
    ${importing ? html`<${Import} onDone=${() => { watch(); list.reload(); }} onClose=${() => setImporting(false)} />` : null}
    ${toolsOf ? html`<${ServerTools} key=${toolsOf} name=${toolsOf} onClose=${() => setToolsOf(null)} />` : null}
    <${Table} rows=${items.map((s) => ({ ...s, id: s.name }))} columns=${[
      { label: t('Name'), render: (s) => html`<strong class="nowrap">${s.name}</strong>` },
      { key: 'type', label: t('Transport') },
      { label: t('Status'), render: (s) => html`<span class="mcp-status" data-server=${s.name}><${Badge} kind=${STATUS_KIND[s.status]}>${s.status}<//></span>
        ${s.error ? html`<div class="muted">${s.error}</div>` : null}` },
      { label: t('Instances'), render: (s) => html`<${Instances} server=${s} />` },
      { label: t('Tools'), render: (s) => fmt(s.toolsCount ?? s.toolCount) },
      { key: 'enabled', label: t('Enabled') },
      { label: t('Connected at'), render: (s) => when(s.connectedAt) },
      { label: t('Actions'), render: (s) => html`<div class="actions">
        ${button(s, 'connect', t('Connect'))}${button(s, 'disconnect', t('Disconnect'))}${button(s, 'reconnect', t('Reconnect'))}
        <button type="button" onClick=${() => setToolsOf(s.name)} aria-label=${`${t('Tools')} ${s.name}`}>${t('Tools')}</button>
        <button type="button" onClick=${() => setEditing(s)} aria-label=${`${t('Edit')} ${s.name}`}>${t('Edit')}</button>
        <button type="button" class="danger" onClick=${() => remove(s)} aria-label=${`${t('Delete')} ${s.name}`}>${t('Delete')}</button></div>` },
    ]} />
  </${Page}>`;
}

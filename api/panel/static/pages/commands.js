// Commands: every bot command (built-in and from plugins) with its summary, toggle, rename (a taken name
// is a 409, shown in the form), and the conflicts with a resolve action per contested word.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { get, post } from '../api.js';
import { t } from '../i18n.js';
import { Badge, Card, ErrorBox, Page, Select, Status, Table, Text, fmt, useAction, useAsync } from '../ui.js';

const STRATEGIES = [
  ['keep_first', 'Keep the first, disable the second'], ['keep_second', 'Keep the second, disable the first'],
  ['alias_first', 'Rename the first'], ['alias_second', 'Rename the second'],
];

function RenameForm({ item, onDone }) {
  const [name, setName] = useState(item.effective_command);
  const [aliases, setAliases] = useState((item.aliases || []).join(', '));
  const act = useAction();
  const save = (e) => {
    e.preventDefault();
    act.run(async () => {
      const list = aliases.split(/[,，]/).map((a) => a.trim()).filter(Boolean);
      await post('/api/commands/rename', { handler_full_name: item.handler_full_name, new_name: name.trim(), aliases: list });
      onDone(true);
    }, t('Saved'));
  };
  return html`<form class="card" id="command-rename" onSubmit=${save} aria-label=${`${t('Rename')} ${item.handler_full_name}`}>
    <h2>${`${t('Rename')}: ${item.handler_full_name}`}</h2>
    <div class="row">
      <${Text} label=${t('New name')} name="new_name" required value=${name} onInput=${setName} />
      <${Text} label=${t('Aliases (comma separated)')} name="aliases" value=${aliases} onInput=${setAliases} />
    </div>
    <${Status} action=${act} />
    <div class="actions"><button type="submit" class="primary" disabled=${act.busy}>${t('Save')}</button>
      <button type="button" onClick=${() => onDone(false)}>${t('Cancel')}</button></div>
  </form>`;
}

function Conflict({ conflict, onDone }) {
  const [strategy, setStrategy] = useState('alias_second');
  const act = useAction();
  const key = conflict.conflict_key;
  const resolve = () => act.run(async () => {
    await post(`/api/commands/conflicts/${encodeURIComponent(key)}/resolve`, { resolution_strategy: strategy });
    onDone();
  });
  return html`<li class="conflict" data-conflict=${key}>
    <strong class="mono">${key}</strong>: ${conflict.handlers.map((h) => `${h.handler_full_name} (${h.current_name})`).join(', ')}
    <div class="row">
      <${Select} label=${`${t('Resolution')}: ${key}`} value=${strategy} onChange=${setStrategy} options=${STRATEGIES.map(([v, l]) => [v, t(l)])} />
      <div class="actions"><button type="button" onClick=${resolve} disabled=${act.busy} aria-label=${`${t('Resolve')} ${key}`}>${t('Resolve')}</button></div>
    </div>
    <${Status} action=${act} />
  </li>`;
}

export default function Commands({ title }) {
  const list = useAsync(() => get('/api/commands'));
  const conflicts = useAsync(() => get('/api/commands/conflicts'));
  const [renaming, setRenaming] = useState(null);
  const act = useAction();
  const refresh = () => { list.reload(); conflicts.reload(); };
  const items = list.data ? list.data.items : [];
  const s = (list.data && list.data.summary) || {};
  const toggle = (c) => act.run(async () => {
    await post('/api/commands/toggle', { handler_full_name: c.handler_full_name, enabled: !c.enabled });
    refresh();
  }, `${t('Done')}: ${c.handler_full_name}`);
  const done = (saved) => { setRenaming(null); if (saved) refresh(); };
  return html`<${Page} title=${title} actions=${html`<button type="button" id="refresh-commands" onClick=${refresh}>${t('Refresh')}</button>`}>
    <${ErrorBox} error=${list.error} />
    <${Status} action=${act} />
    <div class="grid">
      <${Card} title=${t('Statistics')}><dl class="stats" id="command-summary">
        <div><dt>${t('Total')}</dt><dd>${fmt(s.total)}</dd></div>
        <div><dt>${t('Disabled')}</dt><dd>${fmt(s.disabled)}</dd></div>
        <div><dt>${t('Conflicts')}</dt><dd>${fmt(s.conflicts)}</dd></div></dl></${Card}>
      <${Card} title=${t('Conflicts')}>
        <${ErrorBox} error=${conflicts.error} />
        ${conflicts.data && conflicts.data.length ? html`<ul class="plain" id="command-conflicts">
          ${conflicts.data.map((c) => html`<${Conflict} key=${c.conflict_key} conflict=${c} onDone=${refresh} />`)}</ul>`
        : html`<p class="muted">${t('No conflicts')}</p>`}
      </${Card}>
    </div>
    ${renaming ? html`<${RenameForm} key=${renaming.handler_full_name} item=${renaming} onDone=${done} />` : null}
    <${Table} rows=${items.map((c) => ({ ...c, id: c.handler_full_name }))} columns=${[
      { label: t('Command'), render: (c) => html`<div><strong class="mono">${c.effective_command}</strong>
        ${c.effective_command !== c.original_command ? html`<div class="muted">${`${t('Originally')} ${c.original_command}`}</div>` : null}</div>` },
      { label: t('Aliases'), render: (c) => (c.aliases || []).join(', ') || '—' },
      { label: t('Plugin'), render: (c) => html`<${Badge}>${c.plugin}<//>` },
      { key: 'description', label: t('Description') },
      { key: 'permission', label: t('Permission') },
      { label: t('Enabled'), render: (c) => html`<span class="command-enabled" data-command=${c.handler_full_name}>${fmt(c.enabled)}</span>` },
      { label: t('Conflict'), render: (c) => (c.has_conflict ? html`<${Badge} kind="bad">${t('Conflict')}<//>` : '—') },
      { label: t('Actions'), render: (c) => html`<div class="actions">
        <button type="button" onClick=${() => toggle(c)} aria-label=${`${c.enabled ? t('Disable') : t('Enable')} ${c.handler_full_name}`}>${c.enabled ? t('Disable') : t('Enable')}</button>
        <button type="button" onClick=${() => setRenaming(c)} aria-label=${`${t('Rename')} ${c.handler_full_name}`}>${t('Rename')}</button></div>` },
    ]} />
  </${Page}>`;
}

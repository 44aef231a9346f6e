// Plugins: the list with the live status (merged over the tools workers, with the last error), upload a
// zip (multipart, overwrite), enable/disable/reload, delete, and a config form generated from the
// plugin's JSON Schema. Secret fields (writeOnly or format password) read back masked; a masked value
// sent back unchanged means "keep the stored one" (the server restores it).
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { get, post, put, qs } from '../api.js';
import { t } from '../i18n.js';
import { Area, Badge, Card, Check, ErrorBox, Field, Page, Status, Table, fmt, parseJson, useAction, useAsync, when } from '../ui.js';

const STATUS_KIND = { running: 'ok', stopped: 'warn', error: 'bad' };
const POLL_MS = 2000;
const POLL_AFTER_ACTION_MS = 30000; // a plugin process starts after the command is answered: watch for a while

function Upload({ onDone }) {
  const [file, setFile] = useState(null);
  const [overwrite, setOverwrite] = useState(false);
  const act = useAction();
  const send = (e) => {
    e.preventDefault();
    act.run(async () => {
      const form = new FormData();
      form.append('file', file);
      const p = await post(`/api/plugins/upload${qs({ overwrite: overwrite ? 'true' : '' })}`, form);
      onDone();
      return p;
    }, t('Uploaded'));
  };
  return html`<form class="card" id="plugin-upload" onSubmit=${send}>
    <h2>${t('Upload a plugin')}</h2>
    <${Field} label=${t('Plugin zip')} hint=${t('Made with: chatbus plugin pack <folder>')}>
      <input type="file" name="file" accept=".zip,application/zip" required onChange=${(e) => setFile(e.currentTarget.files[0] || null)} />
    </${Field}>
    <${Check} label=${t('Overwrite existing')} checked=${overwrite} onChange=${setOverwrite} />
    <${Status} action=${act} />
    <div class="actions"><button type="submit" class="primary" disabled=${act.busy || !file}>${t('Upload')}</button></div>
  </form>`;
}

const isSecret = (s) => !!(s && (s.writeOnly || s.format === 'password'));
const isScalar = (s) => s && (s.enum || ['string', 'number', 'integer', 'boolean'].includes(s.type));

// One schema property as a form control, labelled by its `title` (or key) with `description` as the hint.
function SchemaField({ name, schema, value, onChange }) {
  const label = schema.title || name;
  const hint = schema.description;
  if (schema.enum) {
    const options = [['', '—'], ...schema.enum.map((o) => [String(o), String(o)])];
    return html`<${Field} label=${label} hint=${hint}><select name=${name} value=${value === undefined ? '' : String(value)}
      onChange=${(e) => onChange(e.currentTarget.value === '' ? undefined : schema.enum.find((o) => String(o) === e.currentTarget.value))}>
      ${options.map((o) => html`<option value=${o[0]}>${o[1]}</option>`)}</select></${Field}>`;
  }
  if (schema.type === 'boolean') {
    return html`<div class="field"><${Check} label=${label} checked=${value} onChange=${onChange} />${hint ? html`<small>${hint}</small>` : null}</div>`;
  }
  if (schema.type === 'number' || schema.type === 'integer') {
    return html`<${Field} label=${label} hint=${hint}><input type="number" name=${name} step=${schema.type === 'integer' ? '1' : 'any'}
      min=${schema.minimum} max=${schema.maximum} value=${value ?? ''}
      onInput=${(e) => onChange(e.currentTarget.value === '' ? undefined : Number(e.currentTarget.value))} /></${Field}>`;
  }
  return html`<${Field} label=${label} hint=${hint}><input type=${isSecret(schema) ? 'password' : 'text'} name=${name}
    autocomplete=${isSecret(schema) ? 'off' : undefined} maxlength=${schema.maxLength} value=${value ?? ''}
    onInput=${(e) => onChange(e.currentTarget.value === '' ? undefined : e.currentTarget.value)} /></${Field}>`;
}

function ConfigForm({ name, onClose }) {
  const loaded = useAsync(() => get(`/api/plugins/config${qs({ name })}`), [name]);
  const [values, setValues] = useState(null);
  const [extra, setExtra] = useState('');
  const act = useAction();
  const schema = (loaded.data && loaded.data.schema) || {};
  const props = schema.properties || {};
  const simple = Object.keys(props).filter((k) => isScalar(props[k]));
  useEffect(() => {
    if (!loaded.data) return;
    const config = loaded.data.config || {};
    setValues(Object.fromEntries(simple.map((k) => [k, config[k]])));
    // Whatever the form cannot draw (objects, arrays, keys outside the schema) is edited as JSON.
    const rest = Object.fromEntries(Object.entries(config).filter(([k]) => !simple.includes(k)));
    setExtra(Object.keys(rest).length ? JSON.stringify(rest, null, 2) : '');
  }, [loaded.data]);
  const save = (e) => {
    e.preventDefault();
    act.run(async () => {
      const config = { ...parseJson(extra, t('Other settings (JSON)')) };
      for (const k of simple) if (values[k] !== undefined) config[k] = values[k];
      const saved = await put('/api/plugins/config', { name, config });
      setValues(Object.fromEntries(simple.map((k) => [k, saved.config[k]])));
    }, t('Saved'));
  };
  return html`<form class="card" id="plugin-config" onSubmit=${save} aria-label=${`${t('Config')} ${name}`}>
    <h2>${`${t('Config')}: ${name}`}</h2>
    <${ErrorBox} error=${loaded.error} />
    ${!values ? html`<p class="muted" role="status">${t('Loading…')}</p>` : html`
      ${simple.length ? null : html`<p class="muted">${t('This plugin declares no settings.')}</p>`}
      ${simple.map((k) => html`<${SchemaField} key=${k} name=${k} schema=${props[k]} value=${values[k]}
        onChange=${(x) => setValues({ ...values, [k]: x })} />`)}
      ${simple.some((k) => isSecret(props[k])) ? html`<p class="muted">${t('Secret values are shown masked; leave them as they are to keep them.')}</p>` : null}
      ${extra || Object.keys(props).length > simple.length ? html`<${Area} label=${t('Other settings (JSON)')} rows="4" value=${extra} onInput=${setExtra} />` : null}`}
    <${Status} action=${act} />
    <div class="actions"><button type="submit" class="primary" disabled=${act.busy || !values}>${t('Save')}</button>
      <button type="button" onClick=${onClose}>${t('Close')}</button></div>
  </form>`;
}

export default function Plugins({ title }) {
  const list = useAsync(() => get('/api/plugins'));
  const [configOf, setConfigOf] = useState(null);
  const [watchUntil, setWatchUntil] = useState(0);
  const act = useAction();
  const items = list.data ? list.data.items : [];
  useEffect(() => {
    if (Date.now() >= watchUntil) return undefined;
    const timer = setInterval(() => (Date.now() < watchUntil ? list.reload() : clearInterval(timer)), POLL_MS);
    return () => clearInterval(timer);
  }, [watchUntil, list.reload]);
  const action = (p, verb) => act.run(async () => {
    await post(`/api/plugins/${verb}`, { name: p.name });
    setWatchUntil(Date.now() + POLL_AFTER_ACTION_MS);
    list.reload();
  }, `${t('Done')}: ${p.name}`);
  const remove = (p) => confirm(t('Delete this item?')) && act.run(async () => {
    await post('/api/plugins/delete', { name: p.name });
    if (configOf === p.name) setConfigOf(null);
    list.reload();
  });
  const button = (p, verb, label, cls) => html`<button type="button" class=${cls} onClick=${() => (verb === 'delete' ? remove(p) : action(p, verb))}
    aria-label=${`${label} ${p.name}`}>${label}</button>`;
  return html`<${Page} title=${title} actions=${html`<button type="button" id="refresh-plugins" onClick=${list.reload}>${t('Refresh')}</button>`}>
    <${ErrorBox} error=${list.error} />
    <${Status} action=${act} />
    <${Upload} onDone=${list.reload} />
    ${configOf ? html`<${ConfigForm} key=${configOf} name=${configOf} onClose=${() => setConfigOf(null)} />` : null}
    <${Card} title=${t('Plugins')}>
    <${Table} rows=${items.map((p) => ({ ...p, id: p.name }))} columns=${[
      { label: t('Name'), render: (p) => html`<div><strong class="nowrap">${p.name}</strong> <span class="muted">${p.version}</span>
        ${p.description ? html`<div class="muted">${p.description}</div>` : null}</div>` },
      { label: t('Status'), render: (p) => html`<div><span class="plugin-status" data-plugin=${p.name}><${Badge} kind=${STATUS_KIND[p.status]}>${p.status}<//></span>
        ${p.error ? html`<div class="muted">${p.error}</div>` : null}</div>` },
      { key: 'enabled', label: t('Enabled') },
      { label: t('Commands'), render: (p) => html`<span class="plugin-commands">${(p.commands || []).join(', ') || '—'}</span>` },
      { label: t('Tools'), render: (p) => (p.tools || []).join(', ') || '—' },
      { label: t('Instances'), render: (p) => fmt(p.instances) },
      { label: t('Updated'), render: (p) => when(p.updatedAt) },
      { label: t('Actions'), render: (p) => html`<div class="actions">
        ${p.enabled ? button(p, 'disable', t('Disable')) : button(p, 'enable', t('Enable'))}${button(p, 'reload', t('Reload'))}
        <button type="button" onClick=${() => setConfigOf(p.name)} aria-label=${`${t('Config')} ${p.name}`}>${t('Config')}</button>
        ${button(p, 'delete', t('Delete'), 'danger')}</div>` },
    ]} /></${Card}>
  </${Page}>`;
}

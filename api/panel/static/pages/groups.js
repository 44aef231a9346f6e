// Group admin: the groups (a group-scoped token sees only its own) and one group's overrides on top of
// the global config (GET/PUT/DELETE /api/group-admin/{groupId}/config), with the effective result.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { del, get, put, qs } from '../api.js';
import { navigate } from '../app.js';
import { t } from '../i18n.js';
import { Area, Card, Check, ErrorBox, Json, Page, Pager, Status, Table, Text, parseJson, useAction, useAsync, when } from '../ui.js';

const enc = encodeURIComponent;

function GroupConfig({ id }) {
  const cfg = useAsync(() => get(`/api/group-admin/${enc(id)}/config`), [id]);
  const c = cfg.data;
  return html`<${ErrorBox} error=${cfg.error} />${c ? html`<${GroupForm} key=${id} id=${id} c=${c} reload=${cfg.reload} />` : null}`;
}

function GroupForm({ id, c, reload }) {
  const o = c.overrides || {};
  const [v, setV] = useState({ enabled: o.enabled ?? c.enabled ?? true, presetId: o.presetId || '', channelId: o.channelId || '', model: o.model || '' });
  const rest = { ...o };
  for (const k of ['enabled', 'presetId', 'channelId', 'model']) delete rest[k];
  const [extra, setExtra] = useState(JSON.stringify(rest, null, 2));
  const act = useAction();
  const set = (k) => (x) => setV({ ...v, [k]: x });
  const save = (e) => {
    e.preventDefault();
    act.run(async () => {
      const body = { ...parseJson(extra, t('Overrides (JSON)')), enabled: v.enabled };
      for (const k of ['presetId', 'channelId', 'model']) if (v[k]) body[k] = v[k];
      await put(`/api/group-admin/${enc(id)}/config`, { ...body, expectedVersion: c.version });
      reload();
    }, t('Saved'));
  };
  const remove = () => confirm(t('Delete this item?')) && act.run(async () => { await del(`/api/group-admin/${enc(id)}/config`); reload(); });
  return html`<div class="grid">
    <form class="card" id="group-form" onSubmit=${save}>
      <h2>${t('Group')} ${id}</h2>
      <p class="muted">${t('Version')} ${c.version} · ${when(c.updatedAt)}</p>
      <${Check} label=${t('Enabled')} checked=${v.enabled} onChange=${set('enabled')} />
      <div class="row">
        <${Text} label=${t('Preset')} value=${v.presetId} onInput=${set('presetId')} />
        <${Text} label=${t('Channel')} value=${v.channelId} onInput=${set('channelId')} />
        <${Text} label=${t('Model')} value=${v.model} onInput=${set('model')} />
      </div>
      <${Area} label=${t('Overrides (JSON)')} rows="8" value=${extra} onInput=${setExtra} />
      <${Status} action=${act} />
      <div class="actions"><button type="submit" class="primary" disabled=${act.busy}>${t('Save')}</button>
        <button type="button" class="danger" onClick=${remove}>${t('Remove overrides')}</button></div>
    </form>
    <${Card} title="effective"><${Json} value=${c} /></${Card}>
  </div>`;
}

export default function Groups({ title, arg, me }) {
  const [pageNo, setPage] = useState(1);
  const list = useAsync(() => get(`/api/group-admin/groups${qs({ page: pageNo })}`), [pageNo]);
  const own = me.isAdmin ? '' : String(me.scope || '').replace(/^group:/, '');
  const selected = arg || own;
  const [open, setOpen] = useState('');
  return html`<${Page} title=${title}>
    <${ErrorBox} error=${list.error} />
    ${me.isAdmin ? html`<form class="row" onSubmit=${(e) => { e.preventDefault(); if (open) navigate('groups', open); }}>
      <${Text} label=${t('Group')} value=${open} onInput=${setOpen} /><button type="submit">${t('Edit')}</button></form>` : null}
    <${Card}>
      <${Table} rows=${list.data ? list.data.items : []} columns=${[
        { label: t('Group'), render: (g) => html`<a href=${`#/groups/${enc(g.groupId)}`}>${g.groupId}</a>` },
        { label: t('Enabled'), render: (g) => (g.overrides && 'enabled' in g.overrides ? String(g.overrides.enabled) : '—') },
        { key: 'version', label: t('Version') }, { label: t('Time'), render: (g) => when(g.updatedAt) },
      ]} />
      ${list.data ? html`<${Pager} page=${list.data.page} pageSize=${list.data.page_size} total=${list.data.total} onPage=${setPage} />` : null}
    </${Card}>
    ${selected ? html`<${GroupConfig} id=${selected} />` : null}
  </${Page}>`;
}

// Conversations: list (filters), detail (#/conversations/<id>) with messages and tool calls, clear, delete.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { del, get, post, qs } from '../api.js';
import { navigate } from '../app.js';
import { t } from '../i18n.js';
import { Card, ErrorBox, Json, Page, Pager, Status, Table, Text, useAction, useAsync, when } from '../ui.js';

const enc = encodeURIComponent;

function Detail({ id, title }) {
  const conv = useAsync(() => get(`/api/conversations/${enc(id)}${qs({ limit: 200 })}`), [id]);
  const act = useAction();
  const clear = () => act.run(async () => { await post(`/api/conversations/${enc(id)}/clear`); conv.reload(); });
  const remove = () => confirm(t('Delete this item?')) && act.run(async () => { await del(`/api/conversations/${enc(id)}`); navigate('conversations'); });
  const c = conv.data;
  return html`<${Page} title=${`${title}: ${id}`} actions=${html`
      <a class="button" href=${`#/playground/${enc(id)}`}>${t('Playground')}</a>
      <button type="button" onClick=${clear}>${t('Clear')}</button>
      <button type="button" class="danger" onClick=${remove}>${t('Delete')}</button>
      <a class="button" href="#/conversations">${t('Close')}</a>`}>
    <${ErrorBox} error=${conv.error} />
    <${Status} action=${act} />
    ${c ? html`<p class="muted">${c.platform} · ${t('Messages')} ${c.messageCount} · ${when(c.updatedAt)}</p>
      <div class="chat" aria-label=${t('Messages')}>${c.messages.map((m) => html`<div class=${`msg ${m.role === 'user' ? 'user' : m.role === 'assistant' ? 'assistant' : 'tool'}`}>
        <div>${m.content}</div>
        ${m.toolCalls && m.toolCalls.length ? html`<details><summary>${t('Tool calls')} (${m.toolCalls.length})</summary><${Json} value=${m.toolCalls} /></details>` : null}
        <small class="muted">${m.role} · ${when(m.timestamp)}${m.metadata && m.metadata.model ? ` · ${m.metadata.model}` : ''}</small>
      </div>`)}</div>` : null}
  </${Page}>`;
}

export default function Conversations({ title, arg }) {
  const [f, setF] = useState({ userId: '', groupId: '', platform: '', page: 1 });
  const list = useAsync(() => get(`/api/conversations${qs(f)}`), [f.userId, f.groupId, f.platform, f.page]);
  const act = useAction();
  if (arg) return html`<${Detail} id=${arg} title=${title} />`;
  const set = (k) => (v) => setF({ ...f, [k]: v, page: 1 });
  const clear = (c) => act.run(async () => { await post(`/api/conversations/${enc(c.id)}/clear`); list.reload(); });
  const remove = (c) => confirm(t('Delete this item?')) && act.run(async () => { await del(`/api/conversations/${enc(c.id)}`); list.reload(); });
  return html`<${Page} title=${title} actions=${html`<button type="button" onClick=${list.reload}>${t('Refresh')}</button>`}>
    <div class="row">
      <${Text} label="userId" value=${f.userId} onInput=${set('userId')} />
      <${Text} label="groupId" value=${f.groupId} onInput=${set('groupId')} />
      <${Text} label=${t('Platform')} value=${f.platform} onInput=${set('platform')} />
    </div>
    <${ErrorBox} error=${list.error} />
    <${Status} action=${act} />
    <${Card}>
    <${Table} rows=${list.data ? list.data.items : []} columns=${[
      { label: 'id', render: (c) => html`<a href=${`#/conversations/${enc(c.id)}`}>${c.id}</a>` },
      { key: 'title', label: t('Name') },
      { key: 'platform', label: t('Platform') },
      { key: 'messageCount', label: t('Messages') },
      { label: t('Time'), render: (c) => when(c.updatedAt) },
      { label: t('Actions'), render: (c) => html`<div class="actions">
        <button type="button" onClick=${() => clear(c)} aria-label=${`${t('Clear')} ${c.id}`}>${t('Clear')}</button>
        <button type="button" class="danger" onClick=${() => remove(c)} aria-label=${`${t('Delete')} ${c.id}`}>${t('Delete')}</button></div>` },
    ]} />
    ${list.data ? html`<${Pager} page=${list.data.page} pageSize=${list.data.page_size} total=${list.data.total} onPage=${(page) => setF({ ...f, page })} />` : null}
    </${Card}>
  </${Page}>`;
}

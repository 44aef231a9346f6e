// Chat playground: POST /api/chat/stream, read as SSE frames; content is appended as it arrives and
// tool_call / tool_result frames are shown in line. #/playground/<conversationId> continues a conversation.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { get, qs, streamChat } from '../api.js';
import { t } from '../i18n.js';
import { Area, Card, ErrorBox, Page, Select, Text, useAsync } from '../ui.js';

export default function Playground({ title, arg }) {
  const presets = useAsync(() => get(`/api/presets${qs({ page_size: 100 })}`));
  const channels = useAsync(() => get(`/api/channels${qs({ page_size: 100 })}`));
  const [opts, setOpts] = useState({ presetId: '', channelId: '', model: '' });
  const [conversationId, setConversationId] = useState(arg || '');
  const [items, setItems] = useState([]);
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [usage, setUsage] = useState(null);
  const abort = useRef(null);
  const box = useRef(null);
  useEffect(() => { if (box.current) box.current.scrollTop = box.current.scrollHeight; }, [items]);
  useEffect(() => () => abort.current && abort.current.abort(), []);

  const send = async (e) => {
    e.preventDefault();
    if (!message.trim() || busy) return;
    const text = message;
    setMessage(''); setError(null); setBusy(true); setUsage(null);
    setItems((old) => [...old, { kind: 'user', text }, { kind: 'assistant', text: '' }]);
    const appendText = (chunk) => setItems((old) => {
      const next = [...old];
      for (let i = next.length - 1; i >= 0; i--) {
        if (next[i].kind === 'assistant') { next[i] = { ...next[i], text: next[i].text + chunk }; break; }
      }
      return next;
    });
    const body = { message: text };
    if (conversationId) body.conversationId = conversationId;
    for (const k of ['presetId', 'channelId', 'model']) if (opts[k]) body[k] = opts[k];
    abort.current = new AbortController();
    try {
      await streamChat(body, (f) => {
        if (f.type === 'start' && f.conversationId) setConversationId(f.conversationId);
        else if (f.type === 'content') appendText(f.text || '');
        else if (f.type === 'tool_call' || f.type === 'tool_result') setItems((old) => {
          // Tool frames go before the answer they lead to.
          const next = [...old];
          next.splice(next.length - 1, 0, { kind: f.type, frame: f });
          return next;
        });
        else if (f.type === 'end') setUsage(f.usage || null);
        else if (f.type === 'error') setError({ code: f.code, message: f.message });
      }, abort.current.signal);
    } catch (err) {
      if (err.name !== 'AbortError') setError(err);
    } finally {
      setBusy(false);
      abort.current = null;
    }
  };
  const newConversation = () => { setConversationId(''); setItems([]); setUsage(null); setError(null); };
  const presetOptions = [['', `— ${t('Default')} —`], ...(presets.data ? presets.data.items.map((p) => [p.id, `${p.name} (${p.id})`]) : [])];
  const channelOptions = [['', '— auto —'], ...(channels.data ? channels.data.items.map((c) => [c.id, c.name]) : [])];
  return html`<${Page} title=${title} actions=${html`<button type="button" onClick=${newConversation}>${t('New conversation')}</button>`}>
    <${ErrorBox} error=${presets.error || channels.error} />
    <${Card}>
      <div class="row">
        <${Select} label=${t('Preset')} value=${opts.presetId} onChange=${(presetId) => setOpts({ ...opts, presetId })} options=${presetOptions} />
        <${Select} label=${t('Channel')} value=${opts.channelId} onChange=${(channelId) => setOpts({ ...opts, channelId })} options=${channelOptions} />
        <${Text} label=${t('Model')} value=${opts.model} onInput=${(model) => setOpts({ ...opts, model })} />
      </div>
      <p class="muted">${t('Conversation id')}: <span class="mono" id="conversation-id">${conversationId || '—'}</span></p>
      <div class="chat" ref=${box} id="chat-log" aria-live="polite" aria-label=${t('Messages')}>
        ${items.map((m) => (m.kind === 'user' || m.kind === 'assistant'
          ? html`<div class=${`msg ${m.kind}`}>${m.text || (busy ? '…' : '')}</div>`
          : html`<div class="msg tool">${m.kind === 'tool_call'
            ? `→ ${m.frame.name}(${JSON.stringify(m.frame.arguments)})`
            : `← ${m.frame.name}: ${m.frame.success === false ? `${t('Error')}: ${m.frame.error}` : JSON.stringify(m.frame.result)}`}</div>`))}
      </div>
      <${ErrorBox} error=${error} />
      ${usage ? html`<p class="muted" id="chat-usage">${t('Tokens')}: ${usage.totalTokens ?? JSON.stringify(usage)}</p>` : null}
      <form id="chat-form" onSubmit=${send}>
        <${Area} label=${t('Message')} name="message" rows="3" value=${message} onInput=${setMessage}
          onKeyDown=${(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send(e); }} />
        <div class="actions">
          <button type="submit" class="primary" disabled=${busy}>${t('Send')}</button>
          <button type="button" disabled=${!busy} onClick=${() => abort.current && abort.current.abort()}>${t('Stop')}</button>
        </div>
      </form>
    </${Card}>
  </${Page}>`;
}

// Dashboard: components and instances (/api/system/status), stats with a chart of messages and tokens
// sampled while the page is open (/api/system/stats), and the live event feed (WS /ws, `events`).
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { get, liveSocket } from '../api.js';
import { t } from '../i18n.js';
import { Badge, Card, ErrorBox, Page, Table, useAsync, when } from '../ui.js';

const SAMPLE_MS = 15000;
const SAMPLES_KEY = 'chatbus.statsSamples';
const MAX_SAMPLES = 120;

function loadSamples() {
  try { return JSON.parse(sessionStorage.getItem(SAMPLES_KEY)) || []; } catch { return []; }
}

function line(points, key, w, h) {
  const max = Math.max(1, ...points.map((p) => p[key]));
  const t0 = points[0].t;
  const span = Math.max(1, points[points.length - 1].t - t0);
  return points.map((p) => `${((p.t - t0) / span) * w},${h - (p[key] / max) * (h - 8) - 4}`).join(' ');
}

// Messages (solid) and tokens (dashed), each scaled to its own maximum: the shape over time matters here.
export function Chart({ samples }) {
  const w = 600, h = 150;
  const pts = samples.length === 1 ? [samples[0], { ...samples[0], t: samples[0].t + 1 }] : samples;
  const last = samples[samples.length - 1] || { messages: 0, tokens: 0 };
  return html`<figure class="chart-fig">
    <svg class="chart" viewBox=${`0 0 ${w} ${h}`} preserveAspectRatio="none" role="img"
      aria-label=${`${t('Messages')}: ${last.messages}, ${t('Tokens')}: ${last.tokens}`}>
      <line class="axis" x1="0" y1=${h - 1} x2=${w} y2=${h - 1} />
      ${pts.length ? html`<polyline class="a" points=${line(pts, 'messages', w, h)} /><polyline class="b" points=${line(pts, 'tokens', w, h)} />` : null}
    </svg>
    <figcaption class="legend"><span class="a">${t('Messages')} ${last.messages}</span><span class="b">${t('Tokens')} ${last.tokens}</span>
      <span class="muted">${t('Messages and tokens while this page is open')}</span></figcaption>
  </figure>`;
}

function Stats() {
  const [stats, setStats] = useState(null);
  const [error, setError] = useState(null);
  const [samples, setSamples] = useState(loadSamples);
  useEffect(() => {
    let live = true;
    const tick = async () => {
      try {
        const s = await get('/api/system/stats');
        if (!live) return;
        setStats(s); setError(null);
        setSamples((old) => {
          const next = [...old, { t: Date.now(), messages: s.messages.total, tokens: s.tokens.total }].slice(-MAX_SAMPLES);
          sessionStorage.setItem(SAMPLES_KEY, JSON.stringify(next));
          return next;
        });
      } catch (e) { if (live) setError(e); }
    };
    tick();
    const id = setInterval(tick, SAMPLE_MS);
    return () => { live = false; clearInterval(id); };
  }, []);
  const cells = stats ? [
    [t('Messages'), stats.messages.total], [`${t('Messages')} · ${t('Today')}`, stats.messages.today],
    [t('Tokens'), stats.tokens.total], [t('Conversations total'), stats.conversations.total],
    [t('Calls'), stats.channels.calls], [t('Failed'), stats.channels.failed],
    [t('Avg latency (ms)'), stats.channels.avgLatencyMs ?? '—'], [t('Presets'), stats.presets.total],
  ] : [];
  return html`<${Card} title=${t('Statistics')} wide>
    <${ErrorBox} error=${error} />
    <dl class="stats" id="stats">${cells.map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>
    <${Chart} samples=${samples} />
  </${Card}>`;
}

function Feed() {
  const [events, setEvents] = useState([]);
  const [state, setState] = useState('');
  useEffect(() => {
    const sock = liveSocket(['events'], (f) => {
      if (f.channel === 'events') setEvents((old) => [f.data, ...old].slice(0, 50));
    }, setState);
    return () => sock.close();
  }, []);
  return html`<${Card} title=${t('Live events')} wide>
    <p class="muted" aria-live="polite">${state === 'open' ? t('Connected') : state === 'closed' ? t('Disconnected') : state}</p>
    ${events.length ? html`<ul class="feed" id="event-feed">${events.map((e) => html`<li key=${e.id}>
      <span class="muted">${when(e.timestamp)}</span> <strong>${e.type}</strong> ${e.stream} v${e.version}</li>`)}</ul>`
      : html`<p class="muted">${t('Waiting for events…')}</p>`}
  </${Card}>`;
}

export default function Dashboard({ title }) {
  const status = useAsync(() => get('/api/system/status'));
  const s = status.data;
  const components = s ? Object.entries(s.components) : [];
  return html`<${Page} title=${title} actions=${html`<button type="button" onClick=${status.reload}>${t('Refresh')}</button>`}>
    <${ErrorBox} error=${status.error} />
    <div class="grid">
      <${Card} title=${t('Components')}>
        ${s ? html`<p class="muted">${t('Version')} ${s.version} · ${t('Uptime')} ${Math.round(s.uptime)} s</p>` : null}
        <ul class="plain" id="components">${components.map(([name, c]) => html`<li>
          <${Badge} kind=${c.ok ? 'ok' : 'bad'}>${c.ok ? 'ok' : 'down'}<//> ${name}
          ${c.error ? html` <span class="muted">${typeof c.error === 'string' ? c.error : JSON.stringify(c.error)}</span>` : null}
          ${c.failing && c.failing.length ? html` <span class="muted">${c.failing.join(', ')}</span>` : null}</li>`)}</ul>
      </${Card}>
      <${Card} title=${t('Instances')} wide>
        <${Table} columns=${[{ key: 'role', label: t('Role') }, { key: 'domain', label: 'domain' },
          { key: 'instanceId', label: 'id' }, { key: 'host', label: t('Host') },
          { label: t('Last heartbeat'), render: (i) => when(i.lastHeartbeat) }]} rows=${s ? s.instances : []} />
      </${Card}>
      <${Stats} />
      <${Feed} />
    </div>
  </${Page}>`;
}

// Small shared components. Everything from the API is rendered as text (htm escapes it); no raw HTML.
import { cloneElement } from 'preact';
import { html } from 'htm/preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { t } from './i18n.js';

let uid = 0;
export const useId = (prefix = 'f') => useRef(`${prefix}-${++uid}`).current;

// Run an async loader; keep its data, its error (shown, never swallowed) and a reload function.
export function useAsync(load, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await load();
      if (n === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (n === seq.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, deps);
  useEffect(() => { reload(); }, [reload]);
  return { ...state, reload };
}

// An action button's state: run(fn) shows the error or a success note.
export function useAction() {
  const [state, setState] = useState({ busy: false, error: null, note: null });
  const run = async (fn, note = t('Done')) => {
    setState({ busy: true, error: null, note: null });
    try {
      const result = await fn();
      setState({ busy: false, error: null, note });
      return result;
    } catch (error) {
      setState({ busy: false, error, note: null });
      return undefined;
    }
  };
  return { ...state, run, clear: () => setState({ busy: false, error: null, note: null }) };
}

export function ErrorBox({ error }) {
  if (!error) return null;
  const details = (error.details || []).map((d) => `${d.field || d.path || ''}: ${d.reason || d.message || ''}`);
  return html`<div class="error" role="alert">
    <strong>${error.code ? `${error.code}: ` : ''}</strong>${error.message}
    ${details.length ? html`<ul>${details.map((d) => html`<li>${d}</li>`)}</ul>` : null}
  </div>`;
}

export function Status({ action }) {
  return html`${action.error ? html`<${ErrorBox} error=${action.error} />` : null}
    ${action.note ? html`<p class="note" role="status">${action.note}</p>` : null}`;
}

export function Field({ label, children, hint }) {
  const id = useId();
  const child = Array.isArray(children) ? children[0] : children;
  const control = child && child.props ? cloneElement(child, { id }) : child;
  return html`<div class="field"><label for=${id}>${label}</label>${control}${hint ? html`<small>${hint}</small>` : null}</div>`;
}

export const Text = ({ label, value, onInput, type = 'text', ...rest }) => html`<${Field} label=${label}>
  <input type=${type} value=${value ?? ''} onInput=${(e) => onInput(e.currentTarget.value)} ...${rest} /></${Field}>`;

export const Num = ({ label, value, onInput, ...rest }) => html`<${Field} label=${label}>
  <input type="number" value=${value ?? ''} onInput=${(e) => onInput(e.currentTarget.value === '' ? null : Number(e.currentTarget.value))} ...${rest} /></${Field}>`;

export const Area = ({ label, value, onInput, rows = 4, ...rest }) => html`<${Field} label=${label}>
  <textarea rows=${rows} value=${value ?? ''} onInput=${(e) => onInput(e.currentTarget.value)} ...${rest}></textarea></${Field}>`;

export const Select = ({ label, value, onChange, options }) => html`<${Field} label=${label}>
  <select value=${value ?? ''} onChange=${(e) => onChange(e.currentTarget.value)}>
    ${options.map((o) => (Array.isArray(o) ? html`<option value=${o[0]}>${o[1]}</option>` : html`<option value=${o}>${o}</option>`))}
  </select></${Field}>`;

export function Check({ label, checked, onChange }) {
  const id = useId('c');
  return html`<div class="check"><input id=${id} type="checkbox" checked=${!!checked}
    onChange=${(e) => onChange(e.currentTarget.checked)} /><label for=${id}>${label}</label></div>`;
}

export function Table({ columns, rows, empty, caption }) {
  if (!rows || !rows.length) return html`<p class="muted">${empty || t('No items')}</p>`;
  return html`<div class="table-wrap"><table>
    ${caption ? html`<caption>${caption}</caption>` : null}
    <thead><tr>${columns.map((c) => html`<th scope="col">${c.label}</th>`)}</tr></thead>
    <tbody>${rows.map((r, i) => html`<tr key=${r.id ?? i}>${columns.map((c) => html`<td data-label=${c.label}>${c.render ? c.render(r) : fmt(r[c.key])}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

export function Pager({ page, pageSize, total, onPage }) {
  const pages = Math.max(1, Math.ceil((total || 0) / (pageSize || 20)));
  return html`<nav class="pager" aria-label="pages">
    <button type="button" disabled=${page <= 1} onClick=${() => onPage(page - 1)}>${t('Previous')}</button>
    <span>${page} / ${pages} (${total ?? 0})</span>
    <button type="button" disabled=${page >= pages} onClick=${() => onPage(page + 1)}>${t('Next')}</button>
  </nav>`;
}

export const Json = ({ value }) => html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;

export function fmt(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'boolean') return v ? '✓' : '✗';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function when(v) {
  if (!v) return '—';
  const d = typeof v === 'number' ? new Date(v < 1e12 ? v * 1000 : v) : new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toLocaleString();
}

export const Badge = ({ kind, children }) => html`<span class=${`badge ${kind || ''}`}>${children}</span>`;

export function Page({ title, actions, children }) {
  return html`<section class="page" aria-labelledby="page-title">
    <header class="page-head"><h1 id="page-title" tabindex="-1">${title}</h1><div class="actions">${actions}</div></header>
    ${children}
  </section>`;
}

export function Card({ title, children, wide }) {
  return html`<section class=${wide ? 'card wide' : 'card'}>${title ? html`<h2>${title}</h2>` : null}${children}</section>`;
}

// Parse a JSON text field; throws an ApiError-shaped error that ErrorBox can show.
export function parseJson(text, field) {
  try {
    return text.trim() ? JSON.parse(text) : {};
  } catch (e) {
    const err = new Error(`${field}: ${e.message}`);
    err.code = 'PARSE_ERROR';
    throw err;
  }
}

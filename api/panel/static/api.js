// The panel's only way to the server: the public JSON API (envelopes), the SSE chat stream and WS /ws.
// The session is the HttpOnly `auth_token` cookie the server sets; this code never sees the token.

export class ApiError extends Error {
  constructor(message, code, status, details) {
    super(message);
    this.code = code;
    this.status = status;
    this.details = details || [];
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

function errorFrom(status, body) {
  if (body && typeof body === 'object' && (body.message || body.error)) {
    return new ApiError(String(body.message || body.error), String(body.code || `HTTP_${status}`), status, body.details);
  }
  return new ApiError(`HTTP ${status}`, `HTTP_${status}`, status);
}

async function send(method, path, body, extraHeaders) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...(extraHeaders || {}) } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch (e) {
    throw new ApiError(`network error: ${e.message}`, 'NETWORK_ERROR', 0);
  }
}

// One API call: the envelope's `data`, or an ApiError carrying the envelope's `message` and `code`.
export async function api(method, path, body, headers) {
  const r = await send(method, path, body, headers);
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!r.ok || (json && json.success === false)) {
    const err = errorFrom(r.status, json);
    if (r.status === 401 && !path.startsWith('/api/auth/login') && path !== '/api/group-admin/login') onUnauthorized(err);
    throw err;
  }
  return json && typeof json === 'object' && 'data' in json ? json.data : json;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body === undefined ? {} : body);
export const put = (path, body, headers) => api('PUT', path, body, headers);
export const del = (path) => api('DELETE', path);

export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

// POST /api/chat/stream: calls onFrame for each SSE `data:` frame (start, content, tool_call, tool_result,
// end, error). Read with fetch + ReadableStream, so the request can carry a JSON body and the cookie.
export async function streamChat(body, onFrame, signal) {
  let r;
  try {
    r = await fetch('/api/chat/stream', {
      method: 'POST', credentials: 'same-origin', signal,
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(`network error: ${e.message}`, 'NETWORK_ERROR', 0);
  }
  if (!r.ok) {
    let json = null;
    try { json = await r.json(); } catch { json = null; }
    throw errorFrom(r.status, json);
  }
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (!data) continue;
      try { onFrame(JSON.parse(data)); } catch { /* a frame that is not JSON (keep-alive): skip */ }
    }
  }
}

// WS /ws with the given channels; reconnects with backoff until close() is called. onFrame gets every
// server frame ({channel, data} or {type}); onState gets 'open' | 'closed' | an error message.
export function liveSocket(channels, onFrame, onState = () => {}) {
  let ws = null;
  let closed = false;
  let delay = 500;
  let timer = null;
  const connect = () => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(`${scheme}//${location.host}/ws`);
    ws.onopen = () => {
      delay = 500;
      ws.send(JSON.stringify({ action: 'subscribe', channels }));
      onState('open');
    };
    ws.onmessage = (m) => {
      let frame;
      try { frame = JSON.parse(m.data); } catch { return; }
      if (frame.type === 'error') onState(frame.message || 'error');
      onFrame(frame);
    };
    ws.onclose = () => {
      onState('closed');
      if (!closed) timer = setTimeout(connect, (delay = Math.min(delay * 2, 15000)));
    };
  };
  connect();
  return { close() { closed = true; clearTimeout(timer); if (ws) ws.close(); } };
}

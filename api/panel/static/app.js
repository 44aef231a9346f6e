// The panel shell: session, hash routing (#/channels), sidebar, theme and language.
import { render } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { get, post, put, setUnauthorizedHandler } from './api.js';
import { language, setLanguage, t } from './i18n.js';
import { ErrorBox } from './ui.js';
import Login from './pages/login.js';

// Each page is a module of its own, loaded when first visited.
export const PAGES = [
  ['dashboard', 'Dashboard', () => import('./pages/dashboard.js')],
  ['channels', 'Channels', () => import('./pages/channels.js')],
  ['presets', 'Presets', () => import('./pages/presets.js')],
  ['conversations', 'Conversations', () => import('./pages/conversations.js')],
  ['playground', 'Playground', () => import('./pages/playground.js')],
  ['tools', 'Tools', () => import('./pages/tools.js')],
  ['mcp', 'MCP servers', () => import('./pages/mcp.js')],
  ['plugins', 'Plugins', () => import('./pages/plugins.js')],
  ['commands', 'Commands', () => import('./pages/commands.js')],
  ['platforms', 'Platforms', () => import('./pages/platforms.js')],
  ['groups', 'Groups', () => import('./pages/groups.js')],
  ['logs', 'Logs', () => import('./pages/logs.js')],
  ['audit', 'Audit', () => import('./pages/audit.js')],
  ['config', 'Config', () => import('./pages/config.js')],
  ['settings', 'Settings', () => import('./pages/settings.js')],
];
const GROUP_PAGES = new Set(['groups', 'settings']);

const THEME_KEY = 'chatbus.theme';
export function applyTheme(theme) {
  const value = ['light', 'dark'].includes(theme) ? theme : 'auto';
  localStorage.setItem(THEME_KEY, value);
  if (value === 'auto') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = value;
  return value;
}
applyTheme(localStorage.getItem(THEME_KEY));

function route() {
  const path = location.hash.replace(/^#\/?/, '').split('?')[0];
  const [name, ...rest] = path.split('/');
  return { name: name || 'dashboard', arg: rest.map(decodeURIComponent).join('/') };
}

export function navigate(name, arg) {
  location.hash = `#/${name}${arg ? `/${encodeURIComponent(arg)}` : ''}`;
}

function Routed({ me, r, prefs }) {
  const [loaded, setLoaded] = useState({ name: null, mod: null, error: null });
  const entry = PAGES.find((p) => p[0] === r.name) || PAGES[0];
  useEffect(() => {
    let live = true;
    entry[2]().then((mod) => live && setLoaded({ name: entry[0], mod, error: null }),
      (error) => live && setLoaded({ name: entry[0], mod: null, error }));
    return () => { live = false; };
  }, [entry[0]]);
  if (loaded.error) return html`<${ErrorBox} error=${loaded.error} />`;
  if (!loaded.mod || loaded.name !== entry[0]) return html`<p class="muted" role="status">${t('Loading…')}</p>`;
  const Page = loaded.mod.default;
  return html`<${Page} me=${me} arg=${r.arg} name=${entry[0]} title=${t(entry[1])} prefs=${prefs} />`;
}

function App() {
  const [me, setMe] = useState(null); // null: checking; false: logged out
  const [r, setR] = useState(route());
  const [lang, setLang] = useState(language());
  const [theme, setTheme] = useState(localStorage.getItem(THEME_KEY) || 'auto');
  const [menuOpen, setMenuOpen] = useState(false);
  const [error, setError] = useState(null);

  const loadSettings = async (who) => {
    if (!who || !who.isAdmin) return;
    try {
      const s = await get('/api/settings');
      if (s && s.language) setLang(setLanguage(s.language));
      if (s && s.theme) setTheme(applyTheme(s.theme));
    } catch (e) { setError(e); }
  };
  const check = async () => {
    try {
      const who = await get('/api/auth/verify');
      setMe(who);
      await loadSettings(who);
    } catch { setMe(false); }
  };
  useEffect(() => {
    setUnauthorizedHandler(() => setMe(false));
    check();
    const onHash = () => { setR(route()); setMenuOpen(false); };
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    const h = document.getElementById('page-title');
    if (h) h.focus({ preventScroll: true });
  }, [r.name]);

  // Stored in settings for an admin; a group admin keeps the choice in this browser only.
  const saveSetting = async (patch) => {
    setError(null);
    if (!me || !me.isAdmin) return;
    try { await put('/api/settings', patch); } catch (e) { setError(e); }
  };
  const prefs = {
    lang, theme,
    setLang: (v) => { setLang(setLanguage(v)); saveSetting({ language: language() }); },
    setTheme: (v) => { setTheme(applyTheme(v)); saveSetting({ theme: v }); },
  };
  const logout = async () => {
    try { await post('/api/auth/logout'); setMe(false); location.hash = '#/'; } catch (e) { setError(e); }
  };

  if (me === null) return html`<p class="muted center" role="status">${t('Loading…')}</p>`;
  if (me === false) return html`<${Login} onLogin=${async () => { await check(); }} prefs=${prefs} />`;

  const allowed = me.isAdmin ? PAGES : PAGES.filter((p) => GROUP_PAGES.has(p[0]));
  const current = allowed.find((p) => p[0] === r.name) ? r : { name: allowed[0][0], arg: '' };
  const nextTheme = { auto: 'light', light: 'dark', dark: 'auto' }[theme] || 'auto';
  return html`<a class="skip" href="#main">${t('Skip to content')}</a>
  <header class="topbar">
    <button type="button" class="menu-btn" aria-expanded=${menuOpen} aria-controls="sidebar"
      onClick=${() => setMenuOpen(!menuOpen)}>☰ <span>${t('Menu')}</span></button>
    <span class="brand">chatbus</span>
    <span class="spacer"></span>
    <label class="sr" for="lang-select">${t('Language')}</label>
    <select id="lang-select" value=${lang} onChange=${(e) => prefs.setLang(e.currentTarget.value)}>
      <option value="en">English</option><option value="zh-CN">中文</option>
    </select>
    <button type="button" id="theme-toggle" aria-label=${`${t('Toggle theme')}: ${t(theme[0].toUpperCase() + theme.slice(1))}`}
      title=${t('Toggle theme')} onClick=${() => prefs.setTheme(nextTheme)}>${{ auto: '◐', light: '☀', dark: '☾' }[theme]}</button>
    <span class="who" title=${t('Signed in as')}>${me.username}</span>
    <button type="button" id="logout" onClick=${logout}>${t('Log out')}</button>
  </header>
  <div class="layout">
    <nav id="sidebar" class=${menuOpen ? 'sidebar open' : 'sidebar'} aria-label="main">
      <ul>${allowed.map((p) => html`<li><a href=${`#/${p[0]}`} aria-current=${current.name === p[0] ? 'page' : undefined}>${t(p[1])}</a></li>`)}</ul>
    </nav>
    <main id="main">
      <${ErrorBox} error=${error} />
      <${Routed} me=${me} r=${current} prefs=${prefs} key=${lang} />
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));

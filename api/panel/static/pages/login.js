// Log in with a password, a login-link token, or (group admins) a group code. The server sets the
// HttpOnly auth_token cookie; the panel only asks /api/auth/verify who it is afterwards.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { post } from '../api.js';
import { t } from '../i18n.js';
import { ErrorBox, Text } from '../ui.js';

function LoginForm({ id, title, fields, submit, onLogin, label }) {
  const [values, setValues] = useState({});
  const [state, setState] = useState({ busy: false, error: null });
  const onSubmit = async (e) => {
    e.preventDefault();
    setState({ busy: true, error: null });
    try {
      await submit(values);
      setState({ busy: false, error: null });
      await onLogin();
    } catch (error) {
      setState({ busy: false, error });
    }
  };
  return html`<form id=${id} class="card" onSubmit=${onSubmit} aria-labelledby=${`${id}-title`}>
    <h2 id=${`${id}-title`}>${title}</h2>
    ${fields.map((f) => html`<${Text} label=${f.label} type=${f.type || 'text'} name=${f.name} autocomplete=${f.autocomplete || 'off'}
      required=${!f.optional} value=${values[f.name] || ''} onInput=${(v) => setValues({ ...values, [f.name]: v })} />`)}
    <${ErrorBox} error=${state.error} />
    <button type="submit" class="primary" disabled=${state.busy}>${label || t('Log in')}</button>
  </form>`;
}

export default function Login({ onLogin, prefs }) {
  return html`<main id="main" class="login">
    <header class="login-head">
      <h1 id="page-title" tabindex="-1">chatbus</h1>
      <label class="sr" for="login-lang">${t('Language')}</label>
      <select id="login-lang" value=${prefs.lang} onChange=${(e) => prefs.setLang(e.currentTarget.value)}>
        <option value="en">English</option><option value="zh-CN">中文</option>
      </select>
    </header>
    <${LoginForm} id="login-password" title=${t('Password')} onLogin=${onLogin}
      fields=${[{ name: 'username', label: t('Username'), optional: true, autocomplete: 'username' },
        { name: 'password', label: t('Password'), type: 'password', autocomplete: 'current-password' }]}
      submit=${(v) => post('/api/auth/login', v.username ? { username: v.username, password: v.password } : { password: v.password })} />
    <${LoginForm} id="login-token" title=${t('Login link token')} onLogin=${onLogin}
      fields=${[{ name: 'token', label: t('Login link token') }]}
      submit=${(v) => post('/api/auth/login', { token: v.token.trim() })} />
    <${LoginForm} id="login-group" title=${t('Group code')} onLogin=${onLogin}
      fields=${[{ name: 'code', label: t('Group admins: the 6-character code from the group command'), autocomplete: 'one-time-code' }]}
      submit=${(v) => post('/api/group-admin/login', { code: v.code.trim() })} />
  </main>`;
}

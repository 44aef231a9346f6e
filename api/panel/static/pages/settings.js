// Settings: theme and language (stored in the config's settings section for an admin, in this browser
// otherwise), the rest of the settings section, and who is signed in.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { get, put } from '../api.js';
import { t } from '../i18n.js';
import { Card, Check, ErrorBox, Page, Select, Status, useAction, useAsync } from '../ui.js';

function Notifications({ s, reload }) {
  const [v, setV] = useState({ enabled: s.notifications ? s.notifications.enabled : false, autoRestart: !!s.auto_restart });
  const act = useAction();
  const save = (e) => {
    e.preventDefault();
    act.run(async () => {
      await put('/api/settings', { notifications: { ...(s.notifications || {}), enabled: v.enabled }, auto_restart: v.autoRestart });
      reload();
    }, t('Saved'));
  };
  return html`<form class="card" onSubmit=${save}>
    <h2>${t('Settings')}</h2>
    <${Check} label="notifications.enabled" checked=${v.enabled} onChange=${(enabled) => setV({ ...v, enabled })} />
    <${Check} label="auto_restart" checked=${v.autoRestart} onChange=${(autoRestart) => setV({ ...v, autoRestart })} />
    <${Status} action=${act} />
    <button type="submit" class="primary">${t('Save')}</button>
  </form>`;
}

export default function Settings({ title, me, prefs }) {
  const settings = useAsync(() => (me.isAdmin ? get('/api/settings') : Promise.resolve(null)));
  return html`<${Page} title=${title}>
    <div class="grid">
      <${Card} title=${`${t('Theme')} · ${t('Language')}`}>
        <${Select} label=${t('Theme')} value=${prefs.theme} onChange=${prefs.setTheme}
          options=${[['auto', t('Auto')], ['light', t('Light')], ['dark', t('Dark')]]} />
        <${Select} label=${t('Language')} value=${prefs.lang} onChange=${prefs.setLang} options=${[['en', 'English'], ['zh-CN', '中文']]} />
        <p class="muted">${me.isAdmin ? t('Settings are stored in the config (settings section).') : t('Read-only for group admins')}</p>
        <p>${t('Signed in as')}: <strong>${me.username}</strong> (${me.scope})</p>
      </${Card}>
      <${ErrorBox} error=${settings.error} />
      ${settings.data ? html`<${Notifications} s=${settings.data} reload=${settings.reload} />` : null}
    </div>
  </${Page}>`;
}

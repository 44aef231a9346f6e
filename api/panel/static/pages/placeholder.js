// Pages whose API is still being built (plugins, commands): they say so
// rather than call routes that do not exist.
import { html } from 'htm/preact';
import { t } from '../i18n.js';
import { Page } from '../ui.js';

export default function Placeholder({ title }) {
  return html`<${Page} title=${title}><p class="muted">${t('This page arrives with its API, which this server does not offer yet.')}</p></${Page}>`;
}

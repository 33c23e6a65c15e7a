import { render } from 'preact';
import { App } from './app';
import { loadConfig } from './config';
import './style.css';

const root = document.getElementById('app')!;
loadConfig().then(
  (config) => render(<App config={config} />, root),
  (e: Error) => {
    root.innerHTML = '';
    const p = document.createElement('pre');
    p.className = 'fatal';
    p.textContent = `flowlake UI: ${e.message}`;
    root.appendChild(p);
  },
);

// The board's small DOM helpers: elements by id, the notice line, the connection indicator,
// and the pieces a teammate's row is made of.

import { isOnline } from '/board/index.js';

export const $ = (id) => document.getElementById(id);

export function notice(text) {
  $('notice').textContent = text ?? '';
  $('notice').hidden = !text;
}

export function setConnection(state, label) {
  $('connection').dataset.state = state;
  document.body.dataset.connection = state;
  $('connection-text').textContent = label;
}

export function text(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

export function cell(...children) {
  const td = document.createElement('td');
  td.append(...children);
  return td;
}

export function withTitle(element, title) {
  if (title) element.title = title;
  return element;
}

export function stack(...children) {
  const div = document.createElement('div');
  div.className = 'stack';
  div.append(...children);
  return div;
}

export function cellWith(className, ...children) {
  const td = cell(...children);
  td.className = className;
  return td;
}

/** A status with a shape and a word, so that it never rests on colour alone. */
export function status(kind, label) {
  const span = document.createElement('span');
  span.className = `status status-${kind}`;
  span.append(text('span', '', 'status-mark'), text('span', label, 'status-label'));
  span.firstChild.setAttribute('aria-hidden', 'true');
  return span;
}

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

export function lastSeen(teammate) {
  const presence = teammate.presence ?? {};
  if (isOnline(teammate) && presence.connections > 0) return text('span', 'now', 'time');
  const at = presence.lastSeenAt;
  if (!at) return text('span', 'never', 'time muted');
  const time = document.createElement('time');
  time.dateTime = at;
  time.title = new Date(at).toLocaleString();
  time.textContent = ago(Date.parse(at));
  return time;
}

export function ago(then) {
  const seconds = Math.round((then - Date.now()) / 1000);
  const steps = [
    [60, 'second'],
    [60, 'minute'],
    [24, 'hour'],
    [7, 'day'],
    [Infinity, 'week'],
  ];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) {
      return unit === 'second' && Math.abs(value) < 10 ? 'just now' : relative.format(value, unit);
    }
    value = Math.round(value / size);
  }
  return relative.format(value, 'week');
}

// The LogCaster web console: plain browser JavaScript, no framework, no build step.
// Search (/api/query, NDJSON read as it streams), pages of 100 rows newest first, a live
// tail (/api/tail, Server-Sent Events read with fetch so a token header can be sent),
// the STATS figures and a lines-per-second chart (/api/stats). The search lives in the
// address: /?q=<query>&offset=<n>.
'use strict';

(() => {
  const PAGE = 100;
  const MAX_ROWS = 500; // the live tail adds at the top; older rows leave at the bottom
  const STATS_MS = 2000;
  const $ = (id) => document.getElementById(id);
  const rows = $('rows');
  const state = {
    q: '',
    offset: 0,
    found: 0,
    search: null, // AbortController of the running search
    tail: null, // AbortController of the live tail
    lastEventId: '',
    token: sessionStorage.getItem('logcaster-token') || '',
  };

  // ---- talking to the server ----

  function authHeaders(extra) {
    return state.token ? { ...extra, Authorization: `Bearer ${state.token}` } : { ...extra };
  }

  async function api(path, options = {}) {
    const res = await fetch(path, { ...options, headers: authHeaders(options.headers) });
    if (res.status === 401) {
      $('token').hidden = false;
      throw new Error('this server asks for an HTTP token');
    }
    return res;
  }

  async function errorOf(res) {
    try {
      return (await res.json()).error || res.statusText;
    } catch {
      return `${res.status} ${res.statusText}`;
    }
  }

  /** Lines of a streamed body as they arrive. */
  async function* lines(res) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        yield buf.slice(0, nl);
        buf = buf.slice(nl + 1);
      }
    }
    if (buf !== '') yield buf;
  }

  // ---- rows ----

  const two = (n) => String(n).padStart(2, '0');
  function formatTime(iso) {
    const d = new Date(iso);
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  }

  function row(entry, fresh) {
    const tr = document.createElement('tr');
    if (fresh) tr.className = 'new';
    const cells = [formatTime(entry.time), entry.peer, entry.severity || '', entry.line];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (i === 2 && text) td.className = `sev-${text}`;
      tr.append(td);
    });
    return tr;
  }

  function setStatus(text, isError = false) {
    $('status').textContent = text;
    $('status').className = isError ? 'error' : '';
  }

  function showCount(suffix) {
    setStatus(`${state.found.toLocaleString()} matching line${state.found === 1 ? '' : 's'}${suffix}`);
  }

  function updatePager() {
    const shown = rows.children.length;
    $('range').textContent = state.found === 0 ? 'no rows' : `rows ${(state.offset + 1).toLocaleString()}–${(state.offset + shown).toLocaleString()} of ${state.found.toLocaleString()}, newest first`;
    $('newer').disabled = state.offset === 0;
    $('older').disabled = state.offset + PAGE >= state.found;
  }

  // ---- search ----

  async function search() {
    if (state.search) state.search.abort();
    const controller = new AbortController();
    state.search = controller;
    const params = new URLSearchParams({ q: state.q, order: 'newest', limit: String(PAGE), offset: String(state.offset) });
    setStatus('Searching…');
    const started = performance.now();
    try {
      const res = await api(`/api/query?${params}`, { signal: controller.signal });
      if (!res.ok) {
        rows.replaceChildren();
        state.found = 0;
        updatePager();
        setStatus(await errorOf(res), true);
        return;
      }
      state.found = Number(res.headers.get('X-LogCaster-Found') || 0);
      rows.replaceChildren();
      for await (const line of lines(res)) {
        if (line !== '') rows.append(row(JSON.parse(line), false));
      }
      showCount(` · ${Math.round(performance.now() - started)} ms`);
      updatePager();
    } catch (err) {
      if (err.name !== 'AbortError') setStatus(err.message, true);
    } finally {
      if (state.search === controller) state.search = null;
    }
  }

  function readAddress() {
    const p = new URLSearchParams(location.search);
    state.q = p.get('q') || '';
    state.offset = Math.max(0, Number(p.get('offset')) || 0);
    $('q').value = state.q;
  }

  function writeAddress(push) {
    const p = new URLSearchParams();
    if (state.q !== '') p.set('q', state.q);
    if (state.offset > 0) p.set('offset', String(state.offset));
    const url = p.toString() === '' ? '/' : `/?${p}`;
    if (push) history.pushState(null, '', url);
    else history.replaceState(null, '', url);
  }

  // ---- live tail ----

  async function startTail() {
    stopTail();
    const controller = new AbortController();
    state.tail = controller;
    const params = new URLSearchParams({ q: state.q });
    try {
      const headers = state.lastEventId ? { 'Last-Event-ID': state.lastEventId } : {};
      const res = await api(`/api/tail?${params}`, { signal: controller.signal, headers });
      if (!res.ok) {
        setStatus(`live tail: ${await errorOf(res)}`, true);
        $('live').checked = false;
        return;
      }
      let event = { type: 'message', data: '' };
      for await (const line of lines(res)) {
        if (line === '') {
          onEvent(event);
          event = { type: 'message', data: '' };
        } else if (line.startsWith('data: ')) event.data += line.slice(6);
        else if (line.startsWith('event: ')) event.type = line.slice(7);
        else if (line.startsWith('id: ')) state.lastEventId = line.slice(4);
      }
    } catch (err) {
      if (err.name === 'AbortError') return;
      setStatus(`live tail: ${err.message}`, true);
    }
    // The stream ended (server restart, network): follow again from the last event.
    if (state.tail === controller && $('live').checked) setTimeout(() => state.tail === controller && startTail(), 1000);
  }

  function stopTail() {
    if (state.tail) state.tail.abort();
    state.tail = null;
  }

  function onEvent(event) {
    if (event.type === 'skipped') {
      setStatus(`live tail: ${JSON.parse(event.data).lines.toLocaleString()} lines went by too fast to show`);
      return;
    }
    if (event.type === 'error') {
      setStatus(`live tail: ${JSON.parse(event.data).error}`, true);
      return;
    }
    if (event.data === '') return;
    const entry = JSON.parse(event.data);
    state.found++;
    showCount(' · following new lines');
    if (state.offset !== 0) return updatePager(); // reading older pages: count only
    rows.prepend(row(entry, true));
    while (rows.children.length > MAX_ROWS) rows.lastChild.remove();
    updatePager();
  }

  // ---- statistics and the rate chart ----

  const FIGURES = [
    ['total', 'Total'],
    ['current', 'Current'],
    ['dropped', 'Dropped'],
    ['clients', 'Clients'],
    ['linesReceived', 'Received'],
    ['truncated', 'Truncated'],
    ['persisted', 'Persisted'],
    ['backend', 'Backend'],
    ['uptimeSeconds', 'Uptime'],
  ];

  function uptime(s) {
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
  }

  async function refreshStats() {
    try {
      const res = await api('/api/stats');
      if (!res.ok) return;
      const s = await res.json();
      const dl = $('stats');
      dl.replaceChildren(
        ...FIGURES.map(([key, label]) => {
          const div = document.createElement('div');
          const dt = document.createElement('dt');
          const dd = document.createElement('dd');
          dt.textContent = label;
          dd.id = `stat-${key}`;
          const v = s[key];
          dd.textContent = key === 'uptimeSeconds' ? uptime(v) : typeof v === 'number' ? v.toLocaleString() : String(v);
          div.append(dt, dd);
          return div;
        }),
      );
      if (s.rate) drawRate(s.rate);
    } catch {
      /* the next refresh tries again */
    }
  }

  function drawRate(rate) {
    const canvas = $('chart');
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    const g = canvas.getContext('2d');
    g.scale(ratio, ratio);
    g.clearRect(0, 0, w, h);
    const values = rate.values;
    const max = Math.max(1, ...values);
    const step = w / Math.max(1, rate.capacity - 1);
    const x0 = w - (values.length - 1) * step;
    g.fillStyle = 'rgba(11, 99, 197, 0.15)';
    g.strokeStyle = '#0b63c5';
    g.lineWidth = 1.5;
    g.beginPath();
    g.moveTo(x0, h);
    values.forEach((v, i) => g.lineTo(x0 + i * step, h - 4 - (v / max) * (h - 16)));
    g.lineTo(x0 + (values.length - 1) * step, h);
    g.closePath();
    g.fill();
    g.beginPath();
    values.forEach((v, i) => (i === 0 ? g.moveTo : g.lineTo).call(g, x0 + i * step, h - 4 - (v / max) * (h - 16)));
    g.stroke();
    g.fillStyle = '#65707c';
    g.font = '11px system-ui, sans-serif';
    g.fillText(`${max.toLocaleString()} lines/s`, 6, 12);
    g.fillText(`last ${Math.round((rate.capacity * rate.intervalSeconds) / 60)} min`, 6, h - 6);
    const now = values.length ? values[values.length - 1] : 0;
    $('rate-now').textContent = `${now.toLocaleString()} lines/s now`;
  }

  // ---- wiring ----

  $('search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.q = $('q').value.trim();
    state.offset = 0;
    writeAddress(true);
    search();
    if ($('live').checked) startTail();
  });
  $('live').addEventListener('change', () => {
    if ($('live').checked) {
      state.lastEventId = '';
      startTail();
    } else stopTail();
  });
  $('newer').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - PAGE);
    writeAddress(true);
    search();
  });
  $('older').addEventListener('click', () => {
    state.offset += PAGE;
    writeAddress(true);
    search();
  });
  $('token-save').addEventListener('click', () => {
    state.token = $('token-value').value.trim();
    sessionStorage.setItem('logcaster-token', state.token);
    $('token').hidden = true;
    search();
    refreshStats();
  });
  window.addEventListener('popstate', () => {
    readAddress();
    search();
  });

  readAddress();
  search();
  refreshStats();
  setInterval(refreshStats, STATS_MS);
})();

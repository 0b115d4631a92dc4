'use strict';
// The tuning page: controls built from the stages' manifests (GET state),
// previews from POST render (a crop first, then the whole image), Save and
// Quit. Paths are relative: the page lives under /TOKEN/.

const $ = (id) => document.getElementById(id);
let state = null;
let zoom = 1;
let showBefore = false;
let crop = null;
let inflight = false;
let dirty = false;
let timer = null;
const shown = { after: null, before: null, digest: '', phase: '' };

function setStatus(text, error) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

async function post(path, body) {
  const r = await fetch(path, { method: 'POST', body: JSON.stringify(body) });
  if (!r.ok) throw new Error(await r.text());
  return r.json();
}

// ---- controls -------------------------------------------------------------

function stepOf(p) {
  if (p.kind === 'int') return 1;
  const span = (p.max ?? 1) - (p.min ?? 0);
  return span > 0 ? Math.pow(10, Math.floor(Math.log10(span / 500))) : 0.01;
}

function rangeRow(label, p, value, onInput) {
  const row = document.createElement('div');
  row.className = 'param';
  const l = document.createElement('label');
  l.textContent = label;
  l.title = p.doc;
  const range = document.createElement('input');
  range.type = 'range';
  range.min = p.min ?? 0;
  range.max = p.max ?? 100;
  range.step = stepOf(p);
  range.value = value;
  const num = document.createElement('input');
  num.type = 'number';
  num.min = range.min; num.max = range.max; num.step = range.step;
  num.value = value;
  range.addEventListener('input', () => { num.value = range.value; onInput(); });
  num.addEventListener('change', () => { range.value = num.value; onInput(); });
  row.append(l, range, num);
  row.read = () => Number(num.value);
  return row;
}

function paramRows(stage, p, value, onInput) {
  const rows = [];
  if (p.kind === 'float' || p.kind === 'int') {
    rows.push(rangeRow(p.name, p, value, onInput));
  } else if (p.kind === 'floatlist') {
    const list = Array.isArray(value) ? value : [];
    list.forEach((v, i) => rows.push(rangeRow(`${p.name}[${i}]`, p, v, onInput)));
  } else {
    const row = document.createElement('div');
    row.className = 'param';
    const l = document.createElement('label');
    l.textContent = p.name;
    l.title = p.doc;
    let input;
    if (p.kind === 'bool') {
      input = document.createElement('input');
      input.type = 'checkbox';
      input.checked = !!value;
      row.read = () => input.checked;
    } else if (p.kind === 'choice') {
      input = document.createElement('select');
      for (const c of p.choices) {
        const o = document.createElement('option');
        o.value = c; o.textContent = c;
        input.append(o);
      }
      input.value = value;
      row.read = () => input.value;
    } else {
      input = document.createElement('input');
      input.type = 'text';
      input.value = value;
      row.read = () => input.value;
    }
    input.addEventListener('change', onInput);
    row.append(l, input, document.createElement('span'));
    rows.push(row);
  }
  return rows;
}

function buildStage(s) {
  const fs = document.createElement('fieldset');
  fs.className = 'stage';
  fs.dataset.name = s.name;
  const lg = document.createElement('legend');
  const en = document.createElement('input');
  en.type = 'checkbox';
  en.className = 'enable';
  en.checked = s.enabled;
  const name = document.createElement('span');
  name.textContent = s.name;
  const kind = document.createElement('span');
  kind.className = 'kind';
  kind.textContent = s.kind + (s.gpu ? ' · gpu' : '');
  const up = document.createElement('button');
  up.textContent = '↑'; up.title = 'run earlier';
  const down = document.createElement('button');
  down.textContent = '↓'; down.title = 'run later';
  const reset = document.createElement('button');
  reset.textContent = '↺'; reset.title = 'defaults';
  lg.append(en, name, kind, up, down, reset);
  const sum = document.createElement('p');
  sum.className = 'summary';
  sum.textContent = s.summary;
  fs.append(lg, sum);
  const readers = [];
  const fill = (values) => {
    fs.querySelectorAll('.param').forEach((e) => e.remove());
    readers.length = 0;
    for (const p of s.params) {
      const v = p.name in values ? values[p.name] : p.default;
      const rows = paramRows(s, p, v, () => { mark(); schedule(); });
      rows.forEach((r) => fs.append(r));
      if (p.kind === 'floatlist') {
        readers.push([p, () => rows.map((r) => r.read()), rows]);
      } else if (rows.length) {
        readers.push([p, rows[0].read, rows]);
      }
    }
  };
  const mark = () => {
    for (const [p, read, rows] of readers) {
      const changed = JSON.stringify(read()) !== JSON.stringify(p.default);
      rows.forEach((r) => r.classList.toggle('changed', changed));
    }
  };
  fill(s.values);
  mark();
  fs.classList.toggle('off', !s.enabled);
  en.addEventListener('change', () => { fs.classList.toggle('off', !en.checked); schedule(); });
  up.addEventListener('click', () => { if (fs.previousElementSibling) { fs.parentNode.insertBefore(fs, fs.previousElementSibling); schedule(); } });
  down.addEventListener('click', () => { if (fs.nextElementSibling) { fs.parentNode.insertBefore(fs.nextElementSibling, fs); schedule(); } });
  reset.addEventListener('click', () => { fill({}); mark(); schedule(); });
  // Only values that differ from the manifest's default go to the chain
  // (and to the saved pipeline), so later default changes still apply.
  fs.entry = () => {
    const params = {};
    for (const [p, read] of readers) {
      const v = read();
      if (JSON.stringify(v) !== JSON.stringify(p.default)) params[p.name] = v;
    }
    return { plugin: s.name, params };
  };
  fs.enabled = () => en.checked;
  return fs;
}

function chain() {
  return [...document.querySelectorAll('fieldset.stage')]
    .filter((fs) => fs.enabled())
    .map((fs) => fs.entry());
}

// ---- preview --------------------------------------------------------------

function viewCrop(cx, cy) {
  const v = $('view');
  const w = Math.max(16, Math.min(state.width, Math.floor(v.clientWidth / zoom)));
  const h = Math.max(16, Math.min(state.height, Math.floor(v.clientHeight / zoom)));
  const x = Math.round(Math.min(Math.max(cx - w / 2, 0), state.width - w));
  const y = Math.round(Math.min(Math.max(cy - h / 2, 0), state.height - h));
  return { x, y, w, h };
}

function drawCropBox() {
  const ov = $('overview');
  const k = ov.clientWidth / state.width;
  const box = $('ov-crop');
  box.style.left = crop.x * k + 'px';
  box.style.top = crop.y * k + 'px';
  box.style.width = crop.w * k + 'px';
  box.style.height = crop.h * k + 'px';
}

function setCrop(cx, cy) {
  crop = viewCrop(cx, cy);
  drawCropBox();
  shown.before = null;
  schedule();
}

function show() {
  const img = $('preview');
  const src = showBefore ? shown.before : shown.after;
  if (src) img.src = src;
  img.style.width = crop.w * zoom + 'px';
  img.style.height = crop.h * zoom + 'px';
  img.dataset.digest = shown.digest;
  img.dataset.phase = shown.phase;
  $('toggle').classList.toggle('on', showBefore);
  $('toggle').textContent = showBefore ? 'After' : 'Before';
  $('phase').textContent = showBefore
    ? 'showing: the plain stack'
    : `showing: ${shown.phase === 'full' ? 'the whole image' : 'a quick crop preview'}, x ${crop.x} y ${crop.y}, ${crop.w}×${crop.h}`;
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => { timer = null; render(false); }, 60);
}

async function render(full) {
  if (inflight) { dirty = true; return; }
  inflight = true;
  dirty = false;
  try {
    if (!shown.before) {
      const b = await post('render', { chain: [], crop, before: true });
      shown.before = 'data:image/png;base64,' + b.png;
    }
    const r = await post('render', { chain: chain(), crop, full });
    shown.after = 'data:image/png;base64,' + r.png;
    shown.digest = r.digest;
    shown.phase = full ? 'full' : 'crop';
    show();
    setStatus(`${full ? 'whole image' : 'crop'} rendered in ${r.seconds.toFixed(3)} s`);
    if (r.messages.length) $('messages').textContent = r.messages.join('\n');
  } catch (e) {
    setStatus(String(e.message || e), true);
    full = true; // do not chase a failing chain with a full render
  } finally {
    inflight = false;
  }
  if (dirty) render(false);
  else if (!full) render(true);
}

// ---- actions --------------------------------------------------------------

async function save() {
  setStatus('saving…');
  try {
    const r = await post('save', { chain: chain(), format: $('format').value });
    setStatus(`wrote ${r.image} and ${r.pipeline}`);
    $('save').dataset.saved = r.pipeline;
  } catch (e) {
    setStatus(String(e.message || e), true);
  }
}

async function quit() {
  try { await fetch('quit', { method: 'POST' }); } catch (e) { /* gone */ }
  setStatus('server stopped: close this page');
  document.querySelectorAll('button, input, select').forEach((e) => { e.disabled = true; });
}

async function init() {
  state = await (await fetch('state')).json();
  const kind = state.channels === 1 ? 'mono' : 'RGB';
  $('info').textContent = `${state.width}×${state.height} ${kind} · ${state.device} · Save writes ${state.save_as}.<format> and ${state.save_as}.toml`;
  const list = $('stages');
  for (const s of state.stages) list.append(buildStage(s));
  $('overview').addEventListener('click', (e) => {
    const k = state.width / $('overview').clientWidth;
    setCrop(e.offsetX * k, e.offsetY * k);
  });
  document.querySelectorAll('[data-zoom]').forEach((b) => b.addEventListener('click', () => {
    zoom = Number(b.dataset.zoom);
    document.querySelectorAll('[data-zoom]').forEach((o) => o.classList.toggle('on', o === b));
    setCrop(crop.x + crop.w / 2, crop.y + crop.h / 2);
  }));
  $('toggle').addEventListener('click', () => { showBefore = !showBefore; show(); });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'b' && e.target.tagName !== 'INPUT') { showBefore = !showBefore; show(); }
  });
  $('save').addEventListener('click', save);
  $('quit').addEventListener('click', quit);
  const start = () => setCrop(state.width / 2, state.height / 2);
  if ($('overview').complete && $('overview').naturalWidth) start();
  else $('overview').addEventListener('load', start, { once: true });
  $('overview').src = 'overview.png';
}

// For scripts and tests: true while a render is running or due.
window.jupiterTuneBusy = () => inflight || dirty || timer !== null;

init().catch((e) => setStatus(String(e.message || e), true));

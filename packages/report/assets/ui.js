// graft ui, browser side: four views over the server's read-only API, switched by the URL
// hash (#/runs, #/compare?runs=a,b, #/artifacts[/stage/key], #/playground). The playground
// runs models in the browser with tfjs on its cpu backend (same float32 math as graft's
// own evaluation, so predictions can be checked against it).
(function () {
  'use strict';
  var view = document.getElementById('view');
  var timers = [];
  var ui = { runs: [], selected: [], playground: {} };
  window.graftUi = ui;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'on') Object.keys(attrs.on).forEach(function (ev) { node.addEventListener(ev, attrs.on[ev]); });
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }
  function getJson(url) {
    return fetch(url).then(function (r) {
      if (!r.ok) return r.json().catch(function () { return {}; }).then(function (b) { throw new Error(b.error || r.status + ' ' + url); });
      return r.json();
    });
  }
  function clearTimers() { timers.forEach(clearInterval); timers = []; }
  function pct(v) { return v === null || v === undefined ? '—' : (v * 100).toFixed(2) + '%'; }
  function route() {
    clearTimers();
    var hash = location.hash || '#/runs';
    var path = hash.slice(1).split('?')[0];
    var query = new URLSearchParams(hash.split('?')[1] || '');
    var tab = path.split('/')[1] || 'runs';
    document.querySelectorAll('#tabs a').forEach(function (a) { a.classList.toggle('active', a.getAttribute('data-tab') === tab); });
    view.innerHTML = '';
    document.body.removeAttribute('data-view-ready');
    var done = function () { document.body.setAttribute('data-view-ready', tab); };
    var fail = function (e) { view.appendChild(el('p', { class: 'chart-error', text: e.message })); done(); };
    if (tab === 'runs') return runsView().then(done, fail);
    if (tab === 'compare') return compareView((query.get('runs') || ui.selected.join(',')).split(',').filter(Boolean)).then(done, fail);
    if (tab === 'artifacts') return artifactsView(path.split('/').slice(2)).then(done, fail);
    if (tab === 'playground') return playgroundView().then(done, fail);
    fail(new Error('No page ' + path));
  }
  window.addEventListener('hashchange', route);

  // ---- Runs: newest first, filters, interrupted runs marked, running runs' progress, refreshed live.
  function runsView() {
    var filter = el('input', { type: 'search', id: 'run-filter', placeholder: 'filter: config, param=value, status…' });
    var table = el('table', { id: 'run-table' });
    var compareButton = el('button', { id: 'compare-selected', text: 'Compare selected', on: { click: function () { location.hash = '#/compare?runs=' + ui.selected.join(','); } } });
    view.appendChild(el('section', {}, [el('h2', { text: 'Runs' }), el('p', { class: 'dim', text: 'Newest first. Tick runs to compare them; running runs refresh every 2 s.' }), filter, ' ', compareButton, table]));
    function matches(run, words) {
      var hay = [run.runId, run.configName, run.target, run.status, run.backend, 'seed=' + run.seed].concat(
        Object.keys(run.params || {}).reduce(function (all, entry) {
          var p = run.params[entry] || {};
          return all.concat(Object.keys(p).map(function (k) { return entry + '.' + k + '=' + JSON.stringify(p[k]); }), Object.keys(p).map(function (k) { return k + '=' + JSON.stringify(p[k]); }));
        }, []),
      ).join(' ').toLowerCase();
      return words.every(function (w) { return hay.indexOf(w) >= 0; });
    }
    function draw() {
      var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      table.innerHTML = '';
      table.appendChild(el('thead', {}, [el('tr', {}, ['', 'run', 'started (UTC)', 'config', 'target', 'seed', 'status', 'P1 test', 'P2 test', ''].map(function (h) { return el('th', { text: h }); }))]));
      var body = el('tbody');
      ui.runs.filter(function (r) { return matches(r, words); }).forEach(function (r) {
        var box = el('input', { type: 'checkbox', 'data-run': r.runId, on: { change: function (e) {
          ui.selected = ui.selected.filter(function (id) { return id !== r.runId; });
          if (e.target.checked) ui.selected.push(r.runId);
        } } });
        if (ui.selected.indexOf(r.runId) >= 0) box.checked = true;
        var status = el('span', { class: 'status ' + r.status, text: r.status });
        var progress = r.progress ? el('span', { class: 'progress', 'data-progress': r.progress.done + '/' + r.progress.total }, [
          el('progress', { max: String(r.progress.total), value: String(r.progress.done) }),
          ' ' + r.progress.done + '/' + r.progress.total + ' entries' + (r.progress.message ? ' · ' + r.progress.message : ''),
        ]) : null;
        body.appendChild(el('tr', { 'data-run-row': r.runId, class: r.status }, [
          el('td', {}, [box]),
          el('td', {}, [el('code', { text: r.runId })]),
          el('td', { text: r.createdAt.slice(0, 16).replace('T', ' ') }),
          el('td', { text: r.configName }),
          el('td', { text: r.target }),
          el('td', { text: r.seed === null ? '—' : String(r.seed) }),
          el('td', {}, [status, r.status === 'interrupted' ? el('span', { class: 'dim', text: ' (process gone: resume with graft run)' }) : null, progress]),
          el('td', { class: 'num', text: pct(r.phaseOneTestAccuracy) }),
          el('td', { class: 'num', text: pct(r.phaseTwoTestAccuracy) }),
          el('td', {}, [el('a', { href: '#/compare?runs=' + r.runId, text: 'report' })]),
        ]));
      });
      table.appendChild(body);
    }
    filter.addEventListener('input', draw);
    function load() { return getJson('/api/runs').then(function (data) { ui.runs = data.runs; draw(); }); }
    timers.push(setInterval(function () { load().catch(function () {}); }, 2000));
    return load();
  }

  // ---- Compare: the report's body for the chosen runs, refreshed while one of them runs.
  function compareView(ids) {
    var holder = el('div', { id: 'report' });
    view.appendChild(holder);
    if (ids.length === 0) {
      holder.appendChild(el('section', {}, [el('h2', { text: 'Compare' }), el('p', { class: 'dim', text: 'Tick runs on the Runs page, then Compare selected.' })]));
      return Promise.resolve();
    }
    var lastBody = '';
    function load() {
      return getJson('/api/report?runs=' + encodeURIComponent(ids.join(','))).then(function (body) {
        if (body.html === lastBody) return;
        lastBody = body.html;
        holder.innerHTML = body.html;
        return graftReport.renderCharts(holder, body.specs);
      });
    }
    return load().then(function () {
      var running = ui.runs.length === 0 || ui.runs.some(function (r) { return ids.indexOf(r.runId) >= 0 && r.status === 'running'; });
      if (running) timers.push(setInterval(function () { load().catch(function () {}); }, 3000));
    });
  }

  // ---- Artifacts: every manifest; one artifact's manifest, files (links by key) and verify status.
  function artifactsView(parts) {
    if (parts.length === 2) {
      return getJson('/api/artifacts/' + parts[0] + '/' + parts[1]).then(function (data) {
        var m = data.manifest;
        var verify = el('p', { id: 'verify', class: data.verify.ok ? 'status succeeded' : 'status failed', text: data.verify.ok ? 'verified: every file matches its sha256' : 'verify failed: ' + data.verify.problems.join('; ') });
        var files = el('table', { id: 'files' }, [el('tbody', {}, m.files.map(function (f) {
          return el('tr', {}, [el('td', {}, [el('a', { href: '/store/' + m.stage + '/' + m.key + '/' + f.path, text: f.path })]), el('td', { class: 'num', text: f.bytes + ' B' }), el('td', {}, [el('code', { text: f.sha256.slice(0, 16) })])]);
        }))]);
        view.appendChild(el('section', {}, [
          el('h2', {}, [m.stage + ' ', el('code', { text: m.key })]), verify,
          el('h3', { text: 'Files' }), files,
          el('h3', { text: 'Manifest' }), el('pre', { id: 'manifest', text: JSON.stringify(Object.assign({}, m, { metrics: '(see below)' }), null, 2) }),
          el('h3', { text: 'Metrics' }), el('pre', { text: JSON.stringify(m.metrics, function (k, v) { return k === 'curve' ? '(' + v.length + ' points)' : v; }, 2) }),
        ]));
      });
    }
    return getJson('/api/artifacts').then(function (list) {
      var rows = list.slice().reverse().map(function (a) {
        return el('tr', { 'data-artifact': a.stage + '/' + a.key }, [
          el('td', { text: a.stage }),
          el('td', {}, [el('a', { href: '#/artifacts/' + a.stage + '/' + a.key }, [el('code', { text: a.key.slice(0, 16) })])]),
          el('td', { text: a.createdAt.slice(0, 19).replace('T', ' ') }),
          el('td', { class: 'num', text: (a.bytes / 1024).toFixed(1) + ' KB' }),
          el('td', { text: a.files + ' files' }),
        ]);
      });
      view.appendChild(el('section', {}, [el('h2', { text: 'Artifacts' }), el('p', { class: 'dim', text: 'Newest first. Open one for its manifest, files and verify status.' }),
        el('table', { id: 'artifact-table' }, [el('tbody', {}, rows)])]));
    });
  }

  // ---- Playground: a model artifact, a canvas to draw on, test images, probabilities, mistakes.
  function softmaxProbabilities(model, x, n) {
    return tf.tidy(function () { return tf.softmax(model.predict(tf.tensor4d(x, [n, 28, 28, 1]))); });
  }

  /** A drawing as the network's input: the stroke's bounding box scaled into 20x20, centred in 28x28 (as MNIST was made). */
  function canvasInput(canvas) {
    var ctx = canvas.getContext('2d');
    var w = canvas.width, h = canvas.height;
    var data = ctx.getImageData(0, 0, w, h).data;
    var minX = w, minY = h, maxX = -1, maxY = -1;
    for (var y = 0; y < h; y++) for (var x = 0; x < w; x++) if (data[(y * w + x) * 4] > 20) { if (x < minX) minX = x; if (x > maxX) maxX = x; if (y < minY) minY = y; if (y > maxY) maxY = y; }
    var small = document.createElement('canvas');
    small.width = 28; small.height = 28;
    var s = small.getContext('2d');
    s.fillStyle = 'black'; s.fillRect(0, 0, 28, 28);
    if (maxX >= 0) {
      var bw = maxX - minX + 1, bh = maxY - minY + 1, scale = 20 / Math.max(bw, bh);
      s.imageSmoothingEnabled = true;
      s.drawImage(canvas, minX, minY, bw, bh, (28 - bw * scale) / 2, (28 - bh * scale) / 2, bw * scale, bh * scale);
    }
    var pixels = s.getImageData(0, 0, 28, 28).data;
    var out = new Float32Array(784);
    for (var i = 0; i < 784; i++) out[i] = pixels[i * 4] / 255;
    return out;
  }

  function imageCanvas(pixels, offset, scale) {
    var c = document.createElement('canvas');
    c.width = 28; c.height = 28;
    c.style.width = 28 * scale + 'px'; c.style.height = 28 * scale + 'px';
    var ctx = c.getContext('2d');
    var img = ctx.createImageData(28, 28);
    for (var i = 0; i < 784; i++) { var v = pixels[offset + i]; img.data[i * 4] = v; img.data[i * 4 + 1] = v; img.data[i * 4 + 2] = v; img.data[i * 4 + 3] = 255; }
    ctx.putImageData(img, 0, 0);
    return c;
  }

  function playgroundView() {
    var state = ui.playground;
    var select = el('select', { id: 'model-select' });
    var probs = el('div', { id: 'probabilities' });
    var canvas = el('canvas', { id: 'draw', width: '280', height: '280', class: 'draw' });
    var strip = el('div', { id: 'test-strip', class: 'strip' });
    var gallery = el('div', { id: 'gallery', class: 'strip' });
    var status = el('p', { id: 'model-status', class: 'dim' });
    view.appendChild(el('section', {}, [
      el('h2', { text: 'Model playground' }),
      el('p', { class: 'dim', text: 'Pick a model artifact; draw a digit (white on black) or click a test image. The model runs here, in the browser (tfjs).' }),
      el('label', {}, ['model ', select]), status,
      el('div', { class: 'play' }, [
        el('div', {}, [canvas, el('br'), el('button', { id: 'clear', text: 'Clear', on: { click: function () { clearCanvas(); } } })]),
        probs,
      ]),
      el('h3', { text: 'Test images (phase-two test set; held-out class marked)' }), strip,
      el('h3', { text: 'Mistakes of this model on these test images' }), gallery,
    ]));
    var ctx = canvas.getContext('2d');
    function clearCanvas() { ctx.fillStyle = 'black'; ctx.fillRect(0, 0, 280, 280); probs.innerHTML = ''; }
    clearCanvas();
    var drawing = false, last = null;
    function pos(e) { var r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
    canvas.addEventListener('mousedown', function (e) { drawing = true; last = pos(e); });
    canvas.addEventListener('mousemove', function (e) {
      if (!drawing) return;
      var p = pos(e);
      ctx.strokeStyle = 'white'; ctx.lineWidth = 22; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
      ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
      last = p;
    });
    window.addEventListener('mouseup', function () {
      if (!drawing) return;
      drawing = false;
      classify(canvasInput(canvas), 'drawing');
    });

    function showProbabilities(p, source, truth) {
      var labels = state.classLabels;
      var best = 0;
      for (var i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
      probs.innerHTML = '';
      probs.setAttribute('data-predicted', String(labels[best]));
      probs.setAttribute('data-source', source);
      probs.appendChild(el('p', {}, ['prediction: ', el('strong', { id: 'predicted', text: String(labels[best]) }), truth !== undefined ? ' (true: ' + truth + ')' : '']));
      labels.forEach(function (label, i) {
        probs.appendChild(el('div', { class: 'bar-row' + (i === best ? ' best' : ''), 'data-label': String(label), 'data-p': String(p[i]) }, [
          el('span', { class: 'bar-label', text: String(label) + (state.heldOut.indexOf(label) >= 0 ? '*' : '') }),
          el('span', { class: 'bar', style: 'width:' + (p[i] * 240).toFixed(1) + 'px' }),
          el('span', { class: 'bar-value', text: (p[i] * 100).toFixed(1) + '%' }),
        ]));
      });
    }
    function classify(x, source, truth) {
      if (!state.model) return;
      var t = softmaxProbabilities(state.model, x, 1);
      var p = Array.from(t.dataSync());
      t.dispose();
      state.lastInput = Array.from(x);
      state.lastProbabilities = p;
      showProbabilities(p, source, truth);
    }

    function loadModel(artifact) {
      status.textContent = 'loading ' + artifact.stage + '/' + artifact.key.slice(0, 12) + '…';
      document.body.removeAttribute('data-model-ready');
      if (state.model) state.model.dispose();
      state.model = null;
      var base = '/store/' + artifact.stage + '/' + artifact.key + '/model/model.json';
      return tf.setBackend('cpu').then(function () { return tf.loadLayersModel(base); }).then(function (model) {
        state.model = model;
        state.artifact = artifact;
        var meta = (model.getUserDefinedMetadata && model.getUserDefinedMetadata()) || {};
        var units = model.outputs[0].shape[1];
        state.classLabels = (meta.graft && meta.graft.classLabels) || Array.from({ length: units }, function (_, i) { return i; });
        return getJson('/api/test-images/' + artifact.inputs.data + '?n=200');
      }).then(function (images) {
        state.images = images;
        state.heldOut = images.heldOut;
        var raw = atob(images.pixels);
        var pixels = new Uint8Array(raw.length);
        for (var i = 0; i < raw.length; i++) pixels[i] = raw.charCodeAt(i);
        state.pixels = pixels;
        var size = images.rows * images.cols;
        var x = new Float32Array(pixels.length);
        for (var j = 0; j < pixels.length; j++) x[j] = pixels[j] / 255;
        // Every shown test image through the model at once: the gallery and the check against graft's evaluation.
        var t = softmaxProbabilities(state.model, x, images.count);
        var flat = t.dataSync();
        t.dispose();
        var units = state.classLabels.length;
        state.predictions = [];
        for (var k = 0; k < images.count; k++) state.predictions.push(Array.from(flat.slice(k * units, (k + 1) * units)));
        strip.innerHTML = '';
        gallery.innerHTML = '';
        var mistakes = 0;
        for (var n = 0; n < images.count; n++) (function (n) {
          var label = images.labels[n];
          var p = state.predictions[n];
          var best = 0;
          for (var c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
          var predicted = state.classLabels[best];
          var held = images.heldOut.indexOf(label) >= 0;
          var tile = el('figure', { class: 'tile' + (held ? ' held-out' : ''), 'data-index': String(n), title: 'test image ' + images.indices[n] + ', label ' + label + (held ? ' (held out)' : '') }, [imageCanvas(pixels, n * size, 2), el('figcaption', { text: String(label) + (held ? '*' : '') })]);
          tile.addEventListener('click', function () { classify(x.subarray(n * size, (n + 1) * size), 'test:' + n, label); });
          if (n < 60 || held) strip.appendChild(tile);
          if (predicted !== label) {
            mistakes++;
            gallery.appendChild(el('figure', { class: 'tile' + (held ? ' held-out' : ''), 'data-index': String(n), 'data-predicted': String(predicted) }, [imageCanvas(pixels, n * size, 2), el('figcaption', { text: label + '→' + predicted })]));
          }
        })(n);
        status.textContent = artifact.stage + '/' + artifact.key.slice(0, 12) + ': ' + mistakes + ' of ' + images.count + ' test images wrong (' + pct(1 - mistakes / images.count) + ' right). * = held-out class.';
        document.body.setAttribute('data-model-ready', artifact.key);
      });
    }

    return getJson('/api/artifacts').then(function (list) {
      var models = list.filter(function (a) { return a.model && a.inputs && a.inputs.data; }).reverse();
      state.models = models;
      models.forEach(function (a) { select.appendChild(el('option', { value: a.key, text: a.stage + ' ' + a.key.slice(0, 12) + ' (' + a.createdAt.slice(0, 16).replace('T', ' ') + ')' })); });
      select.addEventListener('change', function () {
        var a = models.find(function (m) { return m.key === select.value; });
        if (a) loadModel(a).catch(function (e) { status.textContent = e.message; });
      });
      if (models.length === 0) { status.textContent = 'No model artifacts in this store yet: run graft run phase-one.'; return; }
      return loadModel(models[0]);
    });
  }

  route();
})();

// Browser side of graft reports and of the UI's compare view: fills every [data-chart]
// placeholder with its vega-lite spec through vega-embed (SVG renderer, no actions menu,
// so nothing reaches for the network). Plain ES2017 in one global, inlined as is.
(function () {
  'use strict';
  var charts = {};
  var state = { ready: false, errors: [] };

  function renderCharts(root, specs) {
    state.ready = false;
    var placeholders = Array.prototype.slice.call(root.querySelectorAll('[data-chart]'));
    var jobs = placeholders.map(function (el) {
      var id = el.getAttribute('data-chart');
      var spec = specs[id];
      if (!spec) return Promise.resolve();
      return vegaEmbed(el, spec, { renderer: 'svg', actions: false }).then(
        function (result) {
          if (charts[id]) charts[id].finalize();
          charts[id] = result.view;
          el.setAttribute('data-rendered', 'true');
        },
        function (error) {
          state.errors.push(id + ': ' + error.message);
          el.classList.add('chart-error');
          el.textContent = 'Chart ' + id + ' could not be drawn: ' + error.message;
          throw error;
        },
      );
    });
    var done = Promise.all(jobs).then(function () {
      state.ready = true;
      state.readyAt = performance.now();
      document.body.setAttribute('data-charts-ready', 'true');
    });
    state.done = done;
    return done;
  }

  window.graftReport = { renderCharts: renderCharts, charts: charts, state: state };
})();

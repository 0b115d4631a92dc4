// Moves the 1:1 crop of every before/after view to where the thumbnail is
// clicked (the crop's centre), and zooms 1:1 / 2:1.
(function () {
  var thumb = document.getElementById('thumb');
  var views = document.querySelectorAll('.view img');
  var zoom = 1, cx = 0.5, cy = 0.5;
  function place() {
    views.forEach(function (img) {
      var w = img.naturalWidth * zoom, h = img.naturalHeight * zoom;
      img.style.width = w + 'px'; img.style.height = h + 'px';
      img.style.left = (150 - cx * w) + 'px'; img.style.top = (150 - cy * h) + 'px';
    });
    var label = document.getElementById('crop');
    if (label) label.textContent = 'crop centre ' + Math.round(cx * 100) + ' %, ' + Math.round(cy * 100) + ' %; zoom ' + zoom + ':1';
  }
  if (thumb) thumb.addEventListener('click', function (e) {
    var r = thumb.getBoundingClientRect();
    cx = (e.clientX - r.left) / r.width; cy = (e.clientY - r.top) / r.height; place();
  });
  document.querySelectorAll('button[data-zoom]').forEach(function (b) {
    b.addEventListener('click', function () { zoom = Number(b.dataset.zoom); place(); });
  });
  views.forEach(function (img) { if (img.complete) place(); else img.addEventListener('load', place); });
  place();
})();

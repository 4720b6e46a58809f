// The player page's script (node/src/http/player.rs serves it as /player/player.js): plays the
// page's master playlist with hls.js, or with the browser's own HLS where hls.js cannot run;
// shows whether the stream is live or ended, and picks a rendition ("auto" lets hls.js choose).
"use strict";
(function () {
  const main = document.getElementById("player");
  const video = document.getElementById("video");
  const picker = document.getElementById("rendition");
  const playing = document.getElementById("playing");
  const status = document.getElementById("status");
  const playlist = main.dataset.playlist;

  function setStatus(state, text) {
    status.className = "status " + state;
    status.textContent = text || state;
  }

  function label(level) {
    const size = level.width && level.height ? level.width + "x" + level.height : "";
    if (level.name && size) return level.name + " (" + size + ")";
    return level.name || size || Math.round(level.bitrate / 1000) + " kb/s";
  }

  function play() {
    // Muted autoplay is allowed; an explicit play() covers browsers that wait for it.
    const p = video.play();
    if (p && p.catch) p.catch(function () {});
  }

  if (window.Hls && Hls.isSupported()) {
    let hls = null;
    const start = function () {
      hls = new Hls({ liveDurationInfinity: true });
      hls.on(Hls.Events.MANIFEST_PARSED, function (_, data) {
        picker.length = 1;
        data.levels.forEach(function (level, i) {
          picker.add(new Option(label(level), String(i)));
        });
        picker.value = "-1";
        picker.disabled = false;
        play();
      });
      hls.on(Hls.Events.LEVEL_LOADED, function (_, data) {
        if (data.details.live) setStatus("live");
        else setStatus("ended");
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, function (_, data) {
        const level = hls.levels[data.level];
        playing.textContent = level ? "playing " + label(level) : "";
      });
      hls.on(Hls.Events.ERROR, function (_, data) {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
          return;
        }
        // Not started yet, gone, or the network failed: try again in a while.
        hls.destroy();
        picker.disabled = true;
        if (!status.classList.contains("waiting")) setStatus("offline", "offline, retrying");
        setTimeout(start, 3000);
      });
      hls.loadSource(playlist);
      hls.attachMedia(video);
    };
    picker.addEventListener("change", function () {
      if (hls) hls.currentLevel = Number(picker.value);
    });
    start();
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    // The browser's own HLS picks the rendition itself.
    video.src = playlist;
    playing.textContent = "renditions chosen by the browser";
    play();
  } else {
    setStatus("offline", "this browser cannot play HLS");
  }
})();

//! `Recorder`: writes every stream's segments and playlists to disk as they arrive
//! (`gateway.record_dir`), one recording per run of a stream:
//!
//! ```text
//! {record_dir}/{stream}/{run start, ms since the epoch}/index.m3u8          master playlist
//! {record_dir}/{stream}/{run start}/{rendition}.m3u8                        media playlist
//! {record_dir}/{stream}/{run start}/{rendition}/{seq}.ts                    segments
//! ```
//!
//! A media playlist is `#EXT-X-PLAYLIST-TYPE:EVENT` while the stream is live and gets
//! `#EXT-X-ENDLIST` when it ends, so a recording in progress plays from its start and a
//! finished one is a complete VOD. Playlists are replaced atomically (written aside, renamed).
//!
//! - **Owns** one writer thread and, per recording in progress, the list of its segments.
//! - **Bounds** its queue at [`QUEUE`] writes; when the disk falls that far behind, further
//!   writes are dropped with a warning and counted (`livepeer_recording_errors_total`) rather
//!   than stalling the streams.
//! - **Failures**: a write that fails is logged and counted; the stream goes on. The thread
//!   ends when the last handle is dropped.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use tracing::warn;

use crate::metrics;

/// Writes queued at most.
pub const QUEUE: usize = 1024;

/// A handle to the writer thread (cheap to clone).
#[derive(Debug, Clone)]
pub struct Recorder {
    root: PathBuf,
    tx: Sender<Write>,
}

/// One run of one stream being recorded.
#[derive(Debug, Clone)]
pub struct Recording {
    dir: PathBuf,
}

enum Write {
    Segment { dir: PathBuf, rendition: String, width: u32, height: u32, seq: i64, duration_ms: u64, data: Bytes },
    End { dir: PathBuf },
}

impl Recorder {
    /// Start the writer thread, recording under `root`.
    pub fn start(root: PathBuf) -> std::io::Result<Recorder> {
        std::fs::create_dir_all(&root)?;
        let (tx, rx) = bounded(QUEUE);
        std::thread::Builder::new().name("recorder".into()).spawn(move || write_all(rx))?;
        Ok(Recorder { root, tx })
    }

    /// The recording of a run of `stream` starting now.
    pub fn recording(&self, stream: &str) -> Recording {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        Recording { dir: self.root.join(stream).join(started.to_string()) }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &self,
        recording: &Recording,
        rendition: &str,
        width: u32,
        height: u32,
        seq: i64,
        duration_ms: u64,
        data: Bytes,
    ) {
        // Rendition names are profile names (`A-Z a-z 0-9 _ - .`): never a path of their own.
        if rendition.is_empty() || rendition.contains(['/', '\\']) || rendition.chars().all(|c| c == '.') {
            metrics::recording_error();
            warn!(target: "lp::record", rendition, "a rendition name that is not a file name is not recorded");
            return;
        }
        let dir = recording.dir.clone();
        self.send(Write::Segment { dir, rendition: rendition.to_string(), width, height, seq, duration_ms, data });
    }

    /// The run ended: its playlists get `#EXT-X-ENDLIST`.
    pub fn end(&self, recording: &Recording) {
        self.send(Write::End { dir: recording.dir.clone() });
    }

    fn send(&self, write: Write) {
        match self.tx.try_send(write) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::recording_error();
                warn!(target: "lp::record", root = %self.root.display(), "the disk is {QUEUE} writes behind; a recording write was dropped");
            }
            Err(TrySendError::Disconnected(_)) => metrics::recording_error(),
        }
    }
}

#[derive(Default)]
struct Track {
    width: u32,
    height: u32,
    bytes: u64,
    /// The duration of every segment written, by seq.
    segments: BTreeMap<i64, u64>,
}

fn write_all(rx: Receiver<Write>) {
    let mut recordings: HashMap<PathBuf, BTreeMap<String, Track>> = HashMap::new();
    for write in rx {
        let (dir, result) = match write {
            Write::Segment { dir, rendition, width, height, seq, duration_ms, data } => {
                let tracks = recordings.entry(dir.clone()).or_default();
                let track = tracks.entry(rendition.clone()).or_default();
                (track.width, track.height, track.bytes) = (width, height, track.bytes + data.len() as u64);
                track.segments.insert(seq, duration_ms);
                let result = write_segment(&dir, &rendition, seq, &data)
                    .and_then(|()| write_playlists(&dir, tracks, Some(&rendition), false));
                (dir, result)
            }
            Write::End { dir } => {
                let result = match recordings.remove(&dir) {
                    Some(tracks) => write_playlists(&dir, &tracks, None, true),
                    None => Ok(()),
                };
                (dir, result)
            }
        };
        if let Err(e) = result {
            metrics::recording_error();
            warn!(target: "lp::record", dir = %dir.display(), error = %e, "recording write failed");
        }
    }
}

fn write_segment(dir: &Path, rendition: &str, seq: i64, data: &[u8]) -> std::io::Result<()> {
    let folder = dir.join(rendition);
    std::fs::create_dir_all(&folder)?;
    std::fs::write(folder.join(format!("{seq}.ts")), data)
}

/// Rewrite the master playlist and the media playlists of `only` (or all of them).
fn write_playlists(
    dir: &Path,
    tracks: &BTreeMap<String, Track>,
    only: Option<&str>,
    ended: bool,
) -> std::io::Result<()> {
    let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    // The source first, then the largest.
    let mut ordered: Vec<(&String, &Track)> = tracks.iter().collect();
    ordered.sort_by_key(|(name, t)| {
        (name.as_str() != super::hls::SOURCE, std::cmp::Reverse(t.width.saturating_mul(t.height)))
    });
    for (name, track) in ordered {
        let ms: u64 = track.segments.values().sum();
        let bandwidth = (track.bytes * 8 * 1000).checked_div(ms).unwrap_or(0).max(1);
        let _ = writeln!(
            master,
            "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={}x{},NAME=\"{name}\"\n{name}.m3u8",
            track.width, track.height
        );
        if only.is_none_or(|o| o == name) {
            let segments: Vec<(i64, u64)> = track.segments.iter().map(|(s, d)| (*s, *d)).collect();
            replace(&dir.join(format!("{name}.m3u8")), &super::hls::vod_playlist(name, &segments, ended))?;
        }
    }
    replace(&dir.join("index.m3u8"), &master)
}

/// Write `path` whole or not at all (readers never see half a playlist).
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let aside = path.with_extension("m3u8.tmp");
    std::fs::write(&aside, text)?;
    std::fs::rename(&aside, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(path: &Path, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
            assert!(std::time::Instant::now() < deadline, "{} never had {needle:?}: {text}", path.display());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn a_recording_is_an_event_playlist_until_the_stream_ends_then_a_vod() {
        let root = tempfile::tempdir().unwrap();
        let recorder = Recorder::start(root.path().to_path_buf()).unwrap();
        let rec = recorder.recording("cam");
        for seq in 0..3 {
            recorder.segment(&rec, "source", 1280, 720, seq, 2000, Bytes::from(vec![seq as u8; 1000]));
            recorder.segment(&rec, "P360p", 640, 360, seq, 2000, Bytes::from(vec![7; 250]));
        }
        let live = wait_for(&rec.dir.join("P360p.m3u8"), "P360p/2.ts");
        assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !live.contains("ENDLIST"), "{live}");
        assert_eq!(std::fs::read(rec.dir.join("source/1.ts")).unwrap(), vec![1u8; 1000]);
        recorder.end(&rec);
        let done = wait_for(&rec.dir.join("source.m3u8"), "#EXT-X-ENDLIST");
        assert!(done.contains("#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.000,\nsource/0.ts\n"), "{done}");
        let master = std::fs::read_to_string(rec.dir.join("index.m3u8")).unwrap();
        let (source, p360) = (master.find("source.m3u8").unwrap(), master.find("P360p.m3u8").unwrap());
        assert!(source < p360, "{master}");
        assert!(master.contains("BANDWIDTH=1000,RESOLUTION=640x360"), "{master}");
        assert!(rec.dir.starts_with(root.path().join("cam")));

        // Segments that finish out of order, or twice, are listed once each, in order; a name
        // that is not a file name is not written.
        let rec = recorder.recording("cam2");
        for seq in [1, 0, 1] {
            recorder.segment(&rec, "r", 2, 2, seq, 2000, Bytes::from_static(b"x"));
        }
        recorder.segment(&rec, "..", 2, 2, 0, 2000, Bytes::from_static(b"x"));
        recorder.end(&rec);
        let vod = wait_for(&rec.dir.join("r.m3u8"), "#EXT-X-ENDLIST");
        assert!(vod.contains("#EXTINF:2.000,\nr/0.ts\n#EXTINF:2.000,\nr/1.ts\n#EXT-X-ENDLIST\n"), "{vod}");
        assert!(!rec.dir.join("../0.ts").exists() && !rec.dir.parent().unwrap().join("0.ts").exists());
    }

    #[test]
    fn a_write_that_fails_leaves_the_other_renditions_recorded() {
        let root = tempfile::tempdir().unwrap();
        let recorder = Recorder::start(root.path().to_path_buf()).unwrap();
        let rec = recorder.recording("s");
        // A file where the rendition's folder should be: that rendition cannot be written.
        std::fs::create_dir_all(&rec.dir).unwrap();
        std::fs::write(rec.dir.join("blocked"), b"").unwrap();
        recorder.segment(&rec, "blocked", 2, 2, 0, 2000, Bytes::from_static(b"x"));
        recorder.segment(&rec, "fine", 2, 2, 0, 2000, Bytes::from_static(b"y"));
        wait_for(&rec.dir.join("fine.m3u8"), "fine/0.ts");
        assert!(!rec.dir.join("blocked.m3u8").exists());
    }
}

//! HLS output: each stream's last segments per rendition (the source included) and the
//! playlists that list them, in an [`HlsRegistry`] that viewers read without an actor round
//! trip (a `DashMap`: the stream's `StreamSession` writes, HTTP workers read).
//!
//! A stream's HLS outlives its session: when the stream ends (publisher gone, idle, `DELETE`)
//! every media playlist gets `#EXT-X-ENDLIST` and stays readable for `hls_retention_secs`. A
//! stream that starts again under the same id goes on in the same playlists after an
//! `#EXT-X-DISCONTINUITY`, its segments numbered after the last ones, so a playlist never goes
//! backwards.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dashmap::DashMap;
use serde::Serialize;

/// The rendition name of the source segments.
pub const SOURCE: &str = "source";

#[derive(Debug, Clone)]
struct Segment {
    seq: i64,
    duration_ms: u64,
    /// Wall-clock time of the segment's first frame (`#EXT-X-PROGRAM-DATE-TIME`).
    start: SystemTime,
    /// The first segment after a restart (`#EXT-X-DISCONTINUITY`).
    discontinuity: bool,
    data: Bytes,
}

#[derive(Debug, Clone)]
struct Track {
    name: String,
    width: u32,
    height: u32,
    /// RFC 6381 codecs (`avc1.64001f,mp4a.40.2`) and frame rate, read from its first segment.
    codecs: Option<String>,
    frame_rate: Option<f64>,
    segments: VecDeque<Segment>,
    /// The seq of the first segment ever added: the media sequence number of the first entry.
    base: i64,
    /// Entries dropped from the front so far; each one moves the media sequence on by one.
    dropped: i64,
    /// Discontinuities among the dropped entries (`#EXT-X-DISCONTINUITY-SEQUENCE`).
    dropped_discontinuities: i64,
    /// `#EXT-X-TARGETDURATION`: the longest segment so far, seconds (it only grows).
    target: u64,
    /// The next segment starts a discontinuity (the stream restarted).
    discontinuity_next: bool,
}

impl Track {
    /// RFC 8216 `BANDWIDTH`: the peak bit rate, the highest of any segment held.
    fn peak_bandwidth(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| (s.data.len() as u64 * 8 * 1000).checked_div(s.duration_ms).unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    /// RFC 8216 `AVERAGE-BANDWIDTH`: bits per second over the segments held.
    fn average_bandwidth(&self) -> u64 {
        let bytes: u64 = self.segments.iter().map(|s| s.data.len() as u64).sum();
        let ms: u64 = self.segments.iter().map(|s| s.duration_ms).sum();
        (bytes * 8 * 1000).checked_div(ms).unwrap_or(0)
    }
}

/// One segment of one rendition, for [`HlsStore::add`].
#[derive(Debug, Clone)]
pub struct HlsSegment {
    pub width: u32,
    pub height: u32,
    /// The stored sequence number ([`HlsStore::arrive`]).
    pub seq: i64,
    pub duration_ms: u64,
    pub start: SystemTime,
    pub data: Bytes,
}

/// The HLS of one stream.
#[derive(Debug, Clone)]
pub struct HlsStore {
    /// Segments listed in each media playlist.
    window: usize,
    /// Segments kept per rendition: the window plus a few for players that lag behind.
    keep: usize,
    tracks: Vec<Track>,
    /// The run (one per start of the stream) whose segments are taken; a late segment of an
    /// earlier run is not.
    run: u64,
    /// Added to a pushed seq of this run to make the stored one; `None` until the run's first
    /// segment arrives.
    offset: Option<i64>,
    /// The highest stored seq so far.
    last_seq: Option<i64>,
    /// When the stream ended; `None` while it is live.
    ended: Option<Instant>,
    /// `#EXT-X-PROGRAM-DATE-TIME` of the run's segments: each one starts when the one before it
    /// ends (so the dates agree with the `EXTINF`s however fast segments arrive); the run's first
    /// takes its own wall-clock time. The last seq placed and its end, and the recent starts by
    /// seq (the same in every rendition).
    clock: Option<(i64, SystemTime)>,
    starts: VecDeque<(i64, SystemTime)>,
}

impl HlsStore {
    pub fn new(window: usize) -> Self {
        HlsStore {
            window: window.max(1),
            keep: window.max(1) + 3,
            tracks: Vec::new(),
            run: 0,
            offset: None,
            last_seq: None,
            ended: None,
            clock: None,
            starts: VecDeque::new(),
        }
    }

    /// A new run of the stream starts (the stream started again): its segments follow the
    /// ones held, after a discontinuity. Returns the run's number, for [`HlsStore::add`].
    pub fn restart(&mut self) -> u64 {
        self.run += 1;
        self.offset = None;
        self.ended = None;
        self.clock = None;
        for t in &mut self.tracks {
            t.discontinuity_next = !t.segments.is_empty() || t.dropped > 0;
        }
        self.run
    }

    /// The stored seq of a segment of `run` pushed as `seq`. The first segment of a run fixes
    /// the run's offset: a stream's first run keeps the pushed numbers, a later one goes on
    /// after the last stored segment. `None` for a segment of an earlier run.
    pub fn arrive(&mut self, run: u64, seq: i64) -> Option<i64> {
        if run != self.run {
            return None;
        }
        let offset = *self.offset.get_or_insert(match self.last_seq {
            Some(last) if self.run > 0 => last.saturating_add(1).saturating_sub(seq),
            _ => 0,
        });
        Some(seq.saturating_add(offset))
    }

    /// Add one rendition's segment (rendition [`SOURCE`] for the source) of `run`. Live
    /// playlists are append-only: a segment that finishes after a later one of the same
    /// rendition (a retry) is not listed, since inserting it would renumber what players
    /// already saw; neither is a late segment of an earlier run.
    /// Returns whether the segment was taken.
    pub fn add(&mut self, run: u64, rendition: &str, mut seg: HlsSegment) -> bool {
        if run != self.run {
            return false;
        }
        seg.start = self.place(seg.seq, seg.duration_ms, seg.start);
        let idx = match self.tracks.iter().position(|t| t.name == rendition) {
            Some(i) => i,
            None => {
                self.tracks.push(Track {
                    name: rendition.to_string(),
                    width: seg.width,
                    height: seg.height,
                    codecs: None,
                    frame_rate: None,
                    segments: VecDeque::new(),
                    base: seg.seq.max(0),
                    dropped: 0,
                    dropped_discontinuities: 0,
                    target: 0,
                    discontinuity_next: false,
                });
                self.tracks.len() - 1
            }
        };
        let track = &mut self.tracks[idx];
        if track.segments.back().is_some_and(|last| last.seq >= seg.seq) {
            return false;
        }
        self.last_seq = Some(self.last_seq.map_or(seg.seq, |l| l.max(seg.seq)));
        track.width = seg.width;
        track.height = seg.height;
        track.target = track.target.max(seg.duration_ms.div_ceil(1000)).max(1);
        let discontinuity = std::mem::take(&mut track.discontinuity_next);
        track.segments.push_back(Segment {
            seq: seg.seq,
            duration_ms: seg.duration_ms,
            start: seg.start,
            discontinuity,
            data: seg.data,
        });
        while track.segments.len() > self.keep {
            if let Some(s) = track.segments.pop_front() {
                track.dropped += 1;
                track.dropped_discontinuities += i64::from(s.discontinuity);
            }
        }
        true
    }

    /// The program date of segment `seq` of the run: after the run's last one placed, else (the
    /// run's first) its own wall-clock `start`.
    fn place(&mut self, seq: i64, duration_ms: u64, start: SystemTime) -> SystemTime {
        if let Some(&(_, at)) = self.starts.iter().find(|(s, _)| *s == seq) {
            return at;
        }
        let at = match self.clock {
            Some((last, end)) if last + 1 == seq => end,
            // A gap (a segment failed or was dropped): its own time, never before the last end.
            Some((last, end)) if last < seq => start.max(end),
            Some(_) => return start, // older than what is listed: it will not be taken
            None => start,
        };
        self.clock = Some((seq, at + Duration::from_millis(duration_ms)));
        self.starts.push_back((seq, at));
        if self.starts.len() > self.keep {
            self.starts.pop_front();
        }
        at
    }

    /// Those of `renditions` whose codecs are not known yet (to be set with
    /// [`HlsStore::set_codecs`]).
    pub fn codecs_unknown(&self, renditions: &[&str]) -> Vec<String> {
        let known = |name: &&str| self.tracks.iter().any(|t| t.name == *name && t.codecs.is_some());
        renditions.iter().filter(|n| !known(n)).map(|n| n.to_string()).collect()
    }

    pub fn set_codecs(&mut self, rendition: &str, codecs: String, frame_rate: f64) {
        if let Some(t) = self.tracks.iter_mut().find(|t| t.name == rendition) {
            t.codecs = Some(codecs);
            t.frame_rate = (frame_rate > 0.0).then_some(frame_rate);
        }
    }

    /// The stream ended: its playlists get `#EXT-X-ENDLIST`.
    pub fn end(&mut self, run: u64) {
        if run == self.run && self.ended.is_none() {
            self.ended = Some(Instant::now());
        }
    }

    pub fn is_live(&self) -> bool {
        self.ended.is_none()
    }

    /// The tracks in the master playlist's order: the source first, then the largest first
    /// (then by name), so the order does not depend on which rendition finished first.
    fn ordered(&self) -> Vec<&Track> {
        let mut tracks: Vec<&Track> = self.tracks.iter().collect();
        tracks.sort_by(|a, b| {
            (a.name != SOURCE, std::cmp::Reverse(a.width.saturating_mul(a.height)), &a.name).cmp(&(
                b.name != SOURCE,
                std::cmp::Reverse(b.width.saturating_mul(b.height)),
                &b.name,
            ))
        });
        tracks
    }

    /// The master playlist: one variant per rendition, the source first.
    pub fn master_playlist(&self, stream: &str) -> Option<String> {
        if self.tracks.is_empty() {
            return None;
        }
        let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
        for t in self.ordered() {
            let _ = write!(
                out,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{}",
                t.peak_bandwidth().max(1),
                t.average_bandwidth().max(1),
                t.width,
                t.height,
            );
            if let Some(codecs) = &t.codecs {
                let _ = write!(out, ",CODECS=\"{codecs}\"");
            }
            if let Some(fps) = t.frame_rate {
                let _ = write!(out, ",FRAME-RATE={fps:.3}");
            }
            let _ = writeln!(out, ",NAME=\"{}\"\n{}/{}.m3u8", t.name, stream, t.name);
        }
        Some(out)
    }

    /// The media playlist of a rendition: its last `window` segments, and `#EXT-X-ENDLIST`
    /// once the stream has ended.
    pub fn media_playlist(&self, rendition: &str) -> Option<String> {
        let track = self.tracks.iter().find(|t| t.name == rendition)?;
        let skip = track.segments.len().saturating_sub(self.window);
        let media_sequence = track.base.saturating_add(track.dropped + skip as i64);
        let discontinuity_sequence =
            track.dropped_discontinuities + track.segments.iter().take(skip).filter(|s| s.discontinuity).count() as i64;
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{media_sequence}\n",
            track.target
        );
        if discontinuity_sequence > 0 {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}");
        }
        for s in track.segments.iter().skip(skip) {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = write!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{:.3},\n{rendition}/{}.ts\n",
                rfc3339_millis(s.start),
                s.duration_ms as f64 / 1000.0,
                s.seq
            );
        }
        if self.ended.is_some() {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        Some(out)
    }

    /// A segment of a rendition, while it is held.
    pub fn segment(&self, rendition: &str, seq: i64) -> Option<Bytes> {
        let track = self.tracks.iter().find(|t| t.name == rendition)?;
        track.segments.iter().find(|s| s.seq == seq).map(|s| s.data.clone())
    }
}

/// A stream in the HLS registry, for the stream list and the player.
#[derive(Debug, Clone, Serialize)]
pub struct StreamListing {
    pub id: String,
    /// Whether it is still live (else it ended and is kept for `hls_retention_secs`).
    pub live: bool,
    /// In the master playlist's order, the source first.
    pub renditions: Vec<RenditionListing>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RenditionListing {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Peak bits per second.
    pub bandwidth: u64,
}

/// Every stream's HLS, live or ended within the retention time, by stream id.
#[derive(Debug, Clone, Default)]
pub struct HlsRegistry(Arc<DashMap<String, HlsStore>>);

impl HlsRegistry {
    /// Start a run of `stream`: a new store, or the next run of the one held (a restart).
    pub fn start(&self, stream: &str, window: usize) -> u64 {
        match self.0.get_mut(stream) {
            Some(mut store) => store.restart(),
            None => {
                self.0.insert(stream.to_string(), HlsStore::new(window));
                0
            }
        }
    }

    /// Change `stream`'s store (nothing if it is gone).
    pub fn update<T>(&self, stream: &str, f: impl FnOnce(&mut HlsStore) -> T) -> Option<T> {
        self.0.get_mut(stream).map(|mut store| f(&mut store))
    }

    /// Whether `stream` is held (live, or ended within the retention time) with a segment.
    pub fn contains(&self, stream: &str) -> bool {
        self.0.get(stream).is_some_and(|s| !s.tracks.is_empty())
    }

    /// Whether `stream` is held and live.
    pub fn is_live(&self, stream: &str) -> bool {
        self.0.get(stream).is_some_and(|s| s.is_live())
    }

    pub fn master(&self, stream: &str) -> Option<String> {
        self.0.get(stream)?.master_playlist(stream)
    }

    pub fn media(&self, stream: &str, rendition: &str) -> Option<String> {
        self.0.get(stream)?.media_playlist(rendition)
    }

    pub fn segment(&self, stream: &str, rendition: &str, seq: i64) -> Option<Bytes> {
        self.0.get(stream)?.segment(rendition, seq)
    }

    /// The streams held, live ones first, then by id.
    pub fn list(&self) -> Vec<StreamListing> {
        let mut list: Vec<StreamListing> = self
            .0
            .iter()
            .map(|entry| StreamListing {
                id: entry.key().clone(),
                live: entry.is_live(),
                renditions: entry
                    .ordered()
                    .into_iter()
                    .map(|t| RenditionListing {
                        name: t.name.clone(),
                        width: t.width,
                        height: t.height,
                        bandwidth: t.peak_bandwidth(),
                    })
                    .collect(),
            })
            .collect();
        list.sort_by(|a, b| (!a.live, &a.id).cmp(&(!b.live, &b.id)));
        list
    }

    /// Forget streams that ended more than `retention` ago; `live` says whether a stream
    /// still has a session (one whose session is gone without ending it is ended now).
    pub fn sweep(&self, retention: Duration, live: impl Fn(&str) -> bool) {
        self.0.retain(|id, store| {
            if store.ended.is_none() && !live(id) {
                store.ended = Some(Instant::now());
            }
            store.ended.is_none_or(|at| at.elapsed() < retention)
        });
    }
}

/// `2026-12-01T20:55:50.123Z`.
fn rfc3339_millis(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = lp_chain::keystore::civil_from_days(days);
    let (h, m, s, milli) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// A recording's media playlist listing `(seq, duration_ms)` segments as `<rendition>/<seq>.ts`,
/// relative to the playlist's own URL: `EVENT` while the recording goes on, a `VOD` with
/// `#EXT-X-ENDLIST` once it has `ended`.
pub fn vod_playlist(rendition: &str, segments: &[(i64, u64)], ended: bool) -> String {
    let target = segments.iter().map(|(_, d)| d.div_ceil(1000)).max().unwrap_or(2).max(1);
    let kind = if ended { "VOD" } else { "EVENT" };
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{kind}\n"
    );
    for (seq, duration_ms) in segments {
        let _ = write!(out, "#EXTINF:{:.3},\n{rendition}/{seq}.ts\n", *duration_ms as f64 / 1000.0);
    }
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: i64, duration_ms: u64, bytes: usize) -> HlsSegment {
        HlsSegment {
            width: 640,
            height: 360,
            seq,
            duration_ms,
            start: UNIX_EPOCH + Duration::from_millis(1_764_622_550_123 + seq as u64 * 2000),
            data: Bytes::from(vec![0u8; bytes]),
        }
    }

    /// `BANDWIDTH` is the peak segment bit rate (RFC 8216 §4.3.4.2; players pick variants by
    /// it), not the average, which goes in `AVERAGE-BANDWIDTH`.
    #[test]
    fn bandwidth_is_the_peak_and_the_average_is_separate() {
        let mut hls = HlsStore::new(6);
        hls.add(0, "r", seg(0, 2000, 100_000)); // 400 kbit/s
        hls.add(0, "r", seg(1, 2000, 300_000)); // 1200 kbit/s
        let master = hls.master_playlist("s").unwrap();
        assert!(master.contains("BANDWIDTH=1200000,AVERAGE-BANDWIDTH=800000,"), "{master}");
    }

    #[test]
    fn playlists_list_the_live_window_in_order() {
        let mut hls = HlsStore::new(3);
        for seq in [2, 0, 1, 3, 4] {
            hls.add(0, SOURCE, HlsSegment { width: 1280, height: 720, ..seg(seq, 2000, 500_000) });
            hls.add(0, "P360p30fps16x9", seg(seq, 2000, 100_000));
        }
        let media = hls.media_playlist("P360p30fps16x9").unwrap();
        assert!(media.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{media}");
        let listed: Vec<&str> = media.lines().filter(|l| l.ends_with(".ts")).collect();
        assert_eq!(listed, ["P360p30fps16x9/2.ts", "P360p30fps16x9/3.ts", "P360p30fps16x9/4.ts"]);
        assert!(media.contains("#EXT-X-TARGETDURATION:2\n"));
        assert!(!media.contains("#EXT-X-ENDLIST"), "a live playlist does not end: {media}");

        let master = hls.master_playlist("s1").unwrap();
        let source_at = master.find("s1/source.m3u8").unwrap();
        let p360_at = master.find("s1/P360p30fps16x9.m3u8").unwrap();
        assert!(source_at < p360_at);
        assert!(master.contains("RESOLUTION=640x360"));
        assert!(master.contains("BANDWIDTH=2000000,AVERAGE-BANDWIDTH=2000000,"), "{master}");

        // Late segments (0 and 1 finished after 2) are not listed: the playlist only grows.
        assert!(hls.segment(SOURCE, 2).is_some());
        assert!(hls.segment(SOURCE, 0).is_none());
        assert!(hls.media_playlist("nope").is_none());
    }

    #[test]
    fn the_media_sequence_counts_entries_across_gaps() {
        let mut hls = HlsStore::new(2);
        for seq in [0, 1, 3, 4, 5, 6, 7, 8] {
            hls.add(0, "r", seg(seq, 2000, 1));
        }
        // Held: the last 5 entries (4..=8); listed: 7 and 8, after six earlier entries
        // (0, 1, 3, 4, 5, 6), so the media sequence is 6 although the seq is 7.
        let media = hls.media_playlist("r").unwrap();
        assert!(media.contains("#EXT-X-MEDIA-SEQUENCE:6\n"), "{media}");
        assert!(media.ends_with("#EXTINF:2.000,\nr/8.ts\n"), "{media}");
        hls.add(0, "r", seg(9, 3500, 1));
        hls.add(0, "r", seg(10, 1000, 1));
        // The target duration only grows, and EXTINF is each segment's own duration.
        let media = hls.media_playlist("r").unwrap();
        assert!(media.contains("#EXT-X-TARGETDURATION:4\n"), "{media}");
        assert!(media.contains("#EXTINF:3.500,\nr/9.ts\n#EXT-X-PROGRAM-DATE-TIME:"), "{media}");
    }

    #[test]
    fn every_segment_has_its_wall_clock_time() {
        let mut hls = HlsStore::new(6);
        hls.add(0, "r", seg(0, 2000, 1));
        let media = hls.media_playlist("r").unwrap();
        // 1764622550123 ms since the epoch.
        assert!(
            media.contains("#EXT-X-PROGRAM-DATE-TIME:2025-12-01T20:55:50.123Z\n#EXTINF:2.000,\nr/0.ts\n"),
            "{media}"
        );
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }

    /// Segments pushed faster than real time (a burst, a VOD upload) still get program dates that
    /// agree with their durations, the same in every rendition; a restart starts from its own
    /// wall-clock time.
    #[test]
    fn program_dates_follow_the_durations_however_fast_segments_arrive() {
        let mut hls = HlsStore::new(6);
        let at = UNIX_EPOCH + Duration::from_secs(1_000_000);
        for (seq, dur) in [(0, 2000), (1, 1500), (2, 2000)] {
            for r in ["a", "b"] {
                // All three arrive at the same instant.
                hls.add(0, r, HlsSegment { start: at, ..seg(seq, dur, 1) });
            }
        }
        for r in ["a", "b"] {
            let media = hls.media_playlist(r).unwrap();
            let dates: Vec<&str> = media.lines().filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:")).collect();
            assert_eq!(dates, ["1970-01-12T13:46:40.000Z", "1970-01-12T13:46:42.000Z", "1970-01-12T13:46:43.500Z"]);
        }
        let run = hls.restart();
        let later = at + Duration::from_secs(3600);
        let seq = hls.arrive(run, 0).unwrap();
        hls.add(run, "a", HlsSegment { start: later, ..seg(seq, 2000, 1) });
        assert!(hls.media_playlist("a").unwrap().contains(
            "#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:1970-01-12T14:46:40.000Z"
        ));
    }

    #[test]
    fn the_master_playlist_names_codecs_and_frame_rate_in_a_stable_order() {
        let mut a = HlsStore::new(6);
        let mut b = HlsStore::new(6);
        let big = |s| HlsSegment { width: 1280, height: 720, ..seg(s, 2000, 10) };
        // The same renditions finishing in different orders.
        for (store, order) in [(&mut a, ["x", "w", SOURCE, "big"]), (&mut b, ["big", SOURCE, "w", "x"])] {
            for name in order {
                store.add(0, name, if name == "big" || name == SOURCE { big(0) } else { seg(0, 2000, 10) });
            }
        }
        assert_eq!(a.master_playlist("s"), b.master_playlist("s"));
        let names: Vec<String> = a.ordered().iter().map(|t| t.name.clone()).collect();
        assert_eq!(names, [SOURCE, "big", "w", "x"]);

        assert_eq!(a.codecs_unknown(&["w", "x", "new"]), ["w", "x", "new"]);
        a.set_codecs("w", "avc1.64001e,mp4a.40.2".into(), 30.0);
        assert_eq!(a.codecs_unknown(&["w", "x"]), ["x"]);
        let master = a.master_playlist("s").unwrap();
        assert!(
            master.contains(
                "RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",FRAME-RATE=30.000,NAME=\"w\"\ns/w.m3u8\n"
            ),
            "{master}"
        );
    }

    #[test]
    fn an_ended_stream_ends_its_playlists_and_a_restart_goes_on_after_a_discontinuity() {
        let mut hls = HlsStore::new(3);
        let run = 0;
        for pushed in 0..3 {
            let seq = hls.arrive(run, pushed).unwrap();
            assert_eq!(seq, pushed, "a first run keeps the pushed numbers");
            hls.add(run, "r", seg(seq, 2000, 1));
        }
        hls.end(run);
        let ended = hls.media_playlist("r").unwrap();
        assert!(ended.ends_with("r/2.ts\n#EXT-X-ENDLIST\n"), "{ended}");
        assert!(!hls.is_live());

        // The publisher comes back and numbers from 0 again.
        let run = hls.restart();
        assert!(hls.is_live());
        let first = hls.arrive(run, 0).unwrap();
        assert_eq!(first, 3, "the restart's segments follow the last one");
        hls.add(run, "r", seg(first, 2000, 1));
        let media = hls.media_playlist("r").unwrap();
        assert!(!media.contains("#EXT-X-ENDLIST"), "{media}");
        assert!(media.contains("r/2.ts\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:"), "{media}");
        assert!(media.contains("#EXT-X-MEDIA-SEQUENCE:1\n"), "the media sequence went on: {media}");

        // A late segment of the old run is not taken, and ending the old run does nothing.
        assert_eq!(hls.arrive(0, 3), None);
        hls.add(0, "r", seg(10, 2000, 1));
        hls.end(0);
        assert!(hls.is_live() && hls.segment("r", 10).is_none());

        // Once the discontinuity leaves the window it is counted.
        for pushed in 1..4 {
            let seq = hls.arrive(run, pushed).unwrap();
            hls.add(run, "r", seg(seq, 2000, 1));
        }
        for pushed in 4..8 {
            let seq = hls.arrive(run, pushed).unwrap();
            hls.add(run, "r", seg(seq, 2000, 1));
        }
        let media = hls.media_playlist("r").unwrap();
        assert!(media.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{media}");
        assert!(!media.contains("#EXT-X-DISCONTINUITY\n"), "{media}");
    }

    #[test]
    fn the_registry_keeps_ended_streams_for_the_retention_time() {
        let reg = HlsRegistry::default();
        assert_eq!(reg.start("a", 6), 0);
        reg.update("a", |s| s.add(0, "r", seg(0, 2000, 1)));
        reg.start("b", 6);
        reg.update("b", |s| s.end(0));
        let list = reg.list();
        assert_eq!(list.iter().map(|s| (s.id.as_str(), s.live)).collect::<Vec<_>>(), [("a", true), ("b", false)]);
        assert_eq!(list[0].renditions[0].name, "r");

        reg.sweep(Duration::from_secs(600), |_| true);
        assert!(reg.media("b", "r").is_none() && reg.list().len() == 2, "b is kept, though empty");
        reg.sweep(Duration::ZERO, |id| id == "a");
        assert_eq!(reg.list().len(), 1, "b is gone after its retention");
        // A stream whose session vanished without ending is ended by the sweep.
        reg.sweep(Duration::from_secs(600), |_| false);
        assert!(reg.media("a", "r").unwrap().ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(reg.start("a", 6), 1, "a start of a held stream is its next run");
    }

    #[test]
    fn finished_playlists_end() {
        let text = vod_playlist("a", &[(0, 2000), (1, 1500)], true);
        assert!(text.ends_with("#EXTINF:1.500,\na/1.ts\n#EXT-X-ENDLIST\n"), "{text}");
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"));
        let live = vod_playlist("a", &[(0, 2000)], false);
        assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !live.contains("ENDLIST"), "{live}");
    }
}

//! A stream's HLS output: the last segments of each rendition (the source included) and the
//! playlists that list them. Pure data, owned by the stream's `StreamSession`.

use std::collections::VecDeque;
use std::fmt::Write;

use bytes::Bytes;

/// The rendition name of the source segments.
pub const SOURCE: &str = "source";

#[derive(Debug, Clone)]
struct Segment {
    seq: i64,
    duration_ms: u64,
    data: Bytes,
}

#[derive(Debug, Clone)]
struct Track {
    name: String,
    width: u32,
    height: u32,
    segments: VecDeque<Segment>,
    /// The seq of the first segment ever added: the media sequence number of the first entry.
    base: i64,
    /// Entries dropped from the front so far; each one moves the media sequence on by one.
    dropped: i64,
    /// `#EXT-X-TARGETDURATION`, which must never change: the longest segment so far, seconds.
    target: u64,
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

/// The live window of one stream.
#[derive(Debug, Clone)]
pub struct HlsStore {
    /// Segments listed in each media playlist.
    window: usize,
    /// Segments kept per rendition: the window plus a few for players that lag behind.
    keep: usize,
    tracks: Vec<Track>,
}

impl HlsStore {
    pub fn new(window: usize) -> Self {
        HlsStore { window: window.max(1), keep: window.max(1) + 3, tracks: Vec::new() }
    }

    /// Add one rendition's segment (rendition [`SOURCE`] for the source). Live playlists are
    /// append-only: a segment that finishes after a later one of the same rendition (a retry)
    /// is not listed, since inserting it would renumber what players already saw.
    pub fn add(&mut self, rendition: &str, width: u32, height: u32, seq: i64, duration_ms: u64, data: Bytes) {
        let idx = match self.tracks.iter().position(|t| t.name == rendition) {
            Some(i) => i,
            None => {
                self.tracks.push(Track {
                    name: rendition.to_string(),
                    width,
                    height,
                    segments: VecDeque::new(),
                    base: seq.max(0),
                    dropped: 0,
                    target: 0,
                });
                self.tracks.len() - 1
            }
        };
        let track = &mut self.tracks[idx];
        if track.segments.back().is_some_and(|last| last.seq >= seq) {
            return;
        }
        track.width = width;
        track.height = height;
        track.target = track.target.max(duration_ms.div_ceil(1000)).max(1);
        track.segments.push_back(Segment { seq, duration_ms, data });
        while track.segments.len() > self.keep {
            track.segments.pop_front();
            track.dropped += 1;
        }
    }

    /// The master playlist: one variant per rendition, the source first.
    pub fn master_playlist(&self, stream: &str) -> Option<String> {
        if self.tracks.is_empty() {
            return None;
        }
        let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
        let mut tracks: Vec<&Track> = self.tracks.iter().collect();
        tracks.sort_by_key(|t| (t.name != SOURCE, std::cmp::Reverse(t.width * t.height)));
        for t in tracks {
            let _ = writeln!(
                out,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},NAME=\"{}\"\n{}/{}.m3u8",
                t.peak_bandwidth().max(1),
                t.average_bandwidth().max(1),
                t.width,
                t.height,
                t.name,
                stream,
                t.name
            );
        }
        Some(out)
    }

    /// The media playlist of a rendition: its last `window` segments.
    pub fn media_playlist(&self, rendition: &str) -> Option<String> {
        let track = self.tracks.iter().find(|t| t.name == rendition)?;
        let skip = track.segments.len().saturating_sub(self.window);
        let media_sequence = track.base + track.dropped + skip as i64;
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{media_sequence}\n",
            track.target
        );
        for s in track.segments.iter().skip(skip) {
            let _ = write!(out, "#EXTINF:{:.3},\n{rendition}/{}.ts\n", s.duration_ms as f64 / 1000.0, s.seq);
        }
        Some(out)
    }

    /// A segment of a rendition, while it is held.
    pub fn segment(&self, rendition: &str, seq: i64) -> Option<Bytes> {
        let track = self.tracks.iter().find(|t| t.name == rendition)?;
        track.segments.iter().find(|s| s.seq == seq).map(|s| s.data.clone())
    }

    /// Rendition names, the source included.
    pub fn renditions(&self) -> Vec<String> {
        self.tracks.iter().map(|t| t.name.clone()).collect()
    }
}

/// A finished recording's (VOD) media playlist listing `(seq, duration_ms)` segments as
/// `<rendition>/<seq>.ts`, relative to the playlist's own URL.
pub fn vod_playlist(rendition: &str, segments: &[(i64, u64)]) -> String {
    let target = segments.iter().map(|(_, d)| d.div_ceil(1000)).max().unwrap_or(2).max(1);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    );
    for (seq, duration_ms) in segments {
        let _ = write!(out, "#EXTINF:{:.3},\n{rendition}/{seq}.ts\n", *duration_ms as f64 / 1000.0);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `BANDWIDTH` is the peak segment bit rate (RFC 8216 §4.3.4.2; players pick variants by
    /// it), not the average, which goes in `AVERAGE-BANDWIDTH`.
    #[test]
    fn bandwidth_is_the_peak_and_the_average_is_separate() {
        let mut hls = HlsStore::new(6);
        hls.add("r", 640, 360, 0, 2000, Bytes::from(vec![0u8; 100_000])); // 400 kbit/s
        hls.add("r", 640, 360, 1, 2000, Bytes::from(vec![0u8; 300_000])); // 1200 kbit/s
        let master = hls.master_playlist("s").unwrap();
        assert!(master.contains("BANDWIDTH=1200000,AVERAGE-BANDWIDTH=800000,"), "{master}");
    }

    #[test]
    fn playlists_list_the_live_window_in_order() {
        let mut hls = HlsStore::new(3);
        for seq in [2, 0, 1, 3, 4] {
            hls.add(SOURCE, 1280, 720, seq, 2000, Bytes::from(vec![0u8; 500_000]));
            hls.add("P360p30fps16x9", 640, 360, seq, 2000, Bytes::from(vec![0u8; 100_000]));
        }
        let media = hls.media_playlist("P360p30fps16x9").unwrap();
        assert!(media.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{media}");
        let listed: Vec<&str> = media.lines().filter(|l| l.ends_with(".ts")).collect();
        assert_eq!(listed, ["P360p30fps16x9/2.ts", "P360p30fps16x9/3.ts", "P360p30fps16x9/4.ts"]);
        assert!(media.contains("#EXT-X-TARGETDURATION:2\n"));

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
            hls.add("r", 640, 360, seq, 2000, Bytes::from_static(b"x"));
        }
        // Held: the last 5 entries (4..=8); listed: 7 and 8, after six earlier entries
        // (0, 1, 3, 4, 5, 6), so the media sequence is 6 although the seq is 7.
        let media = hls.media_playlist("r").unwrap();
        assert!(media.contains("#EXT-X-MEDIA-SEQUENCE:6\n"), "{media}");
        assert!(media.ends_with("r/7.ts\n#EXTINF:2.000,\nr/8.ts\n"), "{media}");
        hls.add("r", 640, 360, 9, 3500, Bytes::from_static(b"x"));
        hls.add("r", 640, 360, 10, 1000, Bytes::from_static(b"x"));
        // The target duration only grows.
        assert!(hls.media_playlist("r").unwrap().contains("#EXT-X-TARGETDURATION:4\n"));
    }

    #[test]
    fn finished_playlists_end() {
        let text = vod_playlist("a", &[(0, 2000), (1, 1500)]);
        assert!(text.ends_with("#EXTINF:1.500,\na/1.ts\n#EXT-X-ENDLIST\n"), "{text}");
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"));
    }
}

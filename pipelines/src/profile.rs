//! Output profiles (renditions): go-livepeer's built-in presets and its custom JSON format.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::ProfileError;

/// H.264 profile of a rendition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum H264Profile {
    /// Whatever libx264 picks for the settings (High for 4:2:0 8-bit, with B-frames).
    #[default]
    EncoderDefault,
    /// Constrained Baseline (no B-frames, no CABAC).
    Baseline,
    /// Main profile.
    Main,
    /// High profile.
    High,
    /// lpms's "constrained high": High profile without B-frames.
    ConstrainedHigh,
}

impl H264Profile {
    /// The go-livepeer JSON spelling (`h264constrainedhigh`, ...); `""` for the encoder default.
    pub fn go_livepeer_name(self) -> &'static str {
        match self {
            H264Profile::EncoderDefault => "",
            H264Profile::Baseline => "h264baseline",
            H264Profile::Main => "h264main",
            H264Profile::High => "h264high",
            H264Profile::ConstrainedHigh => "h264constrainedhigh",
        }
    }

    /// The libx264 `profile` option, if one is forced.
    pub(crate) fn x264_profile(self) -> Option<&'static str> {
        match self {
            H264Profile::EncoderDefault => None,
            H264Profile::Baseline => Some("baseline"),
            H264Profile::Main => Some("main"),
            H264Profile::High | H264Profile::ConstrainedHigh => Some("high"),
        }
    }

    /// Whether B-frames must be disabled.
    pub(crate) fn no_b_frames(self) -> bool {
        matches!(self, H264Profile::Baseline | H264Profile::ConstrainedHigh)
    }

    fn parse(s: &str) -> Option<H264Profile> {
        let lower = s.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "" | "none" | "encoder_default" | "encoderdefault" | "default" => H264Profile::EncoderDefault,
            "h264baseline" | "baseline" | "h264constrainedbaseline" => H264Profile::Baseline,
            "h264main" | "main" => H264Profile::Main,
            "h264high" | "high" => H264Profile::High,
            "h264constrainedhigh" | "constrained_high" | "constrainedhigh" => H264Profile::ConstrainedHigh,
            _ => return None,
        })
    }
}

/// One output rendition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// Rendition name (unique within a list), e.g. `P360p30fps16x9` or `720p0`.
    pub name: String,
    /// Bounding box width: the output fits inside `width` x `height` (see [`Profile::output_size`]).
    pub width: u32,
    /// Bounding box height.
    pub height: u32,
    /// bits per second
    pub bitrate: u32,
    /// output frame rate numerator; 0 = keep the source's frame rate (passthrough)
    pub fps: u32,
    /// frame rate denominator (1 when unset)
    pub fps_den: u32,
    /// GOP length in milliseconds; 0 = encoder default (one keyframe at the segment start only is fine)
    pub gop_ms: u32,
    /// H.264 profile.
    pub profile: H264Profile,
}

/// Largest accepted bounding box side, a guard against absurd allocations.
pub const MAX_SIDE: u32 = 8192;
/// Accepted output frame rates (when not passthrough), frames per second.
pub const FPS_RANGE: std::ops::RangeInclusive<f64> = 1.0..=240.0;
/// Largest frame-rate numerator or denominator (they become C `int`s).
const MAX_FPS_TERM: u32 = 1_000_000;
/// Lowest accepted bitrate: libx264 takes whole kbit/s, and under 1000 bit/s it is asked for 0.
pub const MIN_BITRATE: u32 = 1_000;
/// Highest accepted bitrate (1 Gbit/s; above H.264's highest level, and FFmpeg's rate options are
/// C `int`s that end at 2^31 - 1).
pub const MAX_BITRATE: u32 = 1_000_000_000;
/// Longest accepted GOP.
pub const MAX_GOP_MS: u32 = 3_600_000;
/// Longest accepted rendition name.
pub const MAX_NAME_LEN: usize = 64;
/// The HLS name of the source rendition, which no profile may take.
pub const SOURCE_NAME: &str = "source";
/// Most renditions one segment may ask for (each is an encoder and a thread).
pub const MAX_PROFILES: usize = 16;
/// Most pixels a frame the renditions of one segment may have together (their boxes' areas
/// summed): one rendition of [`MAX_SIDE`] squared, or a 4K ladder many times over. An encoder's
/// memory grows with its frame size: 16 renditions of 8192×8192 asked of a 100 KB segment took
/// 9 GB before their deadline.
pub const MAX_TOTAL_AREA: u64 = MAX_SIDE as u64 * MAX_SIDE as u64;

impl Profile {
    /// Output size for a source of `src_w` x `src_h`: fits inside `width` x `height` keeping the
    /// source aspect ratio, both even (at least 2).
    pub fn output_size(&self, src_w: u32, src_h: u32) -> (u32, u32) {
        let box_w = floor_even(self.width);
        let box_h = floor_even(self.height);
        if src_w == 0 || src_h == 0 {
            return (box_w, box_h);
        }
        let (sw, sh, bw, bh) = (u64::from(src_w), u64::from(src_h), u64::from(box_w), u64::from(box_h));
        let (w, h) = if sw * bh <= bw * sh {
            // Height-limited: the source is narrower than the box.
            (round_even(sw * bh, sh), bh)
        } else {
            (bw, round_even(sh * bw, sw))
        };
        ((w.min(bw) as u32).max(2) & !1, (h.min(bh) as u32).max(2) & !1)
    }

    /// Target frame rate as a rational, `None` for passthrough.
    pub(crate) fn fps_rational(&self) -> Option<(u32, u32)> {
        (self.fps > 0).then(|| (self.fps, self.fps_den.max(1)))
    }

    /// Checks every field against what the encoder can take; the message names the field and
    /// the accepted range, not the profile. Every boundary runs it (config, wire, transcode),
    /// so a profile that passes never reaches FFmpeg with a value it refuses.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(format!("name must be 1 to {MAX_NAME_LEN} characters, got {}", name.len()));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) || name.starts_with('.')
        {
            return Err(format!("name {name:?} may hold only A-Z a-z 0-9 _ - . (and not start with .)"));
        }
        if name.eq_ignore_ascii_case(SOURCE_NAME) {
            return Err(format!("name {SOURCE_NAME:?} is the source rendition's"));
        }
        if !(2..=MAX_SIDE).contains(&self.width) || !(2..=MAX_SIDE).contains(&self.height) {
            return Err(format!("width and height must be 2 to {MAX_SIDE}, got {}x{}", self.width, self.height));
        }
        if !(MIN_BITRATE..=MAX_BITRATE).contains(&self.bitrate) {
            return Err(format!(
                "bitrate must be {MIN_BITRATE} to {MAX_BITRATE} bits per second, got {}",
                self.bitrate
            ));
        }
        if self.fps > 0 {
            if self.fps > MAX_FPS_TERM || !(1..=MAX_FPS_TERM).contains(&self.fps_den) {
                return Err(format!("fps and fps_den must be 1 to {MAX_FPS_TERM}, got {}/{}", self.fps, self.fps_den));
            }
            let rate = f64::from(self.fps) / f64::from(self.fps_den);
            if !FPS_RANGE.contains(&rate) {
                return Err(format!(
                    "frame rate must be {} to {} fps (or 0 for the source's), got {rate}",
                    FPS_RANGE.start(),
                    FPS_RANGE.end()
                ));
            }
        }
        if self.gop_ms > MAX_GOP_MS {
            return Err(format!("gop must be at most {MAX_GOP_MS} ms, got {}", self.gop_ms));
        }
        Ok(())
    }
}

/// Checks a whole rendition list: 1 to [`MAX_PROFILES`] profiles, each valid, names unique,
/// [`MAX_TOTAL_AREA`] pixels a frame at most in all.
pub fn validate_profiles(profiles: &[Profile]) -> Result<(), ProfileError> {
    if profiles.is_empty() || profiles.len() > MAX_PROFILES {
        return Err(ProfileError::Invalid(format!(
            "a segment asks for 1 to {MAX_PROFILES} renditions, not {}",
            profiles.len()
        )));
    }
    for (i, p) in profiles.iter().enumerate() {
        p.validate().map_err(|m| ProfileError::Invalid(format!("profile {:?}: {m}", p.name)))?;
        if profiles[..i].iter().any(|q| q.name == p.name) {
            return Err(ProfileError::Invalid(format!("profile {:?} is listed twice", p.name)));
        }
    }
    let area = total_area(profiles);
    if area > MAX_TOTAL_AREA {
        return Err(ProfileError::Invalid(format!(
            "the renditions ask for {area} pixels a frame in all, more than {MAX_TOTAL_AREA}"
        )));
    }
    Ok(())
}

/// The renditions' boxes' areas, summed.
pub fn total_area(profiles: &[Profile]) -> u64 {
    profiles.iter().map(|p| u64::from(p.width) * u64::from(p.height)).sum()
}

/// `num / den` rounded to the nearest even integer.
fn round_even(num: u64, den: u64) -> u64 {
    // round(num / den / 2) * 2, in integers.
    (num + den) / (2 * den) * 2
}

fn floor_even(v: u32) -> u32 {
    (v & !1).max(2)
}

/// (name, width, height, kbps, fps) of lpms's `ffmpeg/videoprofile.go` presets.
const PRESETS: &[(&str, u32, u32, u32, u32)] = &[
    ("P720p60fps16x9", 1280, 720, 6000, 60),
    ("P720p30fps16x9", 1280, 720, 4000, 30),
    ("P720p25fps16x9", 1280, 720, 3500, 25),
    ("P720p30fps4x3", 960, 720, 3500, 30),
    ("P576p30fps16x9", 1024, 576, 1500, 30),
    ("P576p25fps16x9", 1024, 576, 1500, 25),
    ("P360p30fps16x9", 640, 360, 1200, 30),
    ("P360p25fps16x9", 640, 360, 1000, 25),
    ("P360p30fps4x3", 480, 360, 1000, 30),
    ("P240p30fps16x9", 426, 240, 600, 30),
    ("P240p25fps16x9", 426, 240, 600, 25),
    ("P240p30fps4x3", 320, 240, 600, 30),
    ("P144p30fps16x9", 256, 144, 400, 30),
    ("P144p25fps16x9", 256, 144, 400, 25),
];

/// A go-livepeer preset by name (`P720p30fps16x9`, ...). Exact match first, then
/// case-insensitive.
pub fn preset(name: &str) -> Option<Profile> {
    let name = name.trim();
    let found =
        PRESETS.iter().find(|p| p.0 == name).or_else(|| PRESETS.iter().find(|p| p.0.eq_ignore_ascii_case(name)))?;
    let &(name, width, height, kbps, fps) = found;
    Some(Profile {
        name: name.to_string(),
        width,
        height,
        bitrate: kbps * 1000,
        fps,
        fps_den: 1,
        gop_ms: 0,
        profile: H264Profile::EncoderDefault,
    })
}

/// Names of all presets, in lpms's order.
pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.0).collect()
}

/// Resolves go-livepeer's `-transcodingOptions`: each entry is a preset name (entries may also
/// hold comma-separated names), or a single entry that names a JSON file (ends with `.json`,
/// or is an existing file) holding the whole list.
pub fn profiles_from_names(names: &[String]) -> Result<Vec<Profile>, ProfileError> {
    let entries: Vec<&str> = names.iter().flat_map(|n| n.split(',')).map(str::trim).filter(|n| !n.is_empty()).collect();
    if let [single] = entries.as_slice() {
        let path = Path::new(single);
        if preset(single).is_none() && (single.to_ascii_lowercase().ends_with(".json") || path.is_file()) {
            return profiles_from_json_file(path);
        }
    }
    if entries.is_empty() {
        return Err(ProfileError::Invalid("the profile list is empty".into()));
    }
    let mut out: Vec<Profile> = Vec::with_capacity(entries.len());
    for name in entries {
        let p = preset(name).ok_or_else(|| ProfileError::UnknownPreset(name.to_string()))?;
        if out.iter().any(|q| q.name == p.name) {
            return Err(ProfileError::Invalid(format!("profile {:?} is listed twice", p.name)));
        }
        out.push(p);
    }
    Ok(out)
}

/// Reads a JSON profile list from a file (see [`profiles_from_json`]).
pub fn profiles_from_json_file(path: &Path) -> Result<Vec<Profile>, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError::Io(format!("{}: {e}", path.display())))?;
    profiles_from_json(&text).map_err(|e| match e {
        ProfileError::Json(m) => ProfileError::Json(format!("{}: {m}", path.display())),
        ProfileError::Invalid(m) => ProfileError::Invalid(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// Parses a JSON profile list.
///
/// Accepts go-livepeer's `-transcodingOptions` file format (a JSON array, or an object with a
/// `profiles` array):
///
/// ```json
/// [{"name":"720p0","width":1280,"height":720,"bitrate":3000000,"fps":0,"gop":"1","profile":"h264constrainedhigh"}]
/// ```
///
/// * `bitrate`: bits per second, a number or a numeric string (`"3000000"`, `"3000k"`, `"3M"`);
/// * `fps` absent or 0 = passthrough; `fpsDen` (or `fps_den`) optional;
/// * `gop`: seconds as a string or number (`"1"`, `"2.5"`), absent or `"0"` = encoder default;
///   `gop_ms` (milliseconds) is accepted too. `"intra"` (all-keyframe) is not supported;
/// * `profile`: `h264baseline`, `h264main`, `h264high`, `h264constrainedhigh` (case-insensitive),
///   or the snake_case [`H264Profile`] names; absent = encoder default;
/// * `encoder`, if present, must be H.264; other go-livepeer keys are ignored.
///
/// The serde form of [`Profile`] is a subset of this and round-trips.
pub fn profiles_from_json(json: &str) -> Result<Vec<Profile>, ProfileError> {
    let value: Value = serde_json::from_str(json).map_err(|e| ProfileError::Json(e.to_string()))?;
    let list = match &value {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("profiles") {
            Some(Value::Array(a)) => a,
            _ => {
                return Err(ProfileError::Json(
                    "expected a JSON array of profiles (or an object with a \"profiles\" array)".into(),
                ));
            }
        },
        _ => {
            return Err(ProfileError::Json("expected a JSON array of profiles".into()));
        }
    };
    if list.is_empty() {
        return Err(ProfileError::Invalid("the profile list is empty".into()));
    }
    let mut out: Vec<Profile> = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let label = entry_label(i, entry);
        let obj = entry.as_object().ok_or_else(|| ProfileError::Json(format!("{label}: expected a JSON object")))?;
        let p = parse_entry(obj).map_err(|m| ProfileError::Invalid(format!("{label}: {m}")))?;
        if out.iter().any(|q| q.name == p.name) {
            return Err(ProfileError::Invalid(format!("{label}: the name {:?} is used twice", p.name)));
        }
        out.push(p);
    }
    Ok(out)
}

fn entry_label(i: usize, entry: &Value) -> String {
    match entry.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => format!("profile #{} ({n:?})", i + 1),
        _ => format!("profile #{}", i + 1),
    }
}

fn parse_entry(obj: &Map<String, Value>) -> Result<Profile, String> {
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err("\"name\" is missing or empty".into());
        }
        Some(other) => return Err(format!("\"name\" must be a string, got {other}")),
    };
    let width = get_uint(obj, &["width"])?.ok_or("\"width\" is missing")?;
    let height = get_uint(obj, &["height"])?.ok_or("\"height\" is missing")?;
    let bitrate = get_bitrate(obj)?.ok_or("\"bitrate\" is missing")?;
    let fps = get_uint(obj, &["fps"])?.unwrap_or(0);
    let fps_den = match get_uint(obj, &["fpsDen", "fps_den"])? {
        None | Some(0) => 1,
        Some(d) => d,
    };
    let gop_ms = get_gop_ms(obj)?;
    let profile = match obj.get("profile") {
        None | Some(Value::Null) => H264Profile::EncoderDefault,
        Some(Value::String(s)) => H264Profile::parse(s).ok_or_else(|| {
            format!("unknown \"profile\" {s:?}: expected h264baseline, h264main, h264high or h264constrainedhigh")
        })?,
        Some(other) => return Err(format!("\"profile\" must be a string, got {other}")),
    };
    match obj.get("encoder") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if matches!(s.to_ascii_lowercase().as_str(), "" | "h264") => {}
        Some(other) => {
            return Err(format!("unsupported \"encoder\" {other}: only H.264 is supported"));
        }
    }
    let to_u32 = |v: u64, what: &str| -> Result<u32, String> {
        u32::try_from(v).map_err(|_| format!("\"{what}\" {v} is too large"))
    };
    let p = Profile {
        name,
        width: to_u32(width, "width")?,
        height: to_u32(height, "height")?,
        bitrate: to_u32(bitrate, "bitrate")?,
        fps: to_u32(fps, "fps")?,
        fps_den: to_u32(fps_den, "fpsDen")?,
        gop_ms,
        profile,
    };
    p.validate()?;
    Ok(p)
}

/// A non-negative integer under any of `keys`: a JSON number or a numeric string.
fn get_uint(obj: &Map<String, Value>, keys: &[&str]) -> Result<Option<u64>, String> {
    let Some((key, v)) = keys.iter().find_map(|k| obj.get(*k).map(|v| (*k, v))) else {
        return Ok(None);
    };
    let bad = || format!("\"{key}\" must be a non-negative integer, got {v}");
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else {
                match n.as_f64() {
                    Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 4e9 => Ok(Some(f as u64)),
                    _ => Err(bad()),
                }
            }
        }
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s.trim().parse::<u64>().map(Some).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn get_bitrate(obj: &Map<String, Value>) -> Result<Option<u64>, String> {
    match obj.get("bitrate") {
        Some(Value::String(s)) => {
            let t = s.trim();
            let (digits, mult) = match t.char_indices().last() {
                Some((i, 'k' | 'K')) => (&t[..i], 1_000.0),
                Some((i, 'm' | 'M')) => (&t[..i], 1_000_000.0),
                _ => (t, 1.0),
            };
            let v: f64 = digits
                .trim()
                .parse()
                .map_err(|_| format!("\"bitrate\" must be a number of bits per second, got {s:?}"))?;
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("\"bitrate\" must be non-negative, got {s:?}"));
            }
            Ok(Some((v * mult).round() as u64))
        }
        _ => get_uint(obj, &["bitrate"]),
    }
}

fn get_gop_ms(obj: &Map<String, Value>) -> Result<u32, String> {
    if let Some(ms) = get_uint(obj, &["gop_ms", "gopMs"])? {
        return u32::try_from(ms).map_err(|_| format!("\"gop_ms\" {ms} is too large"));
    }
    let secs: f64 = match obj.get("gop") {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(-1.0),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(0);
            }
            if t.eq_ignore_ascii_case("intra") {
                return Err(
                    "\"gop\": \"intra\" (all-keyframe output) is not supported; give a GOP length in seconds".into()
                );
            }
            t.parse().map_err(|_| format!("\"gop\" must be a number of seconds, got {s:?}"))?
        }
        Some(other) => return Err(format!("\"gop\" must be a number of seconds, got {other}")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("\"gop\" must be a non-negative number of seconds, got {secs}"));
    }
    if secs > 3600.0 {
        return Err(format!("\"gop\" of {secs} s is too long"));
    }
    Ok((secs * 1000.0).round() as u32)
}

/// The wire's spelling of a profile: the same fields, encoded by lp-wire. A profile read from the
/// wire is validated ([`Profile::validate`]) before use.
impl From<&lp_wire::VideoProfile> for Profile {
    fn from(p: &lp_wire::VideoProfile) -> Profile {
        use lp_wire::H264Profile as W;
        let profile = match p.profile {
            W::EncoderDefault => H264Profile::EncoderDefault,
            W::Baseline => H264Profile::Baseline,
            W::Main => H264Profile::Main,
            W::High => H264Profile::High,
            W::ConstrainedHigh => H264Profile::ConstrainedHigh,
        };
        let lp_wire::VideoProfile { name, width, height, bitrate, fps, fps_den, gop_ms, .. } = p.clone();
        Profile { name, width, height, bitrate, fps, fps_den, gop_ms, profile }
    }
}

impl From<&Profile> for lp_wire::VideoProfile {
    fn from(p: &Profile) -> lp_wire::VideoProfile {
        use lp_wire::H264Profile as W;
        let profile = match p.profile {
            H264Profile::EncoderDefault => W::EncoderDefault,
            H264Profile::Baseline => W::Baseline,
            H264Profile::Main => W::Main,
            H264Profile::High => W::High,
            H264Profile::ConstrainedHigh => W::ConstrainedHigh,
        };
        let Profile { name, width, height, bitrate, fps, fps_den, gop_ms, .. } = p.clone();
        lp_wire::VideoProfile { name, width, height, bitrate, fps, fps_den, gop_ms, profile }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(w: u32, h: u32) -> Profile {
        Profile {
            name: "t".into(),
            width: w,
            height: h,
            bitrate: 1,
            fps: 0,
            fps_den: 1,
            gop_ms: 0,
            profile: H264Profile::EncoderDefault,
        }
    }

    #[test]
    fn output_size_keeps_aspect() {
        assert_eq!(p(640, 360).output_size(1920, 1080), (640, 360));
        assert_eq!(p(426, 240).output_size(1920, 1080), (426, 240));
        assert_eq!(p(854, 480).output_size(1920, 1080), (854, 480));
        assert_eq!(p(1280, 720).output_size(1280, 720), (1280, 720));
        // 4:3 into a 16:9 box: height-limited.
        assert_eq!(p(640, 360).output_size(640, 480), (480, 360));
        // 9:16 portrait into a 16:9 box.
        let (w, h) = p(1280, 720).output_size(1080, 1920);
        assert_eq!(h, 720);
        assert_eq!(w % 2, 0);
        assert!(w <= 1280 && (w as i64 - 405).abs() <= 1);
        // Odd boxes and odd sources still give even sizes inside the box.
        let (w, h) = p(427, 241).output_size(1001, 999);
        assert!(w % 2 == 0 && h % 2 == 0 && w <= 427 && h <= 241);
        assert_eq!(p(2, 2).output_size(0, 0), (2, 2));
        assert_eq!(p(3, 3).output_size(10000, 2), (2, 2));
    }

    #[test]
    fn every_preset_and_h264_profile_survives_the_wire() {
        let mut all =
            crate::profiles_from_names(&crate::preset_names().iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        for (i, h) in [H264Profile::Baseline, H264Profile::Main, H264Profile::High, H264Profile::ConstrainedHigh]
            .into_iter()
            .enumerate()
        {
            all.push(Profile {
                name: format!("h{i}"),
                profile: h,
                gop_ms: 2000,
                fps: 30000,
                fps_den: 1001,
                ..p(640, 360)
            });
        }
        for profile in all {
            assert_eq!(Profile::from(&lp_wire::VideoProfile::from(&profile)), profile);
        }
    }

    /// One rendition of the largest box is taken, and a 4K ladder; a second large one past
    /// the total area is refused, naming the sum.
    #[test]
    fn the_renditions_total_area_is_bounded() {
        let named = |name: &str, w, h| Profile { name: name.into(), bitrate: 1_000_000, ..p(w, h) };
        assert!(validate_profiles(&[named("max", MAX_SIDE, MAX_SIDE)]).is_ok());
        let ladder = [named("2160p", 3840, 2160), named("1080p", 1920, 1080), named("720p", 1280, 720)];
        assert!(validate_profiles(&ladder).is_ok());
        let err = validate_profiles(&[named("a", MAX_SIDE, MAX_SIDE), named("b", 2, 2)]).unwrap_err();
        assert!(err.to_string().contains("67108868 pixels a frame in all, more than 67108864"), "{err}");
    }

    #[test]
    fn round_even_rounds() {
        assert_eq!(round_even(8533, 10), 854);
        assert_eq!(round_even(2396, 10), 240);
        assert_eq!(round_even(1, 10), 0);
    }
}

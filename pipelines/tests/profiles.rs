//! Presets and the go-livepeer JSON profile format.

use lp_pipelines::{
    H264Profile, Profile, ProfileError, preset, preset_names, profiles_from_json, profiles_from_json_file,
    profiles_from_names,
};

#[test]
fn presets_resolve() {
    let p = preset("P720p30fps16x9").unwrap();
    assert_eq!(
        p,
        Profile {
            name: "P720p30fps16x9".into(),
            width: 1280,
            height: 720,
            bitrate: 4_000_000,
            fps: 30,
            fps_den: 1,
            gop_ms: 0,
            profile: H264Profile::EncoderDefault,
        }
    );
    let p = preset("P240p30fps16x9").unwrap();
    assert_eq!((p.width, p.height, p.bitrate, p.fps), (426, 240, 600_000, 30));
    let p = preset("P720p30fps4x3").unwrap();
    assert_eq!((p.width, p.height, p.bitrate), (960, 720, 3_500_000));
    let p = preset("P144p25fps16x9").unwrap();
    assert_eq!((p.width, p.height, p.bitrate, p.fps), (256, 144, 400_000, 25));
    assert_eq!(preset_names().len(), 14);
    for n in preset_names() {
        let p = preset(n).unwrap();
        assert_eq!(p.name, n);
        assert_eq!(p.fps_den, 1);
    }
    assert!(preset("P999p").is_none());
}

#[test]
fn names_resolve_in_order() {
    let names = vec!["P240p30fps16x9".to_string(), "P360p30fps16x9".to_string()];
    let ps = profiles_from_names(&names).unwrap();
    assert_eq!(ps.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["P240p30fps16x9", "P360p30fps16x9"]);
    // go-livepeer's comma-separated form in one entry.
    let ps = profiles_from_names(&["P144p30fps16x9, P720p60fps16x9".to_string()]).unwrap();
    assert_eq!(ps.len(), 2);
    assert_eq!(ps[1].fps, 60);
}

#[test]
fn unknown_preset_lists_known_ones() {
    let err = profiles_from_names(&["P240p30fps16x9".into(), "P999p".into()]).unwrap_err();
    assert_eq!(err, ProfileError::UnknownPreset("P999p".into()));
    let msg = err.to_string();
    assert!(msg.contains("unknown profile \"P999p\""), "{msg}");
    assert!(msg.contains("P720p30fps16x9"), "{msg}");
    assert!(msg.contains("P144p25fps16x9"), "{msg}");

    assert!(matches!(profiles_from_names(&[]), Err(ProfileError::Invalid(_))));
    assert!(matches!(
        profiles_from_names(&["P240p30fps16x9".into(), "P240p30fps16x9".into()]),
        Err(ProfileError::Invalid(_))
    ));
}

const LADDER: &str = r#"[
  {"name":"720p0","width":1280,"height":720,"bitrate":3000000,"fps":0,"gop":"1","profile":"h264constrainedhigh"},
  {"name":"480p0","width":854,"height":480,"bitrate":"1600000","fps":30,"fpsDen":1,"gop":"2.5","profile":"H264Main"},
  {"name":"360p0","width":640,"height":360,"bitrate":800000,"encoder":"h264","colorDepth":8},
  {"name":"240p0","width":426,"height":240,"bitrate":250000,"fps":30000,"fpsDen":1001,"profile":"h264baseline","gop":"0"}
]"#;

#[test]
fn go_livepeer_json_parses() {
    let ps = profiles_from_json(LADDER).unwrap();
    assert_eq!(ps.len(), 4);
    assert_eq!(
        ps[0],
        Profile {
            name: "720p0".into(),
            width: 1280,
            height: 720,
            bitrate: 3_000_000,
            fps: 0,
            fps_den: 1,
            gop_ms: 1000,
            profile: H264Profile::ConstrainedHigh,
        }
    );
    assert_eq!(ps[1].bitrate, 1_600_000);
    assert_eq!((ps[1].fps, ps[1].fps_den, ps[1].gop_ms), (30, 1, 2500));
    assert_eq!(ps[1].profile, H264Profile::Main);
    assert_eq!(ps[2].profile, H264Profile::EncoderDefault);
    assert_eq!((ps[2].fps, ps[2].gop_ms), (0, 0));
    assert_eq!((ps[3].fps, ps[3].fps_den), (30000, 1001));
    assert_eq!(ps[3].profile, H264Profile::Baseline);

    // Wrapped in an object, and our own serde form round-trips.
    let wrapped = format!("{{\"profiles\": {LADDER}}}");
    assert_eq!(profiles_from_json(&wrapped).unwrap(), ps);
    let ours = serde_json::to_string(&ps).unwrap();
    assert_eq!(profiles_from_json(&ours).unwrap(), ps);
}

#[test]
fn bad_json_and_entries_name_the_entry() {
    let err = profiles_from_json("[{").unwrap_err();
    assert!(matches!(err, ProfileError::Json(_)), "{err:?}");
    assert!(matches!(profiles_from_json("{\"a\":1}"), Err(ProfileError::Json(_))));
    assert!(matches!(profiles_from_json("[]"), Err(ProfileError::Invalid(_))));

    let cases = [
        (r#"[{"name":"a","width":640,"height":360,"bitrate":0}]"#, "bitrate"),
        (r#"[{"name":"a","width":640,"height":360}]"#, "bitrate"),
        (r#"[{"name":"a","width":0,"height":360,"bitrate":1000}]"#, "width"),
        (r#"[{"name":"a","width":-2,"height":360,"bitrate":1000}]"#, "width"),
        (r#"[{"name":"a","width":640,"height":360,"bitrate":"lots"}]"#, "bitrate"),
        (r#"[{"name":"a","width":640,"height":360,"bitrate":1000,"profile":"h265main"}]"#, "profile"),
        (r#"[{"name":"a","width":640,"height":360,"bitrate":1000,"gop":"intra"}]"#, "intra"),
        (r#"[{"name":"a","width":640,"height":360,"bitrate":1000,"gop":"x"}]"#, "gop"),
        (r#"[{"name":"a","width":640,"height":360,"bitrate":1000,"encoder":"hevc"}]"#, "encoder"),
        (r#"[{"width":640,"height":360,"bitrate":1000}]"#, "name"),
    ];
    for (json, word) in cases {
        let err = profiles_from_json(json).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ProfileError::Invalid(_)), "{json}: {err:?}");
        assert!(msg.contains("profile #1"), "{json}: {msg}");
        assert!(msg.contains(word), "{json}: {msg}");
    }

    // The second entry is named in the error.
    let json = r#"[{"name":"ok","width":640,"height":360,"bitrate":1000},
                   {"name":"bad","width":640,"height":360,"bitrate":-5}]"#;
    let msg = profiles_from_json(json).unwrap_err().to_string();
    assert!(msg.contains("profile #2 (\"bad\")"), "{msg}");

    // Duplicate names.
    let json = r#"[{"name":"x","width":640,"height":360,"bitrate":1000},
                   {"name":"x","width":320,"height":180,"bitrate":1000}]"#;
    let msg = profiles_from_json(json).unwrap_err().to_string();
    assert!(msg.contains("twice"), "{msg}");

    // Not an object.
    let msg = profiles_from_json("[1]").unwrap_err().to_string();
    assert!(msg.contains("profile #1"), "{msg}");
}

#[test]
fn json_file_via_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ladder.json");
    std::fs::write(&path, LADDER).unwrap();
    let from_file = profiles_from_json_file(&path).unwrap();
    assert_eq!(from_file.len(), 4);
    let via_names = profiles_from_names(&[path.to_str().unwrap().to_string()]).unwrap();
    assert_eq!(via_names, from_file);

    let missing = dir.path().join("missing.json");
    let err = profiles_from_names(&[missing.to_str().unwrap().to_string()]).unwrap_err();
    assert!(matches!(err, ProfileError::Io(_)), "{err:?}");
    assert!(err.to_string().contains("missing.json"));

    std::fs::write(&path, "not json").unwrap();
    let err = profiles_from_json_file(&path).unwrap_err();
    assert!(matches!(err, ProfileError::Json(_)), "{err:?}");
}

#[test]
fn output_size_keeps_aspect_ratio() {
    let p360 = preset("P360p30fps16x9").unwrap();
    let p240 = preset("P240p30fps16x9").unwrap();
    let p720 = preset("P720p30fps16x9").unwrap();
    // 16:9 into 16:9: the profile size.
    assert_eq!(p360.output_size(1920, 1080), (640, 360));
    assert_eq!(p360.output_size(1280, 720), (640, 360));
    assert_eq!(p240.output_size(1920, 1080), (426, 240));
    assert_eq!(p720.output_size(1920, 1080), (1280, 720));
    // 4:3 into a 16:9 box: fits inside, even.
    let (w, h) = p360.output_size(1440, 1080);
    assert_eq!((w, h), (480, 360));
    let (w, h) = p240.output_size(640, 480);
    assert_eq!(h, 240);
    assert_eq!(w, 320);
    // Odd-ish ratios stay even and inside.
    for (sw, sh) in [(1000, 1001), (1921, 1079), (720, 1280), (7, 3)] {
        let (w, h) = p240.output_size(sw, sh);
        assert!(w % 2 == 0 && h % 2 == 0, "{sw}x{sh} -> {w}x{h}");
        assert!(w <= 426 && h <= 240, "{sw}x{sh} -> {w}x{h}");
        let src = sw as f64 / sh as f64;
        let out = w as f64 / h as f64;
        assert!((src - out).abs() / src < 0.05, "{sw}x{sh} -> {w}x{h}");
    }
}

/// Every field is checked against what libx264 and the HLS output can take. Bitrates under
/// 1000 bit/s or from 2^31 up used to reach FFmpeg and crash the process (issue: remote crash).
#[test]
fn validate_refuses_what_the_encoder_cannot_take() {
    let good = preset("P360p30fps16x9").unwrap();
    good.validate().unwrap();
    let with = |f: &dyn Fn(&mut Profile)| {
        let mut p = good.clone();
        f(&mut p);
        p
    };
    let cases: Vec<(Profile, &str)> = vec![
        (with(&|p| p.bitrate = 999), "bitrate"),
        (with(&|p| p.bitrate = 1), "bitrate"),
        (with(&|p| p.bitrate = 0), "bitrate"),
        (with(&|p| p.bitrate = 1 << 31), "bitrate"),
        (with(&|p| p.bitrate = u32::MAX), "bitrate"),
        (with(&|p| p.width = 1), "width"),
        (with(&|p| p.height = 8194), "height"),
        (with(&|p| (p.fps, p.fps_den) = (u32::MAX, u32::MAX)), "fps"),
        (with(&|p| (p.fps, p.fps_den) = (30, 0)), "fps"),
        (with(&|p| (p.fps, p.fps_den) = (1, 1000)), "frame rate"),
        (with(&|p| p.fps = 241), "frame rate"),
        (with(&|p| p.gop_ms = u32::MAX), "gop"),
        (with(&|p| p.name = String::new()), "name"),
        (with(&|p| p.name = "a/../b".into()), "name"),
        (with(&|p| p.name = "x\r\nSet-Cookie: a".into()), "name"),
        (with(&|p| p.name = "source".into()), "source"),
        (with(&|p| p.name = "n".repeat(65)), "name"),
    ];
    for (p, word) in cases {
        let msg = p.validate().expect_err(&format!("{p:?} must be refused"));
        assert!(msg.contains(word), "{p:?}: {msg}");
        let err = lp_pipelines::validate_profiles(std::slice::from_ref(&p)).unwrap_err();
        assert!(err.to_string().contains(word), "{err}");
    }
    // Bounds themselves are accepted.
    with(&|p| p.bitrate = 1000).validate().unwrap();
    with(&|p| p.bitrate = 1_000_000_000).validate().unwrap();
    with(&|p| (p.fps, p.fps_den) = (30000, 1001)).validate().unwrap();

    // Lists: empty, too long, duplicate names.
    assert!(lp_pipelines::validate_profiles(&[]).is_err());
    let many: Vec<Profile> = (0..17).map(|i| with(&|p| p.name = format!("r{i}"))).collect();
    assert!(lp_pipelines::validate_profiles(&many).unwrap_err().to_string().contains("16"));
    assert!(lp_pipelines::validate_profiles(&[good.clone(), good.clone()]).unwrap_err().to_string().contains("twice"));
    // Every preset passes.
    for name in preset_names() {
        preset(name).unwrap().validate().unwrap();
    }
    // The JSON path refuses the same bitrates.
    let err = profiles_from_json(r#"[{"name":"a","width":640,"height":360,"bitrate":999}]"#).unwrap_err();
    assert!(err.to_string().contains("bitrate"), "{err}");
    let err = profiles_from_json(r#"[{"name":"a","width":640,"height":360,"bitrate":"2147483648"}]"#).unwrap_err();
    assert!(err.to_string().contains("bitrate"), "{err}");
}

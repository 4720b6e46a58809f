//! Loading, defaults, environment overrides and validation of `lp_config::Config`.

use std::net::SocketAddr;
use std::path::PathBuf;

use lp_config::{
    AdminConfig, Config, ConfigError, ConfigErrors, GatewayConfig, LogConfig, LogFormat, MaxSessions, ModelConfig,
    Network, OrchestratorConfig, TranscoderConfig, Wei,
};

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml_str(text, &[])
}

fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_toml_str(text, &env)
}

/// The errors of an invalid config.
fn errors(result: Result<Config, ConfigErrors>) -> Vec<ConfigError> {
    match result {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(ConfigErrors(errors)) => {
            assert!(!errors.is_empty());
            errors
        }
    }
}

/// The single error of an invalid config, checked to be about `key` and to contain `needle`.
#[track_caller]
fn single_error(result: Result<Config, ConfigErrors>, key: &str, needle: &str) -> ConfigError {
    let errors = errors(result);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let error = errors.into_iter().next().unwrap();
    assert_eq!(error.key, key, "{error}");
    assert!(error.message.contains(needle), "{error:?} should contain {needle:?}");
    error
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn wei(n: u64) -> Wei {
    Wei::from(n)
}

// ---- defaults -------------------------------------------------------------------------------

#[test]
fn empty_file_gives_defaults_and_no_role() {
    let config = parse("").unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.network, Network::Offchain);
    assert_eq!(config.data_dir, PathBuf::from(".livepeer"));
    assert_eq!(config.log.format, LogFormat::Pretty);
    assert_eq!(config.log.level, "info");
    assert_eq!(config.gateway, None);
    assert_eq!(config.orchestrator, None);
    assert_eq!(config.transcoder, None);
    assert_eq!(config.admin.addr, addr("127.0.0.1:7935"));
}

#[test]
fn empty_sections_enable_roles_with_defaults() {
    let config = parse("[gateway]\n[orchestrator]\n[log]\n[admin]\n").unwrap();
    let gateway = config.gateway.unwrap();
    assert_eq!(gateway, GatewayConfig::default());
    assert_eq!(gateway.http_addr, addr("127.0.0.1:9935"));
    assert!(gateway.orchestrators.is_empty());
    assert_eq!(gateway.profiles, ["P240p30fps16x9", "P360p30fps16x9"]);
    assert_eq!(gateway.profiles_file, None);
    assert_eq!(gateway.max_segment_bytes, 300_000_000);
    assert_eq!(gateway.max_attempts, 3);
    assert_eq!(gateway.stream_idle_timeout_secs, 60);
    assert_eq!(gateway.max_streams, 100);
    assert_eq!(gateway.segment_queue, 4);
    assert_eq!(gateway.hls_window, 6);
    assert_eq!(gateway.max_price_per_unit, wei(0));
    assert_eq!(gateway.pixels_per_unit, 1);

    let orchestrator = config.orchestrator.unwrap();
    assert_eq!(orchestrator, OrchestratorConfig::default());
    assert_eq!(orchestrator.service_addr, addr("127.0.0.1:8935"));
    assert_eq!(orchestrator.service_uri, None);
    assert!(orchestrator.tls);
    assert_eq!(orchestrator.max_sessions, MaxSessions::Fixed(10));
    assert_eq!(orchestrator.secret_file, None);
    assert_eq!(orchestrator.price_per_unit, wei(0));
    assert_eq!(orchestrator.pixels_per_unit, 1);
    assert_eq!(orchestrator.ticket_ev, wei(8_000_000_000));
    assert!(orchestrator.models.is_empty());
    assert!(orchestrator.transcode);
    assert_eq!(orchestrator.capacity, 1);
    assert_eq!(orchestrator.x264_preset, "veryfast");
    assert_eq!(orchestrator.session_idle_timeout_secs, 70);

    assert_eq!(config.log, LogConfig::default());
    assert_eq!(config.admin, AdminConfig::default());
}

#[test]
fn transcoder_defaults() {
    let config = parse("[transcoder]\norchestrator = \"https://10.0.0.1:8935\"\nsecret_file = \"s.txt\"\n").unwrap();
    assert_eq!(
        config.transcoder,
        Some(TranscoderConfig {
            orchestrator: "https://10.0.0.1:8935".to_string(),
            secret_file: PathBuf::from("s.txt"),
            capacity: 1,
            x264_preset: "veryfast".to_string(),
            video_decoder: "cpu".to_string(),
        })
    );
}

// ---- round trip -----------------------------------------------------------------------------

const FULL: &str = r#"
network = "offchain"
data_dir = "/var/lib/livepeer"

[log]
format = "json"
level = "lp_actors=debug,info"

[gateway]
http_addr = "0.0.0.0:19935"
orchestrators = ["https://o1.example:8935", "http://127.0.0.1:8936"]
profiles = ["P720p30fps16x9"]
profiles_file = "profiles.json"
max_segment_bytes = 1000000
max_attempts = 10
stream_idle_timeout_secs = 5
max_streams = 7
segment_queue = 2
hls_window = 3
max_price_per_unit = "1234567890123456789"
pixels_per_unit = "1000"

[orchestrator]
service_addr = "[::1]:18935"
service_uri = "https://o1.example:8935"
tls = false
max_sessions = 20
secret_file = "secret.txt"
price_per_unit = "1200"
pixels_per_unit = "3"
ticket_ev = "1000"
transcode = false
capacity = 4
x264_preset = "placebo"
session_idle_timeout_secs = 5

[transcoder]
orchestrator = "https://o1.example:8935"
secret_file = "/etc/livepeer/secret"
capacity = 8
x264_preset = "ultrafast"

[admin]
addr = "0.0.0.0:17935"
"#;

#[test]
fn full_file_is_read_and_round_trips() {
    let config = parse(FULL).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/livepeer"));
    assert_eq!(config.log.format, LogFormat::Json);
    let gateway = config.gateway.as_ref().unwrap();
    assert_eq!(gateway.http_addr, addr("0.0.0.0:19935"));
    assert_eq!(gateway.orchestrators.len(), 2);
    assert_eq!(gateway.profiles_file, Some(PathBuf::from("profiles.json")));
    assert_eq!(gateway.max_attempts, 10);
    assert_eq!(gateway.max_price_per_unit, wei(1_234_567_890_123_456_789));
    let orchestrator = config.orchestrator.as_ref().unwrap();
    assert_eq!(orchestrator.service_addr, addr("[::1]:18935"));
    assert!(!orchestrator.tls);
    assert!(!orchestrator.transcode);
    assert_eq!(orchestrator.x264_preset, "placebo");
    assert_eq!(config.transcoder.as_ref().unwrap().capacity, 8);
    assert_eq!(config.admin.addr, addr("0.0.0.0:17935"));

    let dumped = config.to_toml();
    assert_eq!(parse(&dumped), Ok(config.clone()), "{dumped}");
    // Dumping is stable.
    assert_eq!(parse(&dumped).unwrap().to_toml(), dumped);
}

#[test]
fn defaults_round_trip() {
    for config in [
        Config::default(),
        Config {
            gateway: Some(GatewayConfig::default()),
            orchestrator: Some(OrchestratorConfig::default()),
            ..Config::default()
        },
    ] {
        assert_eq!(parse(&config.to_toml()), Ok(config));
    }
}

#[test]
fn dump_writes_every_key_and_leaves_out_unset_ones() {
    let config = parse("[orchestrator]\n").unwrap();
    let dumped = config.to_toml();
    assert!(dumped.contains("network = \"offchain\""), "{dumped}");
    assert!(dumped.contains("[orchestrator]"), "{dumped}");
    assert!(dumped.contains("ticket_ev = \"8000000000\""), "{dumped}");
    assert!(!dumped.contains("secret_file"), "{dumped}");
    assert!(!dumped.contains("[gateway]"), "{dumped}");
}

/// `max_sessions`: a number, or "auto" from the file, an override or `--dump-config`'s output;
/// anything else is an error naming both forms.
#[test]
fn max_sessions_is_a_number_or_auto() {
    let auto = parse("[orchestrator]\nmax_sessions = \"auto\"").unwrap();
    assert_eq!(auto.orchestrator.as_ref().unwrap().max_sessions, MaxSessions::Auto);
    assert!(auto.to_toml().contains("max_sessions = \"auto\""), "{}", auto.to_toml());
    assert_eq!(Config::from_toml_str(&auto.to_toml(), &[]).unwrap(), auto, "round trip");
    let env = parse_env("[orchestrator]\nmax_sessions = 3", &[("LIVEPEER_ORCHESTRATOR__MAX_SESSIONS", "auto")]);
    assert_eq!(env.unwrap().orchestrator.unwrap().max_sessions, MaxSessions::Auto);
    let env = parse_env("[orchestrator]", &[("LIVEPEER_ORCHESTRATOR__MAX_SESSIONS", "4")]);
    assert_eq!(env.unwrap().orchestrator.unwrap().max_sessions, MaxSessions::Fixed(4));
    for bad in ["\"Auto\"", "\"4\"", "true", "2.5"] {
        single_error(
            parse(&format!("[orchestrator]\nmax_sessions = {bad}")),
            "orchestrator.max_sessions",
            "expected a positive integer or \"auto\"",
        );
    }
    single_error(parse("[orchestrator]\nmax_sessions = 0"), "orchestrator.max_sessions", "must be at least 1");
    single_error(
        parse_env("", &[("LIVEPEER_ORCHESTRATOR__MAX_SESSIONS", "many")]),
        "orchestrator.max_sessions",
        "found string \"many\" (set by LIVEPEER_ORCHESTRATOR__MAX_SESSIONS)",
    );
}

#[test]
fn numeric_strings_also_accept_integers() {
    let config = parse("[orchestrator]\nprice_per_unit = 1500\nticket_ev = 1000\n").unwrap();
    let orchestrator = config.orchestrator.unwrap();
    assert_eq!(orchestrator.price_per_unit, wei(1500));
    assert_eq!(orchestrator.ticket_ev, wei(1000));
}

// ---- environment overrides ------------------------------------------------------------------

#[test]
fn env_overrides_a_top_level_key() {
    let config =
        parse_env("data_dir = \"from-file\"\n", &[("LIVEPEER_DATA_DIR", "/tmp/lp"), ("LIVEPEER_NETWORK", "offchain")])
            .unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/tmp/lp"));
    assert_eq!(config.network, Network::Offchain);
}

#[test]
fn env_overrides_section_keys_and_the_file_values_stand() {
    let text = "[gateway]\nhttp_addr = \"127.0.0.1:1000\"\nmax_streams = 5\n\
                [orchestrator]\nmax_sessions = 3\ncapacity = 2\n[log]\nlevel = \"debug\"\n";
    let config = parse_env(
        text,
        &[
            ("LIVEPEER_GATEWAY__HTTP_ADDR", "0.0.0.0:9935"),
            ("LIVEPEER_ORCHESTRATOR__MAX_SESSIONS", "20"),
            ("LIVEPEER_ORCHESTRATOR__TRANSCODE", "true"),
            ("LIVEPEER_LOG__FORMAT", "json"),
            ("LIVEPEER_GATEWAY__MAX_PRICE_PER_UNIT", "1000"),
        ],
    )
    .unwrap();
    let gateway = config.gateway.unwrap();
    assert_eq!(gateway.http_addr, addr("0.0.0.0:9935"));
    assert_eq!(gateway.max_streams, 5);
    // A string key keeps a number-looking value as the string.
    assert_eq!(gateway.max_price_per_unit, wei(1000));
    let orchestrator = config.orchestrator.unwrap();
    assert_eq!(orchestrator.max_sessions, MaxSessions::Fixed(20));
    assert_eq!(orchestrator.capacity, 2);
    assert!(orchestrator.transcode);
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.level, "debug");
}

#[test]
fn env_override_creates_an_absent_section() {
    let config = parse_env("", &[("LIVEPEER_GATEWAY__HTTP_ADDR", "0.0.0.0:9935")]).unwrap();
    let gateway = config.gateway.unwrap();
    assert_eq!(gateway.http_addr, addr("0.0.0.0:9935"));
    assert_eq!(gateway.max_streams, 100);
    assert_eq!(config.orchestrator, None);

    let config = parse_env(
        "",
        &[
            ("LIVEPEER_TRANSCODER__ORCHESTRATOR", "https://o.example:8935"),
            ("LIVEPEER_TRANSCODER__SECRET_FILE", "secret.txt"),
            ("LIVEPEER_TRANSCODER__CAPACITY", "4"),
        ],
    )
    .unwrap();
    let transcoder = config.transcoder.unwrap();
    assert_eq!(transcoder.orchestrator, "https://o.example:8935");
    assert_eq!(transcoder.capacity, 4);
}

#[test]
fn env_override_takes_arrays() {
    let config = parse_env(
        "[gateway]\norchestrators = [\"https://a:8935\"]\n",
        &[("LIVEPEER_GATEWAY__ORCHESTRATORS", r#"["https://b:8935", "http://127.0.0.1:8936"]"#)],
    )
    .unwrap();
    assert_eq!(config.gateway.unwrap().orchestrators, ["https://b:8935", "http://127.0.0.1:8936"]);
}

#[test]
fn env_override_of_an_unknown_key_is_an_error_naming_the_variable() {
    let error = single_error(
        parse_env("", &[("LIVEPEER_GATEWAY__HTP_ADDR", "0.0.0.0:1")]),
        "LIVEPEER_GATEWAY__HTP_ADDR",
        "unknown key `gateway.htp_addr`",
    );
    assert!(error.message.contains("http_addr"), "{error}");

    single_error(parse_env("", &[("LIVEPEER_NETWRK", "offchain")]), "LIVEPEER_NETWRK", "unknown key `netwrk`");
    single_error(
        parse_env("", &[("LIVEPEER_ETHER__URL", "http://127.0.0.1:8545")]),
        "LIVEPEER_ETHER__URL",
        "unknown section `ether`",
    );
    single_error(parse_env("", &[("LIVEPEER_GATEWAY", "x")]), "LIVEPEER_GATEWAY", "is a section");
    single_error(parse_env("", &[("LIVEPEER_GATEWAY__HTTP__ADDR", "x")]), "LIVEPEER_GATEWAY__HTTP__ADDR", "too many");
}

#[test]
fn env_override_of_the_wrong_type_names_key_and_variable() {
    let error = single_error(
        parse_env("", &[("LIVEPEER_ORCHESTRATOR__CAPACITY", "many")]),
        "orchestrator.capacity",
        "expected an integer",
    );
    assert!(error.message.contains("(set by LIVEPEER_ORCHESTRATOR__CAPACITY)"), "{error}");
    single_error(
        parse_env("", &[("LIVEPEER_GATEWAY__HTTP_ADDR", "nope")]),
        "gateway.http_addr",
        "invalid socket address \"nope\" (set by LIVEPEER_GATEWAY__HTTP_ADDR)",
    );
}

#[test]
fn variables_without_the_prefix_are_ignored() {
    let config = parse_env("", &[("PATH", "/bin"), ("HOME", "/root")]).unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn env_overrides_only_lists_livepeer_variables() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let os = |s: &str| OsString::from(s);
    let env = vec![
        (os("PATH"), os("/usr/bin")),
        (os("LIVEPEER_GATEWAY__MAX_ATTEMPTS"), os("5")),
        (OsString::from_vec(b"LIVEPEER_\xff".to_vec()), os("skipped: not UTF-8")),
        (os("LIVEPEER_DATA_DIR"), OsString::from_vec(b"/srv/\xfflp".to_vec())),
        (os("XLIVEPEER_NETWORK"), os("devnet")),
    ];
    assert_eq!(
        Config::overrides_in(env),
        [
            ("LIVEPEER_DATA_DIR".to_string(), "/srv/\u{fffd}lp".to_string()),
            ("LIVEPEER_GATEWAY__MAX_ATTEMPTS".to_string(), "5".to_string()),
        ]
    );
    let vars = Config::env_overrides();
    assert!(vars.iter().all(|(name, _)| name.starts_with("LIVEPEER_")));
    assert!(vars.is_sorted());
}

// ---- collecting every error -----------------------------------------------------------------

#[test]
fn three_mistakes_make_exactly_three_errors() {
    let text = r#"
[gateway]
htp_addr = "127.0.0.1:9935"
max_attempts = "three"

[orchestrator]
service_addr = "nope"
"#;
    let errors = errors(parse(text));
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["gateway.max_attempts", "gateway.htp_addr", "orchestrator.service_addr"], "{errors:#?}");
    assert!(errors[0].message.contains("expected an integer"));
    assert!(errors[1].message.contains("unknown key; known keys: http_addr"));
    assert_eq!(errors[2].message, "invalid socket address \"nope\"");
}

#[test]
fn errors_display_one_per_line() {
    let text = "network = 3\n[gateway]\nhttp_addr = \"nope\"\n";
    let errors = parse(text).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "network: expected a string, found integer 3\n\
         gateway.http_addr: invalid socket address \"nope\""
    );
}

#[test]
fn many_mistakes_across_sections_and_env_are_all_reported() {
    let text = r#"
network = "moon"
[log]
format = "xml"
[gateway]
orchestrators = ["ftp://a", 5]
[transcoder]
capacity = 0
[admin]
addr = 7935
"#;
    let errors = errors(parse_env(text, &[("LIVEPEER_BOGUS", "1")]));
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "LIVEPEER_BOGUS",
            "network",
            "log.format",
            "gateway.orchestrators[0]",
            "gateway.orchestrators[1]",
            "transcoder.orchestrator",
            "transcoder.secret_file",
            "transcoder.capacity",
            "admin.addr",
        ],
        "{errors:#?}"
    );
}

// ---- files ----------------------------------------------------------------------------------

#[test]
fn load_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("livepeer.toml");
    std::fs::write(&path, "[gateway]\nmax_streams = 2\n").unwrap();
    let config = Config::load(&path, &[]).unwrap();
    assert_eq!(config.gateway.unwrap().max_streams, 2);
}

#[test]
fn unreadable_file_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let errors = errors(Config::load(&path, &[]));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].key, path.display().to_string());
    assert!(errors[0].message.starts_with("cannot read the config file: "), "{}", errors[0]);
}

#[test]
fn syntax_error_names_the_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[gateway]\nhttp_addr = \n").unwrap();
    let errors = errors(Config::load(&path, &[]));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].key, path.display().to_string());
    assert!(errors[0].message.starts_with("TOML syntax error at line 2"), "{}", errors[0]);
    assert!(!errors[0].to_string().contains('\n'), "{}", errors[0]);

    single_error(parse("a = = 1"), "config", "TOML syntax error");
}

#[test]
fn secret_files_need_not_exist() {
    let text = "[orchestrator]\ntranscode = false\nsecret_file = \"/nonexistent/secret\"\n";
    assert!(parse(text).is_ok());
}

// ---- validation rules -----------------------------------------------------------------------

#[test]
fn unknown_keys_are_named_with_their_path() {
    single_error(
        parse("[gateway]\nhtp_addr = \"127.0.0.1:1\"\n"),
        "gateway.htp_addr",
        "unknown key; known keys: http_addr, orchestrators",
    );
    single_error(parse("colour = \"blue\"\n"), "colour", "unknown key");
    single_error(parse("[admin]\nport = 1\n"), "admin.port", "known keys: addr");
    single_error(parse("[log]\nlevel = \"info\"\n[log.extra]\na = 1\n"), "log.extra", "unknown key");
}

#[test]
fn eth_section_goes_with_an_on_chain_network() {
    let eth = "[eth]\nurl = \"http://127.0.0.1:8545\"\npassword_file = \"pw\"\n";
    single_error(parse(eth), "eth", "needs an on-chain network");
    single_error(parse(&format!("network = \"devnet\"\n{eth}")), "eth.controller", "required on network \"devnet\"");
    let config = parse(&format!("network = \"arbitrum-one-mainnet\"\n{eth}")).unwrap();
    let parsed = config.eth.unwrap();
    assert_eq!(parsed.controller, None);
    assert_eq!((parsed.tx_timeout_secs, parsed.max_tx_replacements, parsed.reward), (300, 1, true));
    let controller = format!("controller = \"0x{}\"\n", "aB".repeat(20));
    let config = parse(&format!("network = \"devnet\"\n{eth}{controller}")).unwrap();
    assert_eq!(config.eth.unwrap().controller.unwrap(), format!("0x{}", "aB".repeat(20)));
    // Missing keys and a bad address are each one error.
    let errors = parse("network = \"custom\"\n[eth]\ncontroller = \"0x12\"\n").unwrap_err();
    let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["eth.url", "eth.password_file", "eth.controller"], "{errors}");
}

#[test]
fn type_errors_name_the_expected_type() {
    single_error(
        parse("[gateway]\nmax_streams = \"10\"\n"),
        "gateway.max_streams",
        "expected an integer, found string \"10\"",
    );
    single_error(parse("[orchestrator]\ntls = \"yes\"\n"), "orchestrator.tls", "expected a boolean");
    single_error(
        parse("[gateway]\nprofiles = \"P240p30fps16x9\"\n"),
        "gateway.profiles",
        "expected an array of strings",
    );
    single_error(parse("[gateway]\nprofiles = [1]\n"), "gateway.profiles[0]", "expected a string, found integer 1");
    single_error(parse("gateway = 1\n"), "gateway", "expected a table, found integer 1");
    single_error(parse("[gateway]\nhls_window = 1.5\n"), "gateway.hls_window", "found float 1.5");
}

#[test]
fn socket_addresses_must_parse() {
    for (section, key) in [("gateway", "http_addr"), ("orchestrator", "service_addr"), ("admin", "addr")] {
        let error = single_error(parse(&format!("[{section}]\n{key} = \"nope\"\n")), &format!("{section}.{key}"), "");
        assert_eq!(error.to_string(), format!("{section}.{key}: invalid socket address \"nope\""));
    }
    // A host name is not a socket address.
    single_error(parse("[admin]\naddr = \"localhost:7935\"\n"), "admin.addr", "invalid socket address");
}

#[test]
fn urls_must_be_http_or_https() {
    single_error(
        parse("[gateway]\norchestrators = [\"https://a:1\", \"127.0.0.1:8935\"]\n"),
        "gateway.orchestrators[1]",
        "expected an http:// or https:// URL, found \"127.0.0.1:8935\"",
    );
    single_error(
        parse("[orchestrator]\nservice_uri = \"ws://a:1\"\n"),
        "orchestrator.service_uri",
        "http:// or https://",
    );
    single_error(
        parse("[transcoder]\norchestrator = \"https://\"\nsecret_file = \"s\"\n"),
        "transcoder.orchestrator",
        "http:// or https://",
    );
    assert!(parse("[gateway]\norchestrators = [\"http://a:1\", \"https://b\"]\n").is_ok());
}

/// A config setting `key` (a path such as `eth.min_gas_price`) to `value`, with what its section
/// needs to be valid otherwise.
fn with_key(key: &str, value: &str) -> String {
    let (table, name) = key.rsplit_once('.').unwrap();
    match table {
        "eth" => format!(
            "network = \"arbitrum-one-mainnet\"\n[eth]\nurl = \"http://127.0.0.1:8545\"\npassword_file = \"pw\"\n\
             {name} = {value}\n"
        ),
        "orchestrator.models[0]" => {
            format!("[[orchestrator.models]]\npipeline = \"llm\"\nmodel_id = \"m\"\npath = \"m\"\n{name} = {value}\n")
        }
        section => format!("[{section}]\n{name} = {value}\n"),
    }
}

/// Every key holding an amount of wei.
const WEI_KEYS: [&str; 6] = [
    "gateway.max_price_per_unit",
    "orchestrator.price_per_unit",
    "orchestrator.ticket_ev",
    "orchestrator.models[0].price_per_unit",
    "eth.min_gas_price",
    "eth.max_gas_price",
];

#[test]
fn amounts_of_wei_take_a_unit_and_are_written_back_in_wei() {
    for key in WEI_KEYS {
        for (text, expected) in [
            ("\"8000000000\"", 8_000_000_000),
            ("\"8 gwei\"", 8_000_000_000),
            ("\"8gwei\"", 8_000_000_000),
            ("\"8 GWEI\"", 8_000_000_000),
            ("\"1.5 Gwei\"", 1_500_000_000),
            ("\"0.001 eth\"", 1_000_000_000_000_000),
            ("\"1 ETH\"", 1_000_000_000_000_000_000),
            ("\"1000 wei\"", 1000),
            ("1000", 1000),
        ] {
            let config = parse(&with_key(key, text)).unwrap_or_else(|e| panic!("{key} = {text}: {e}"));
            let o = config.orchestrator.as_ref();
            let e = config.eth.as_ref();
            let value = match key {
                "gateway.max_price_per_unit" => config.gateway.as_ref().unwrap().max_price_per_unit,
                "orchestrator.price_per_unit" => o.unwrap().price_per_unit,
                "orchestrator.ticket_ev" => o.unwrap().ticket_ev,
                "orchestrator.models[0].price_per_unit" => o.unwrap().models[0].price_per_unit,
                "eth.min_gas_price" => e.unwrap().min_gas_price,
                _ => e.unwrap().max_gas_price,
            };
            assert_eq!(value, wei(expected), "{key} = {text}");
            // --dump-config writes the amount in wei, and that reads back to the same config.
            let dumped = config.to_toml();
            assert!(dumped.contains(&format!(" = \"{expected}\"")), "{key} = {text}:\n{dumped}");
            assert_eq!(parse(&dumped), Ok(config), "{dumped}");
        }
    }
    // The same amount with and without a unit is the same config.
    assert_eq!(
        parse("[orchestrator]\nprice_per_unit = \"8 gwei\"\n"),
        parse("[orchestrator]\nprice_per_unit = \"8000000000\"\n")
    );
    let config = parse_env("", &[("LIVEPEER_ORCHESTRATOR__TICKET_EV", "0.5 gwei")]).unwrap();
    assert_eq!(config.orchestrator.unwrap().ticket_ev, wei(500_000_000));
}

#[test]
fn malformed_amounts_of_wei_are_refused_naming_the_key() {
    let cases = [
        ("\"1.5\"", "\"1.5\" has decimals but no unit"),
        ("\"0.5 wei\"", "\"0.5 wei\" is not a whole number of wei: an amount in wei has at most 0 decimals"),
        ("\"1.0000000001 gwei\"", "an amount in gwei has at most 9 decimals"),
        ("\"-1\"", "\"-1\" is negative; an amount is 0 or more"),
        ("-5", "\"-5\" is negative; an amount is 0 or more"),
        ("\"\"", "expected a whole number of wei (\"8000000000\") or a number with a unit, wei, gwei or eth"),
        ("\" \"", "found \" \""),
        ("\" 1\"", "found \" 1\""),
        ("\"1e9\"", "found \"1e9\""),
        ("\"0x10\"", "found \"0x10\""),
        ("\"1_000\"", "found \"1_000\""),
        ("\"1 finney\"", "unknown unit \"finney\"; use wei, gwei or eth"),
        (
            "true",
            "expected an amount of wei: a string such as \"8000000000\" or \"8 gwei\", or an integer, found boolean true",
        ),
        ("1.5", "found float 1.5"),
    ];
    for key in WEI_KEYS {
        for (value, needle) in cases {
            single_error(parse(&with_key(key, value)), key, needle);
        }
    }
    // Set by the environment, the error names the variable too.
    single_error(
        parse_env("", &[("LIVEPEER_GATEWAY__MAX_PRICE_PER_UNIT", "0.5 wei")]),
        "gateway.max_price_per_unit",
        "is not a whole number of wei: an amount in wei has at most 0 decimals (set by LIVEPEER_GATEWAY__MAX_PRICE_PER_UNIT)",
    );
    assert!(parse("[gateway]\nmax_price_per_unit = \"0\"\n").is_ok());
    assert!(parse("[orchestrator]\nprice_per_unit = \"000\"\n").is_ok());
}

#[test]
fn pixel_counts_are_positive_integers() {
    for key in ["gateway.pixels_per_unit", "orchestrator.pixels_per_unit", "orchestrator.models[0].pixels_per_unit"] {
        for (value, needle) in [
            ("0", "must be at least 1, found 0"),
            ("-5", "must be at least 1, found -5"),
            ("\"00\"", "must be at least 1, found 0"),
            ("\"1.5\"", "expected a positive integer such as 1, found string \"1.5\""),
            ("\"1 gwei\"", "expected a positive integer such as 1, found string \"1 gwei\""),
            ("\"\"", "expected a positive integer such as 1, found string \"\""),
            ("true", "found boolean true"),
        ] {
            single_error(parse(&with_key(key, value)), key, needle);
        }
        // An integer, or a decimal string as configs once wrote it.
        for value in ["1000", "\"1000\""] {
            let config = parse(&with_key(key, value)).unwrap();
            let count = match key {
                "gateway.pixels_per_unit" => config.gateway.unwrap().pixels_per_unit,
                "orchestrator.pixels_per_unit" => config.orchestrator.unwrap().pixels_per_unit,
                _ => config.orchestrator.unwrap().models[0].pixels_per_unit,
            };
            assert_eq!(count, 1000, "{key} = {value}");
        }
    }
}

#[test]
fn ticket_ev_must_be_positive() {
    for zero in ["\"0\"", "\"0 gwei\"", "\"0.0 eth\"", "0"] {
        single_error(
            parse(&format!("[orchestrator]\nticket_ev = {zero}\n")),
            "orchestrator.ticket_ev",
            "must be greater than 0",
        );
    }
}

#[test]
fn integer_ranges() {
    let cases = [
        ("gateway", "max_segment_bytes", "0", "must be at least 1, found 0"),
        ("gateway", "max_attempts", "0", "must be between 1 and 10, found 0"),
        ("gateway", "max_attempts", "11", "must be between 1 and 10, found 11"),
        ("gateway", "stream_idle_timeout_secs", "0", "at least 1"),
        ("gateway", "max_streams", "0", "at least 1"),
        ("gateway", "max_streams", "4294967296", "too large, found 4294967296"),
        ("gateway", "segment_queue", "0", "at least 1"),
        ("gateway", "hls_window", "-1", "at least 1, found -1"),
        ("orchestrator", "max_sessions", "0", "at least 1"),
        ("orchestrator", "capacity", "0", "at least 1"),
        ("orchestrator", "session_idle_timeout_secs", "0", "at least 1"),
        ("transcoder", "capacity", "0", "at least 1"),
    ];
    for (section, key, value, needle) in cases {
        let mut text = format!("[{section}]\n{key} = {value}\n");
        if section == "transcoder" {
            text.push_str("orchestrator = \"https://o:1\"\nsecret_file = \"s\"\n");
        }
        single_error(parse(&text), &format!("{section}.{key}"), needle);
    }
    let config = parse("[gateway]\nmax_attempts = 1\n").unwrap();
    assert_eq!(config.gateway.unwrap().max_attempts, 1);
}

#[test]
fn plain_http_only_on_loopback() {
    single_error(
        parse("[orchestrator]\nservice_addr = \"0.0.0.0:8935\"\ntls = false\n"),
        "orchestrator.tls",
        "loopback",
    );
    single_error(
        parse("[orchestrator]\nservice_addr = \"192.168.1.2:8935\"\ntls = false\n"),
        "orchestrator.tls",
        "not 192.168.1.2:8935",
    );
    assert!(parse("[orchestrator]\ntls = false\n").is_ok());
    assert!(parse("[orchestrator]\nservice_addr = \"[::1]:8935\"\ntls = false\n").is_ok());
    assert!(parse("[orchestrator]\nservice_addr = \"0.0.0.0:8935\"\ntls = true\n").is_ok());
    // An invalid address is one error, not two.
    single_error(
        parse("[orchestrator]\nservice_addr = \"nope\"\ntls = false\n"),
        "orchestrator.service_addr",
        "invalid socket address",
    );
}

#[test]
fn remote_transcoding_needs_a_secret() {
    single_error(
        parse("[orchestrator]\ntranscode = false\n"),
        "orchestrator.secret_file",
        "remote transcoders need a shared secret",
    );
    // A secret_file of the wrong type is one error, not two.
    single_error(
        parse("[orchestrator]\ntranscode = false\nsecret_file = 1\n"),
        "orchestrator.secret_file",
        "expected a string",
    );
    let config = parse("[orchestrator]\ntranscode = false\nsecret_file = \"s.txt\"\n").unwrap();
    assert_eq!(config.orchestrator.unwrap().secret_file, Some(PathBuf::from("s.txt")));
}

#[test]
fn on_chain_networks_need_an_eth_section() {
    let error = single_error(parse("network = \"devnet\"\n"), "eth", "");
    assert_eq!(error.message, "network \"devnet\" needs an [eth] section");
    single_error(parse("network = \"arbitrum-one-mainnet\"\n"), "eth", "needs an [eth] section");
    single_error(parse("network = \"custom\"\n"), "eth", "needs an [eth] section");
    single_error(
        parse("network = \"mainnet\"\n"),
        "network",
        "expected one of offchain, devnet, arbitrum-one-mainnet, custom",
    );
}

#[test]
fn transcoder_requires_orchestrator_and_secret_file() {
    let errors = errors(parse("[transcoder]\ncapacity = 2\n"));
    assert_eq!(
        errors,
        [
            ConfigError { key: "transcoder.orchestrator".to_string(), message: "missing required key".to_string() },
            ConfigError { key: "transcoder.secret_file".to_string(), message: "missing required key".to_string() },
        ]
    );
}

#[test]
fn x264_presets_are_checked() {
    single_error(
        parse("[orchestrator]\nx264_preset = \"fastest\"\n"),
        "orchestrator.x264_preset",
        "unknown x264 preset \"fastest\"; expected one of ultrafast, superfast",
    );
    single_error(
        parse("[transcoder]\norchestrator = \"https://o:1\"\nsecret_file = \"s\"\nx264_preset = \"\"\n"),
        "transcoder.x264_preset",
        "unknown x264 preset",
    );
    for preset in lp_config::X264_PRESETS {
        assert!(parse(&format!("[orchestrator]\nx264_preset = \"{preset}\"\n")).is_ok());
    }
}

/// `video_decoder` (orchestrator, transcoder) and `ai_device` name the CPU or a GPU by index.
#[test]
fn decoders_and_devices_are_checked() {
    let transcoder = "[transcoder]\norchestrator = \"https://o:1\"\nsecret_file = \"s\"\n";
    let config =
        parse(&format!("{transcoder}video_decoder = \"nvdec:1\"\n[orchestrator]\nvideo_decoder = \"nvdec\"\n"))
            .unwrap();
    assert_eq!(config.transcoder.as_ref().unwrap().video_decoder, "nvdec:1");
    assert_eq!(config.orchestrator.as_ref().unwrap().video_decoder, "nvdec");
    assert_eq!(parse(&config.to_toml()), Ok(config));
    assert_eq!(parse("[orchestrator]\n").unwrap().orchestrator.unwrap().video_decoder, "cpu");
    for bad in ["cuda", "nvdec:", "nvdec:x", "nvdec1", "nvdec:-1", "nvdec:99999999999", "NVDEC"] {
        single_error(
            parse(&format!("[orchestrator]\nvideo_decoder = \"{bad}\"\n")),
            "orchestrator.video_decoder",
            &format!("unknown video decoder \"{bad}\"; expected \"cpu\", \"nvdec\" or \"nvdec:N\""),
        );
    }
    single_error(
        parse(&format!("{transcoder}video_decoder = \"gpu\"\n")),
        "transcoder.video_decoder",
        "unknown video decoder",
    );
    for good in ["cpu", "cuda", "cuda:0", "cuda:7"] {
        assert!(parse(&format!("[orchestrator]\nai_device = \"{good}\"\n")).is_ok(), "{good}");
    }
    single_error(
        parse("[orchestrator]\nai_device = \"nvdec\"\n"),
        "orchestrator.ai_device",
        "unknown device \"nvdec\"; expected \"cpu\", \"cuda\" or \"cuda:N\"",
    );
}

#[test]
fn log_settings_are_checked() {
    single_error(parse("[log]\nformat = \"xml\"\n"), "log.format", "expected one of pretty, json");
    single_error(parse("[log]\nlevel = \"\"\n"), "log.level", "must not be empty");
}

#[test]
fn paths_must_not_be_empty() {
    single_error(parse("data_dir = \"\"\n"), "data_dir", "must not be empty");
    single_error(parse("[gateway]\nprofiles_file = \"\"\n"), "gateway.profiles_file", "must not be empty");
}

/// A price beyond the wire's int64 used to load and then be answered as `price_per_unit: 0` by
/// `/getOrchestrator`; it is a config error now, naming the key and the limit.
#[test]
fn prices_beyond_the_wires_int64_are_refused() {
    let error = single_error(
        parse("[orchestrator]\nprice_per_unit = \"99999999999999999999\"\n"),
        "orchestrator.price_per_unit",
        "",
    );
    assert_eq!(
        error.message,
        "99999999999999999999 wei is too large: prices on the wire are int64, at most 9223372036854775807 wei \
         (9.223372036854775807 ETH)"
    );
    single_error(
        parse("[gateway]\nmax_price_per_unit = \"9223372036854775808\"\n"),
        "gateway.max_price_per_unit",
        "int64",
    );
    // With a unit too: 10 ETH is 10^19 wei.
    single_error(
        parse("[orchestrator]\nprice_per_unit = \"10 eth\"\n"),
        "orchestrator.price_per_unit",
        "10000000000000000000 wei is too large",
    );
    single_error(
        parse(&with_key("orchestrator.models[0].price_per_unit", "\"9223372036854775808\"")),
        "orchestrator.models[0].price_per_unit",
        "at most 9223372036854775807 wei",
    );
    single_error(
        parse("[orchestrator]\npixels_per_unit = \"18446744073709551616\"\n"),
        "orchestrator.pixels_per_unit",
        "too large",
    );
    let ok = parse("[orchestrator]\nprice_per_unit = \"9223372036854775807\"\n").unwrap();
    assert_eq!(ok.orchestrator.unwrap().price_per_unit, wei(i64::MAX as u64));
    let ok = parse("[orchestrator]\nprice_per_unit = \"9.223372036854775807 eth\"\n").unwrap();
    assert_eq!(ok.orchestrator.unwrap().price_per_unit, wei(i64::MAX as u64));
    // Amounts off the wire take 256 bits; gas prices, what the transaction manager holds (u128).
    let ok = parse("[orchestrator]\nticket_ev = \"100000000000000000000 eth\"\n").unwrap();
    assert_eq!(ok.orchestrator.unwrap().ticket_ev.to_string(), format!("1{}", "0".repeat(38)));
    let two_to_the_256 = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
    single_error(
        parse(&with_key("orchestrator.ticket_ev", &format!("\"{two_to_the_256}\""))),
        "orchestrator.ticket_ev",
        "is too large: an amount is less than 2^256 wei",
    );
    single_error(
        parse(&with_key("eth.max_gas_price", "\"340282366920938463463374607431768211456\"")),
        "eth.max_gas_price",
        "gas prices are at most a u128, at most 340282366920938463463374607431768211455 wei",
    );
    assert!(parse(&with_key("eth.max_gas_price", "\"340282366920938463463374607431768211455\"")).is_ok());
}

// ---- AI models ------------------------------------------------------------------------------

const TWO_MODELS: &str = r#"
[orchestrator]
price_per_unit = "1 gwei"

[[orchestrator.models]]
pipeline = "upscale"
model_id = "realesr-x4"
path = "models/realesr-x4.onnx"
capacity = 2
price_per_unit = "0.5 gwei"
pixels_per_unit = 1000
warm = true

[[orchestrator.models]]
pipeline = "llm"
model_id = "qwen2.5-0.5b"
path = "models/qwen2.5-0.5b"
"#;

#[test]
fn models_are_read_in_order_with_their_defaults() {
    let config = parse(TWO_MODELS).unwrap();
    let orchestrator = config.orchestrator.clone().unwrap();
    assert_eq!(orchestrator.price_per_unit, wei(1_000_000_000));
    assert_eq!(
        orchestrator.models,
        [
            ModelConfig {
                pipeline: "upscale".to_string(),
                model_id: "realesr-x4".to_string(),
                path: Some("models/realesr-x4.onnx".into()),
                capacity: 2,
                price_per_unit: wei(500_000_000),
                pixels_per_unit: 1000,
                warm: true,
            },
            ModelConfig {
                pipeline: "llm".to_string(),
                model_id: "qwen2.5-0.5b".to_string(),
                path: Some("models/qwen2.5-0.5b".into()),
                capacity: 1,
                price_per_unit: Wei::ZERO,
                pixels_per_unit: 1,
                warm: false,
            },
        ]
    );
    assert_eq!(
        orchestrator.models[1],
        ModelConfig { path: Some("models/qwen2.5-0.5b".into()), ..ModelConfig::new("llm", "qwen2.5-0.5b") }
    );
    let dumped = config.to_toml();
    assert_eq!(dumped.matches("[[orchestrator.models]]").count(), 2, "{dumped}");
    assert!(dumped.contains("price_per_unit = \"500000000\""), "{dumped}");
    assert_eq!(parse(&dumped), Ok(config));
    // No models: none, and none dumped.
    let config = parse("[orchestrator]\nmodels = []\n").unwrap();
    assert!(config.orchestrator.as_ref().unwrap().models.is_empty());
    assert!(!config.to_toml().contains("models"));
}

#[test]
fn every_served_pipeline_is_accepted_and_no_other() {
    for pipeline in lp_config::AI_PIPELINES {
        let text = format!("[[orchestrator.models]]\npipeline = \"{pipeline}\"\nmodel_id = \"m\"\npath = \"m\"\n");
        assert_eq!(parse(&text).unwrap().orchestrator.unwrap().models[0].pipeline, *pipeline);
    }
    for unserved in ["text2img", "text-to-image"] {
        single_error(
            parse(&format!("[[orchestrator.models]]\npipeline = \"{unserved}\"\nmodel_id = \"m\"\npath = \"m\"\n")),
            "orchestrator.models[0].pipeline",
            &format!("unknown AI pipeline \"{unserved}\"; expected one of image-to-image, upscale, llm, image-to-text"),
        );
    }
    single_error(
        parse("[[orchestrator.models]]\npipeline = \"llm\"\nmodel_id = \"m\"\npath = \"m\"\ncapacity = 9\n"),
        "orchestrator.models[0].capacity",
        "must be between 1 and 8, found 9",
    );
}

#[test]
fn model_errors_name_the_index() {
    let text = format!("{TWO_MODELS}pipelin = \"x\"\nwarm = \"yes\"\n");
    let found: Vec<String> = errors(parse(&text)).iter().map(|e| e.to_string()).collect();
    assert_eq!(
        found,
        [
            "orchestrator.models[1].warm: expected a boolean (true or false), found string \"yes\"",
            "orchestrator.models[1].pipelin: unknown key; known keys: pipeline, model_id, path, capacity, \
             price_per_unit, pixels_per_unit, warm",
        ]
    );
    assert_eq!(
        errors(parse("[[orchestrator.models]]\nwarm = true\n[[orchestrator.models]]\nmodel_id = \"\"\npath = \"m\"\n")),
        [
            ConfigError::new("orchestrator.models[0].pipeline", "missing required key"),
            ConfigError::new("orchestrator.models[0].model_id", "missing required key"),
            ConfigError::new("orchestrator.models[1].pipeline", "missing required key"),
            ConfigError::new("orchestrator.models[1].model_id", "must not be empty"),
            ConfigError::new(
                "orchestrator.secret_file",
                "required when a model has no path (orchestrator.models[0]): remote AI workers serve it, and need \
                 a shared secret"
            ),
        ]
    );
    single_error(
        parse("[orchestrator]\nmodels = [1]\n"),
        "orchestrator.models[0]",
        "expected a table, found integer 1",
    );
    single_error(
        parse("[orchestrator]\nmodels = \"upscale\"\n"),
        "orchestrator.models",
        "expected an array of tables ([[orchestrator.models]]), found string \"upscale\"",
    );
}

#[test]
fn a_model_is_listed_once_per_pipeline() {
    let text = format!(
        "{TWO_MODELS}[[orchestrator.models]]\npipeline = \"upscale\"\nmodel_id = \"realesr-x4\"\npath = \"x\"\n"
    );
    single_error(
        parse(&text),
        "orchestrator.models[2]",
        "upscale model \"realesr-x4\" is listed twice: already at orchestrator.models[0]",
    );
    // The same model for another pipeline is another entry.
    let text = format!(
        "{TWO_MODELS}[[orchestrator.models]]\npipeline = \"image-to-image\"\nmodel_id = \"realesr-x4\"\npath = \"x\"\n"
    );
    assert_eq!(parse(&text).unwrap().orchestrator.unwrap().models.len(), 3);
    // Two entries whose pipelines are both invalid are one error each, not a duplicate too.
    let bad = "[[orchestrator.models]]\npipeline = \"x\"\nmodel_id = \"m\"\npath = \"m\"\n";
    let found = errors(parse(&format!("{bad}{bad}")));
    let keys: Vec<&str> = found.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["orchestrator.models[0].pipeline", "orchestrator.models[1].pipeline"]);
}

#[test]
fn models_can_be_set_whole_by_the_environment() {
    let var = "LIVEPEER_ORCHESTRATOR__MODELS";
    let config =
        parse_env(TWO_MODELS, &[(var, r#"[{pipeline = "upscale", model_id = "m", path = "m.onnx", warm = true}]"#)])
            .unwrap();
    assert_eq!(
        config.orchestrator.unwrap().models,
        [ModelConfig { warm: true, path: Some("m.onnx".into()), ..ModelConfig::new("upscale", "m") }]
    );
    let error = single_error(
        parse_env("", &[(var, r#"[{pipeline = "nope", model_id = "m", path = "m"}]"#)]),
        "orchestrator.models[0].pipeline",
        "unknown AI pipeline \"nope\"",
    );
    assert!(error.message.ends_with("(set by LIVEPEER_ORCHESTRATOR__MODELS)"), "{error}");
    single_error(
        parse_env("", &[("LIVEPEER_ORCHESTRATOR__MODELS__PIPELINE", "llm")]),
        "LIVEPEER_ORCHESTRATOR__MODELS__PIPELINE",
        "`orchestrator.models` is an array of tables (keys: pipeline, model_id, path, capacity, price_per_unit, \
         pixels_per_unit, warm): set it whole, as a TOML array of inline tables, with LIVEPEER_ORCHESTRATOR__MODELS",
    );
}

#[test]
fn a_model_without_path_is_served_by_remote_ai_workers_and_needs_a_secret() {
    let model = "[[orchestrator.models]]\npipeline = \"upscale\"\nmodel_id = \"x2\"\n";
    let config = parse(&format!("[orchestrator]\nsecret_file = \"s\"\n{model}")).unwrap();
    let orchestrator = config.orchestrator.clone().unwrap();
    assert_eq!(orchestrator.models, [ModelConfig::new("upscale", "x2")]);
    assert_eq!(orchestrator.models[0].path, None);
    assert!(!config.to_toml().contains("path"), "an unset path is not dumped");
    assert_eq!(parse(&config.to_toml()), Ok(config));
    single_error(parse(model), "orchestrator.secret_file", "required when a model has no path");
}

#[test]
fn ai_worker_section_reads_its_models() {
    let text = "[ai_worker]\norchestrator = \"https://127.0.0.1:8935\"\nsecret_file = \"s\"\nai_threads = 2\n\
                [[ai_worker.models]]\npipeline = \"upscale\"\nmodel_id = \"x2\"\npath = \"x2.onnx\"\ncapacity = 3\n\
                [[ai_worker.models]]\npipeline = \"llm\"\nmodel_id = \"m\"\npath = \"m\"\nwarm = true\n";
    let config = parse(text).unwrap();
    let worker = config.ai_worker.clone().unwrap();
    assert_eq!(worker.ai_device, "cpu");
    assert_eq!(worker.ai_threads, 2);
    assert_eq!(worker.ai_cold_memory_mb, 4096);
    assert_eq!(
        worker.models,
        [
            lp_config::WorkerModelConfig {
                capacity: 3,
                ..lp_config::WorkerModelConfig::new("upscale", "x2", "x2.onnx")
            },
            lp_config::WorkerModelConfig { warm: true, ..lp_config::WorkerModelConfig::new("llm", "m", "m") },
        ]
    );
    assert_eq!(parse(&config.to_toml()), Ok(config));
    // Required keys, one model at least, no price keys, capacities within one worker's bound.
    let found = errors(parse("[ai_worker]\n"));
    assert_eq!(
        found,
        [
            ConfigError::new("ai_worker.orchestrator", "missing required key"),
            ConfigError::new("ai_worker.secret_file", "missing required key"),
            ConfigError::new(
                "ai_worker.models",
                "an AI worker serves one model at least: add an [[ai_worker.models]] table"
            ),
        ]
    );
    let head = "[ai_worker]\norchestrator = \"http://127.0.0.1:8935\"\nsecret_file = \"s\"\n";
    let model =
        |extra: &str| format!("[[ai_worker.models]]\npipeline = \"upscale\"\nmodel_id = \"x2\"\npath = \"p\"\n{extra}");
    single_error(
        parse(&format!("{head}{}", model("price_per_unit = \"1\"\n"))),
        "ai_worker.models[0].price_per_unit",
        "unknown key",
    );
    single_error(
        parse(&format!(
            "{head}{}{}",
            model("capacity = 8\n"),
            model("capacity = 1\nmodel_id = \"y\"\n").replace("model_id = \"x2\"\n", "")
        )),
        "ai_worker.models",
        "add up to 9; at most 8",
    );
    single_error(parse(&format!("{head}{}{}", model(""), model(""))), "ai_worker.models[1]", "listed twice");
}

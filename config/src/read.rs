//! Turning TOML text and environment overrides into a [`Config`], collecting every error.
//!
//! The text is parsed into a [`toml::Table`], the overrides are written into that table, and then
//! each known section and key is taken out of it and converted on its own; what is left over is
//! unknown. A key with a bad value is reported and its default used, so that one mistake makes
//! one error and the checks that follow still run.

use std::net::SocketAddr;
use std::path::PathBuf;

use toml::{Table, Value};

use crate::{
    AdminConfig, Config, ConfigError, ConfigErrors, ENV_PREFIX, EthConfig, GatewayConfig, LogConfig, LogFormat,
    Network, OrchestratorConfig, TranscoderConfig, X264_PRESETS,
};

/// The TOML type a key holds; used to read environment overrides and to list known keys.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A string (including addresses, paths, URLs and decimal integer strings).
    Str,
    Int,
    Bool,
    /// An array of strings.
    StrList,
    /// A table with these keys.
    Section(&'static [(&'static str, Kind)]),
}

const TOP_KEYS: &[(&str, Kind)] = &[
    ("network", Kind::Str),
    ("data_dir", Kind::Str),
    ("log", Kind::Section(LOG_KEYS)),
    ("gateway", Kind::Section(GATEWAY_KEYS)),
    ("orchestrator", Kind::Section(ORCHESTRATOR_KEYS)),
    ("transcoder", Kind::Section(TRANSCODER_KEYS)),
    ("admin", Kind::Section(ADMIN_KEYS)),
    ("eth", Kind::Section(ETH_KEYS)),
];

const LOG_KEYS: &[(&str, Kind)] = &[("format", Kind::Str), ("level", Kind::Str)];

const GATEWAY_KEYS: &[(&str, Kind)] = &[
    ("http_addr", Kind::Str),
    ("orchestrators", Kind::StrList),
    ("profiles", Kind::StrList),
    ("profiles_file", Kind::Str),
    ("max_segment_bytes", Kind::Int),
    ("max_attempts", Kind::Int),
    ("stream_idle_timeout_secs", Kind::Int),
    ("body_timeout_secs", Kind::Int),
    ("max_streams", Kind::Int),
    ("segment_queue", Kind::Int),
    ("hls_window", Kind::Int),
    ("max_price_per_unit", Kind::Str),
    ("pixels_per_unit", Kind::Str),
];

const ORCHESTRATOR_KEYS: &[(&str, Kind)] = &[
    ("service_addr", Kind::Str),
    ("service_uri", Kind::Str),
    ("tls", Kind::Bool),
    ("max_sessions", Kind::Int),
    ("secret_file", Kind::Str),
    ("price_per_unit", Kind::Str),
    ("pixels_per_unit", Kind::Str),
    ("ticket_ev", Kind::Str),
    ("transcode", Kind::Bool),
    ("capacity", Kind::Int),
    ("x264_preset", Kind::Str),
    ("session_idle_timeout_secs", Kind::Int),
];

const TRANSCODER_KEYS: &[(&str, Kind)] =
    &[("orchestrator", Kind::Str), ("secret_file", Kind::Str), ("capacity", Kind::Int), ("x264_preset", Kind::Str)];

const ADMIN_KEYS: &[(&str, Kind)] = &[("addr", Kind::Str)];

const ETH_KEYS: &[(&str, Kind)] = &[
    ("url", Kind::Str),
    ("controller", Kind::Str),
    ("keystore", Kind::Str),
    ("account", Kind::Str),
    ("password_file", Kind::Str),
    ("min_gas_price", Kind::Str),
    ("max_gas_price", Kind::Str),
    ("tx_timeout_secs", Kind::Int),
    ("max_tx_replacements", Kind::Int),
    ("block_poll_interval_secs", Kind::Int),
    ("initialize_round", Kind::Bool),
    ("initialize_round_max_delay_secs", Kind::Int),
    ("reward", Kind::Bool),
];

fn lookup(keys: &[(&'static str, Kind)], name: &str) -> Option<Kind> {
    keys.iter().find(|(k, _)| *k == name).map(|(_, kind)| *kind)
}

fn key_names(keys: &[(&'static str, Kind)]) -> String {
    keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

/// Parse, override, validate. `origin` keys errors about the text itself.
pub(crate) fn parse(origin: &str, text: &str, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
    match parse_all(origin, text, env) {
        (Some(config), errors) if errors.is_empty() => Ok(config),
        (_, errors) => Err(ConfigErrors(errors)),
    }
}

/// As [`parse`], but also answers the config as read when some keys are invalid (those keep
/// their defaults), so that checks beyond the text can report their errors at the same time.
/// The config is `None` only when the text is not TOML.
pub(crate) fn parse_all(origin: &str, text: &str, env: &[(String, String)]) -> (Option<Config>, Vec<ConfigError>) {
    let mut table: Table = match text.parse() {
        Ok(table) => table,
        Err(e) => return (None, vec![syntax_error(origin, text, &e)]),
    };
    let mut errors = Vec::new();
    let overridden = apply_env(&mut table, env, &mut errors);
    let config = read_config(table, &mut errors);
    for error in &mut errors {
        if let Some((_, var)) =
            overridden.iter().find(|(key, _)| error.key == *key || error.key.starts_with(&format!("{key}[")))
        {
            error.message.push_str(&format!(" (set by {var})"));
        }
    }
    (Some(config), errors)
}

fn syntax_error(origin: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim().replace('\n', "; ");
    let position = e.span().map(|span| {
        let before = &text.as_bytes()[..span.start.min(text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        format!(" at line {line}, column {column}")
    });
    ConfigError::new(origin, format!("TOML syntax error{}: {message}", position.unwrap_or_default()))
}

/// Writes the `LIVEPEER_*` overrides into `table`. Returns `(key path, variable)` for each key set.
fn apply_env(table: &mut Table, env: &[(String, String)], errors: &mut Vec<ConfigError>) -> Vec<(String, String)> {
    let mut overridden = Vec::new();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let parts: Vec<&str> = rest.split("__").collect();
        match parts.as_slice() {
            [key] => match lookup(TOP_KEYS, key) {
                Some(Kind::Section(_)) => errors.push(ConfigError::new(
                    var,
                    format!("`{key}` is a section; set one of its keys with {var}__<KEY>, e.g. {}", example_var(key)),
                )),
                Some(kind) => {
                    table.insert(key.to_string(), env_value(raw, kind));
                    overridden.push((key.to_string(), var.clone()));
                }
                None => errors.push(ConfigError::new(
                    var,
                    format!("unknown key `{key}`; known top-level keys: {}", key_names(TOP_KEYS)),
                )),
            },
            [section, key] => {
                let Some(Kind::Section(keys)) = lookup(TOP_KEYS, section) else {
                    errors.push(ConfigError::new(
                        var,
                        format!("unknown section `{section}`; known sections: {}", section_names()),
                    ));
                    continue;
                };
                let Some(kind) = lookup(keys, key) else {
                    errors.push(ConfigError::new(
                        var,
                        format!("unknown key `{section}.{key}`; known keys of [{section}]: {}", key_names(keys)),
                    ));
                    continue;
                };
                let entry = table.entry(section.to_string()).or_insert_with(|| Value::Table(Table::new()));
                // A `section = <not a table>` in the file is reported when the section is read.
                if let Value::Table(section_table) = entry {
                    section_table.insert(key.to_string(), env_value(raw, kind));
                    overridden.push((format!("{section}.{key}"), var.clone()));
                }
            }
            _ => errors.push(ConfigError::new(var, "too many `__`: use LIVEPEER_<KEY> or LIVEPEER_<SECTION>__<KEY>")),
        }
    }
    overridden
}

fn section_names() -> String {
    TOP_KEYS.iter().filter(|(_, kind)| matches!(kind, Kind::Section(_))).map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

fn example_var(section: &str) -> String {
    let first_key = match lookup(TOP_KEYS, section) {
        Some(Kind::Section(keys)) => keys.first().map_or("", |(k, _)| *k),
        _ => "",
    };
    format!("{ENV_PREFIX}{}__{}", section.to_ascii_uppercase(), first_key.to_ascii_uppercase())
}

/// An override's value: the TOML value it parses as when that has the key's type, else the text.
fn env_value(raw: &str, kind: Kind) -> Value {
    let parsed = raw.trim().parse::<Value>().ok();
    match (kind, parsed) {
        (Kind::Str, Some(v @ Value::String(_)))
        | (Kind::Int, Some(v @ Value::Integer(_)))
        | (Kind::Bool, Some(v @ Value::Boolean(_)))
        | (Kind::StrList, Some(v @ Value::Array(_))) => v,
        _ => Value::String(raw.to_string()),
    }
}

/// How a value is named in a type error: `string "abc"`, `integer 3`, `an array`.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("string {s:?}"),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

fn is_http_url(s: &str) -> bool {
    let rest = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A check of each item of a list: the test, and what a valid item is (for the error).
type ItemCheck = (fn(&str) -> bool, &'static str);

/// Takes the keys of one table out one by one, converting and checking each, recording errors.
struct Reader<'e> {
    /// `""` at the top level, `"gateway."` in `[gateway]`.
    prefix: String,
    table: Table,
    known: &'static [(&'static str, Kind)],
    errors: &'e mut Vec<ConfigError>,
}

impl<'e> Reader<'e> {
    fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn error(&mut self, key: &str, message: impl Into<String>) {
        let path = self.path(key);
        self.errors.push(ConfigError::new(path, message));
    }

    /// Whether an error was already recorded for `key` (so a dependent check stays quiet).
    fn has_error(&self, key: &str) -> bool {
        let path = self.path(key);
        self.errors.iter().any(|e| e.key == path)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        debug_assert!(lookup(self.known, key).is_some(), "{key} is missing from the key list of [{}]", self.prefix);
        self.table.remove(key)
    }

    fn type_error(&mut self, key: &str, expected: &str, found: &Value) {
        let found = describe(found);
        self.error(key, format!("expected {expected}, found {found}"));
    }

    /// The reader of sub-table `name`, when present and a table.
    fn section(&mut self, name: &str) -> Option<Reader<'_>> {
        let Some(Kind::Section(known)) = lookup(self.known, name) else {
            unreachable!("{name} is not a section");
        };
        match self.take(name)? {
            Value::Table(table) => {
                Some(Reader { prefix: format!("{}{name}.", self.prefix), table, known, errors: &mut *self.errors })
            }
            other => {
                self.type_error(name, "a table", &other);
                None
            }
        }
    }

    /// Reports the keys nobody took.
    fn finish(self) {
        for key in self.table.keys() {
            self.errors.push(ConfigError::new(
                format!("{}{key}", self.prefix),
                format!("unknown key; known keys: {}", key_names(self.known)),
            ));
        }
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.take(key)? {
            Value::String(s) => Some(s),
            other => {
                self.type_error(key, "a string", &other);
                None
            }
        }
    }

    fn non_empty_string(&mut self, key: &str) -> Option<String> {
        let s = self.string(key)?;
        if s.trim().is_empty() {
            self.error(key, "must not be empty");
            return None;
        }
        Some(s)
    }

    fn bool(&mut self, key: &str) -> Option<bool> {
        match self.take(key)? {
            Value::Boolean(b) => Some(b),
            other => {
                self.type_error(key, "a boolean (true or false)", &other);
                None
            }
        }
    }

    /// An integer of type `T`, at least `min` and, when given, at most `max` (beyond that, at
    /// most what `T` holds).
    fn int<T: TryFrom<i64>>(&mut self, key: &str, min: i64, max: Option<i64>) -> Option<T> {
        let v = match self.take(key)? {
            Value::Integer(v) => v,
            other => {
                self.type_error(key, "an integer", &other);
                return None;
            }
        };
        let in_range = v >= min && max.is_none_or(|max| v <= max);
        let message = match (in_range, max, T::try_from(v)) {
            (true, _, Ok(v)) => return Some(v),
            (false, Some(max), _) => format!("must be between {min} and {max}, found {v}"),
            (false, None, _) => format!("must be at least {min}, found {v}"),
            (true, _, Err(_)) => format!("too large, found {v}"),
        };
        self.error(key, message);
        None
    }

    fn path_buf(&mut self, key: &str) -> Option<PathBuf> {
        self.non_empty_string(key).map(PathBuf::from)
    }

    fn socket_addr(&mut self, key: &str) -> Option<SocketAddr> {
        let s = self.string(key)?;
        match s.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.error(key, format!("invalid socket address {s:?}"));
                None
            }
        }
    }

    fn url(&mut self, key: &str) -> Option<String> {
        let s = self.string(key)?;
        if !is_http_url(&s) {
            self.error(key, format!("expected an http:// or https:// URL, found {s:?}"));
            return None;
        }
        Some(s)
    }

    /// A wei amount or pixel count: a decimal integer string, or a non-negative TOML integer
    /// (kept as its decimal string). `positive` also refuses zero.
    fn decimal(&mut self, key: &str, positive: bool) -> Option<String> {
        let s = match self.take(key)? {
            Value::String(s) => s,
            Value::Integer(i) if i >= 0 => i.to_string(),
            other => {
                self.type_error(key, "a decimal integer string such as \"1000\"", &other);
                return None;
            }
        };
        if !is_decimal(&s) {
            self.error(key, format!("expected a decimal integer string such as \"1000\", found {s:?}"));
            return None;
        }
        if positive && s.bytes().all(|b| b == b'0') {
            self.error(key, "must be greater than 0");
            return None;
        }
        Some(s)
    }

    /// A decimal integer string for a price on the wire, where go-livepeer's `PriceInfo` (and
    /// ours) holds an int64: a larger value is an error, not a silent 0.
    fn price(&mut self, key: &str, positive: bool) -> Option<String> {
        let s = self.decimal(key, positive)?;
        if s.parse::<i64>().is_err() {
            self.error(key, format!("{s} is too large: prices on the wire are at most {} (an int64)", i64::MAX));
            return None;
        }
        Some(s)
    }

    /// One of `allowed`, named `what` in errors.
    fn one_of(&mut self, key: &str, what: &str, allowed: &[&str]) -> Option<String> {
        let s = self.string(key)?;
        if !allowed.contains(&s.as_str()) {
            let message = format!("unknown {what} {s:?}; expected one of {}", allowed.join(", "));
            self.error(key, message);
            return None;
        }
        Some(s)
    }

    /// An array of strings; with `check`, each element is checked too (errors name the index).
    fn string_list(&mut self, key: &str, check: Option<ItemCheck>) -> Option<Vec<String>> {
        let items = match self.take(key)? {
            Value::Array(items) => items,
            other => {
                self.type_error(key, "an array of strings", &other);
                return None;
            }
        };
        let mut list = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.into_iter().enumerate() {
            let item_key = format!("{key}[{i}]");
            match item {
                Value::String(s) => match check {
                    Some((is_valid, expected)) if !is_valid(&s) => {
                        self.error(&item_key, format!("expected {expected}, found {s:?}"));
                        ok = false;
                    }
                    _ => list.push(s),
                },
                other => {
                    self.type_error(&item_key, "a string", &other);
                    ok = false;
                }
            }
        }
        ok.then_some(list)
    }
}

fn read_config(table: Table, errors: &mut Vec<ConfigError>) -> Config {
    let defaults = Config::default();
    let mut top = Reader { prefix: String::new(), table, known: TOP_KEYS, errors };
    // A bad `network` is reported once; the [eth] checks below then stay quiet.
    let network = read_network(&mut top).or((!top.has_error("network")).then_some(defaults.network));
    let data_dir = top.path_buf("data_dir").unwrap_or(defaults.data_dir);
    let log = top.section("log").map(read_log).unwrap_or_default();
    let gateway = top.section("gateway").map(read_gateway);
    let orchestrator = top.section("orchestrator").map(read_orchestrator);
    let transcoder = top.section("transcoder").map(read_transcoder);
    let admin = top.section("admin").map(read_admin).unwrap_or_default();
    let eth = top.section("eth").map(read_eth);
    if let Some(network) = network {
        match (&eth, network) {
            (None, Network::Offchain) | (Some(_), Network::Devnet | Network::ArbitrumOneMainnet | Network::Custom) => {}
            (None, _) => top.error("eth", format!("network {:?} needs an [eth] section", network.as_str())),
            (Some(_), Network::Offchain) => {
                top.error("eth", "an [eth] section needs an on-chain network (devnet, arbitrum-one-mainnet, custom)")
            }
        }
        let needs_controller = matches!(network, Network::Devnet | Network::Custom);
        let controller_missing = eth.as_ref().is_some_and(|e| e.controller.is_none());
        if needs_controller && controller_missing && !top.has_error("eth.controller") {
            top.error("eth.controller", format!("required on network {:?}", network.as_str()));
        }
    }
    top.finish();
    Config {
        network: network.unwrap_or(defaults.network),
        data_dir,
        log,
        gateway,
        orchestrator,
        transcoder,
        admin,
        eth,
    }
}

fn is_address(s: &str) -> bool {
    s.len() == 42 && s.starts_with("0x") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn read_eth(mut r: Reader<'_>) -> EthConfig {
    let url = r.url("url");
    let password_file = r.path_buf("password_file");
    for (key, missing) in [("url", url.is_none()), ("password_file", password_file.is_none())] {
        if missing && !r.has_error(key) {
            r.error(key, "missing required key");
        }
    }
    let d = EthConfig::new("", "");
    let address = |r: &mut Reader<'_>, key: &str| {
        let s = r.string(key)?;
        if is_address(&s) {
            Some(s)
        } else {
            r.error(key, format!("expected an address (0x and 40 hex digits), found {s:?}"));
            None
        }
    };
    let controller = address(&mut r, "controller");
    let account = address(&mut r, "account");
    let eth = EthConfig {
        // Placeholders for missing keys: the errors above keep this config from being returned.
        url: url.unwrap_or_default(),
        controller,
        keystore: r.path_buf("keystore"),
        account,
        password_file: password_file.unwrap_or_default(),
        min_gas_price: r.decimal("min_gas_price", false).unwrap_or(d.min_gas_price),
        max_gas_price: r.decimal("max_gas_price", false).unwrap_or(d.max_gas_price),
        tx_timeout_secs: r.int("tx_timeout_secs", 1, None).unwrap_or(d.tx_timeout_secs),
        max_tx_replacements: r.int("max_tx_replacements", 0, Some(10)).unwrap_or(d.max_tx_replacements),
        block_poll_interval_secs: r.int("block_poll_interval_secs", 1, None).unwrap_or(d.block_poll_interval_secs),
        initialize_round: r.bool("initialize_round").unwrap_or(d.initialize_round),
        initialize_round_max_delay_secs: r
            .int("initialize_round_max_delay_secs", 0, None)
            .unwrap_or(d.initialize_round_max_delay_secs),
        reward: r.bool("reward").unwrap_or(d.reward),
    };
    r.finish();
    eth
}

fn read_network(r: &mut Reader<'_>) -> Option<Network> {
    let all = [Network::Offchain, Network::Devnet, Network::ArbitrumOneMainnet, Network::Custom];
    let names: Vec<&str> = all.iter().map(|n| n.as_str()).collect();
    let name = r.one_of("network", "network", &names)?;
    all.into_iter().find(|n| n.as_str() == name)
}

fn read_log(mut r: Reader<'_>) -> LogConfig {
    let d = LogConfig::default();
    let format = match r.one_of("format", "log format", &["pretty", "json"]).as_deref() {
        Some("json") => LogFormat::Json,
        Some(_) => LogFormat::Pretty,
        None => d.format,
    };
    let log = LogConfig { format, level: r.non_empty_string("level").unwrap_or(d.level) };
    r.finish();
    log
}

fn read_gateway(mut r: Reader<'_>) -> GatewayConfig {
    let d = GatewayConfig::default();
    let url_check: ItemCheck = (is_http_url, "an http:// or https:// URL");
    let gateway = GatewayConfig {
        http_addr: r.socket_addr("http_addr").unwrap_or(d.http_addr),
        orchestrators: r.string_list("orchestrators", Some(url_check)).unwrap_or(d.orchestrators),
        profiles: r.string_list("profiles", None).unwrap_or(d.profiles),
        profiles_file: r.path_buf("profiles_file"),
        max_segment_bytes: r.int("max_segment_bytes", 1, None).unwrap_or(d.max_segment_bytes),
        max_attempts: r.int("max_attempts", 1, Some(10)).unwrap_or(d.max_attempts),
        stream_idle_timeout_secs: r.int("stream_idle_timeout_secs", 1, None).unwrap_or(d.stream_idle_timeout_secs),
        body_timeout_secs: r.int("body_timeout_secs", 1, None).unwrap_or(d.body_timeout_secs),
        max_streams: r.int("max_streams", 1, None).unwrap_or(d.max_streams),
        segment_queue: r.int("segment_queue", 1, None).unwrap_or(d.segment_queue),
        hls_window: r.int("hls_window", 1, None).unwrap_or(d.hls_window),
        max_price_per_unit: r.price("max_price_per_unit", false).unwrap_or(d.max_price_per_unit),
        pixels_per_unit: r.price("pixels_per_unit", true).unwrap_or(d.pixels_per_unit),
    };
    r.finish();
    gateway
}

fn read_orchestrator(mut r: Reader<'_>) -> OrchestratorConfig {
    let d = OrchestratorConfig::default();
    let orchestrator = OrchestratorConfig {
        service_addr: r.socket_addr("service_addr").unwrap_or(d.service_addr),
        service_uri: r.url("service_uri"),
        tls: r.bool("tls").unwrap_or(d.tls),
        max_sessions: r.int("max_sessions", 1, None).unwrap_or(d.max_sessions),
        secret_file: r.path_buf("secret_file"),
        price_per_unit: r.price("price_per_unit", false).unwrap_or(d.price_per_unit),
        pixels_per_unit: r.price("pixels_per_unit", true).unwrap_or(d.pixels_per_unit),
        ticket_ev: r.decimal("ticket_ev", true).unwrap_or(d.ticket_ev),
        transcode: r.bool("transcode").unwrap_or(d.transcode),
        capacity: r.int("capacity", 1, None).unwrap_or(d.capacity),
        x264_preset: r.one_of("x264_preset", "x264 preset", X264_PRESETS).unwrap_or(d.x264_preset),
        session_idle_timeout_secs: r.int("session_idle_timeout_secs", 1, None).unwrap_or(d.session_idle_timeout_secs),
    };
    if !orchestrator.tls && !orchestrator.service_addr.ip().is_loopback() {
        r.error(
            "tls",
            format!(
                "tls = false (plain HTTP) is allowed only on a loopback service_addr, not {}",
                orchestrator.service_addr
            ),
        );
    }
    if !orchestrator.transcode && orchestrator.secret_file.is_none() && !r.has_error("secret_file") {
        r.error("secret_file", "required when transcode = false: remote transcoders need a shared secret");
    }
    r.finish();
    orchestrator
}

fn read_transcoder(mut r: Reader<'_>) -> TranscoderConfig {
    let orchestrator = r.url("orchestrator");
    let secret_file = r.path_buf("secret_file");
    for (key, missing) in [("orchestrator", orchestrator.is_none()), ("secret_file", secret_file.is_none())] {
        if missing && !r.has_error(key) {
            r.error(key, "missing required key");
        }
    }
    let transcoder = TranscoderConfig {
        // Placeholders for missing keys: the errors above keep this config from being returned.
        orchestrator: orchestrator.unwrap_or_default(),
        secret_file: secret_file.unwrap_or_default(),
        capacity: r.int("capacity", 1, None).unwrap_or(1),
        x264_preset: r.one_of("x264_preset", "x264 preset", X264_PRESETS).unwrap_or_else(crate::default_x264_preset),
    };
    r.finish();
    transcoder
}

fn read_admin(mut r: Reader<'_>) -> AdminConfig {
    let admin = AdminConfig { addr: r.socket_addr("addr").unwrap_or(AdminConfig::default().addr) };
    r.finish();
    admin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_value_takes_the_keys_type() {
        assert_eq!(env_value("20", Kind::Int), Value::Integer(20));
        assert_eq!(env_value("20", Kind::Str), Value::String("20".into()));
        assert_eq!(env_value("true", Kind::Bool), Value::Boolean(true));
        assert_eq!(env_value("yes", Kind::Bool), Value::String("yes".into()));
        assert_eq!(
            env_value(r#"["a", "b"]"#, Kind::StrList),
            Value::Array(vec![Value::String("a".into()), Value::String("b".into())])
        );
        assert_eq!(env_value("0.0.0.0:9935", Kind::Str), Value::String("0.0.0.0:9935".into()));
        assert_eq!(env_value("\"quoted\"", Kind::Str), Value::String("quoted".into()));
    }

    #[test]
    fn every_listed_key_is_read() {
        // A table holding every listed key with a valid value: reading it must leave nothing
        // unknown, so the key lists and the readers agree.
        let text = crate::Config {
            network: Network::Devnet,
            eth: Some(EthConfig {
                controller: Some(format!("0x{}", "ab".repeat(20))),
                keystore: Some("keys".into()),
                account: Some(format!("0x{}", "cd".repeat(20))),
                ..EthConfig::new("http://127.0.0.1:8545", "password.txt")
            }),
            gateway: Some(GatewayConfig { profiles_file: Some("p.json".into()), ..Default::default() }),
            orchestrator: Some(OrchestratorConfig {
                service_uri: Some("https://example.com:8935".into()),
                secret_file: Some("s".into()),
                ..Default::default()
            }),
            transcoder: Some(TranscoderConfig {
                orchestrator: "https://127.0.0.1:8935".into(),
                secret_file: "s".into(),
                capacity: 1,
                x264_preset: "fast".into(),
            }),
            ..Default::default()
        }
        .to_toml();
        let table: Table = text.parse().unwrap();
        for (name, kind) in TOP_KEYS {
            let value = table.get(*name).unwrap_or_else(|| panic!("{name} missing"));
            if let Kind::Section(keys) = kind {
                let section = value.as_table().unwrap();
                assert_eq!(section.len(), keys.len(), "[{name}]: {section:?}");
                for (key, _) in *keys {
                    assert!(section.contains_key(*key), "{name}.{key} missing");
                }
            }
        }
        assert_eq!(table.len(), TOP_KEYS.len());
        assert!(parse("config", &text, &[]).is_ok());
    }
}

//! Typed TOML configuration of every livepeer-rs role.
//!
//! One file may configure several roles: a role runs when its section (`[gateway]`,
//! `[orchestrator]`, `[transcoder]`, `[ai_worker]`) is present. [`Config::load`] reads a file, applies the
//! `LIVEPEER_*` environment overrides and validates everything, reporting **every** problem at once
//! (unknown keys, wrong types, invalid values, missing required keys), each naming its key.
//! [`Config::to_toml`] writes the effective configuration back (`--dump-config`).
//!
//! # Example
//!
//! Every key with its default, except where noted. Any key may be left out; an empty file is a
//! valid config that runs no role. The `deploy/` directory has one example per role. Amounts of
//! wei are written as [`Wei`] parses them: a whole number of wei (`"8000000000"`), or a number
//! with a unit, `wei`, `gwei` or `eth`, case-insensitive (`"8 gwei"`, `"0.001 ETH"`); a fraction
//! of a wei is an error. `--dump-config` writes them back in wei.
//!
//! ```toml
//! # Which network this node is on: "offchain" | "devnet" | "arbitrum-one-mainnet" | "custom".
//! # Every network but "offchain" needs an [eth] section (see below).
//! network = "offchain"
//! # Directory for the node's state: database, keys, the orchestrator's TLS certificate.
//! data_dir = ".livepeer"
//!
//! [log]
//! # "pretty" (human-readable) or "json" (one JSON object per line).
//! format = "pretty"
//! # A tracing EnvFilter directive: "info", "debug", "lp_actors=debug,info", ...
//! level = "info"
//!
//! [gateway]
//! # Where the gateway accepts segments (PUT/POST /live/{stream}/{seq}.ts) and serves HLS.
//! http_addr = "127.0.0.1:9935"
//! # Orchestrators to use (offchain discovery), each an http:// or https:// URL. Default: none.
//! orchestrators = ["https://127.0.0.1:8935"]
//! # Renditions to produce, by preset name.
//! profiles = ["P240p30fps16x9", "P360p30fps16x9"]
//! # A JSON file of custom profiles; when set it replaces `profiles`. Default: unset.
//! # profiles_file = "profiles.json"
//! # Largest accepted segment, in bytes.
//! max_segment_bytes = 300000000
//! # A segment upload that sends no byte for this long is refused with 408.
//! body_timeout_secs = 20
//! # How many orchestrators a segment is tried on before it fails (1..=10).
//! max_attempts = 3
//! # A stream with no new segment for this long is closed.
//! stream_idle_timeout_secs = 60
//! # Most streams served at once.
//! max_streams = 100
//! # Segments of one stream in flight at once.
//! segment_queue = 4
//! # Segments listed in each HLS media playlist.
//! hls_window = 6
//! # Seconds an ended stream's playlists (closed with #EXT-X-ENDLIST) stay readable.
//! hls_retention_secs = 600
//! # RTMP ingest: rtmp://HOST:PORT/live/{stream_key}, H.264 and AAC.
//! rtmp_addr = "127.0.0.1:1935"
//! # RTMP streams are cut into segments at the first keyframe after this many seconds (1..=10).
//! segment_secs = 2
//! # Also write every stream's segments and playlists here. Default: unset (no recording).
//! # record_dir = "/var/lib/livepeer/recordings"
//! # Stream authentication (go-livepeer's -authWebhookUrl): POST {"url": ...} on a stream's
//! # start; 200 admits it (a JSON body may set manifestID, streamID, profiles, presets), anything
//! # else refuses it. Default: unset (every stream is admitted).
//! # auth_webhook_url = "http://127.0.0.1:8000/auth"
//! # Highest price accepted, in wei per `pixels_per_unit` pixels, at most 9223372036854775807
//! # wei (the wire's int64); "0" = no cap.
//! max_price_per_unit = "0"
//! # The pixel count prices are quoted for (1 to 9223372036854775807).
//! pixels_per_unit = 1
//! # On-chain: the most one ticket may be worth, and the tickets of one payment together.
//! max_ticket_ev = "3000 gwei"
//! max_total_ev = "20000 gwei"
//! # On-chain: a ticket's face value is at most the deposit / deposit_multiplier (1..=1000).
//! deposit_multiplier = 1
//!
//! # The highest price paid for an AI pipeline, one [[gateway.ai_max_prices]] table each: for a
//! # model, or model_id = "default" for the pipeline's other models. Default: none (then
//! # max_price_per_unit caps AI prices too).
//! [[gateway.ai_max_prices]]
//! # The pipeline (required): image-to-image, upscale, llm, image-to-text.
//! pipeline = "upscale"
//! # The model, or "default".
//! model_id = "default"
//! # Wei per pixels_per_unit units (input pixels; tokens for llm) (required); "0" = no cap.
//! price_per_unit = "0"
//! pixels_per_unit = 1
//!
//! [orchestrator]
//! # Where the orchestrator listens for gateways and transcoders.
//! service_addr = "127.0.0.1:8935"
//! # The URI advertised to gateways. Default: derived from the bound address.
//! # service_uri = "https://203.0.113.7:8935"
//! # Serve HTTPS with a self-signed certificate made at first start. false (plain HTTP) is only
//! # allowed when service_addr is a loopback address.
//! tls = true
//! # Most transcoding sessions at once, or "auto": the streams `livepeer bench` measured this
//! # machine carries (it writes <data_dir>/bench.json) plus the connected remote transcoders'
//! # capacity.
//! max_sessions = 10
//! # The shared secret remote transcoders authenticate with; required when transcode = false.
//! # Default: unset (no remote transcoders).
//! secret_file = "secret.txt"
//! # Price in wei per `pixels_per_unit` pixels, at most 9223372036854775807 wei (an int64).
//! price_per_unit = "0"
//! pixels_per_unit = 1
//! # Expected value of one payment ticket (> 0): 8 gwei = "8000000000".
//! ticket_ev = "8 gwei"
//! # On-chain: the largest face value of a ticket; "0" = only the sender's reserve caps it.
//! max_face_value = "0"
//! # Transcode in this process, besides any remote transcoders.
//! transcode = true
//! # Segments the local transcoder works on at once (when transcode = true).
//! capacity = 1
//! # libx264 preset of the local transcoder.
//! x264_preset = "veryfast"
//! # Where the local transcoder decodes: "cpu", "nvdec" (GPU 0) or "nvdec:N".
//! video_decoder = "cpu"
//! # A session with no segment for this long is closed.
//! session_idle_timeout_secs = 70
//!
//! # AI models run on ONNX Runtime: the libonnxruntime.so to load (default: the one the
//! # ORT_DYLIB_PATH environment variable names; `make setup` installs one in build/onnxruntime).
//! # onnxruntime_path = "build/onnxruntime/libonnxruntime.so"
//! # Where models run: "cpu", "cuda" or "cuda:N" (the onnxruntime-gpu wheel's library).
//! ai_device = "cpu"
//! # Threads one model uses; 0 = every core.
//! ai_threads = 0
//! # MiB for cold models; past it the least recently used is unloaded.
//! ai_cold_memory_mb = 4096
//! # NudeNet's 320n.onnx: image answers with safety_check say whether they are nsfw.
//! # Default: unset (nsfw is always false).
//! # safety_model = "build/models/nudenet/320n.onnx"
//!
//! # The AI models offered, one [[orchestrator.models]] table each, one per pipeline and model.
//! # Default: none; this example offers one.
//! [[orchestrator.models]]
//! # The pipeline (required): image-to-image, upscale, llm, image-to-text.
//! pipeline = "upscale"
//! # The model, as gateways name it (required).
//! model_id = "realesr-x4"
//! # The ONNX file (a directory for image-to-text and llm). Default: unset, the model runs
//! # only on remote AI workers (`livepeer ai-worker`, which need secret_file).
//! path = "models/realesr-x4.onnx"
//! # Requests taken at once (1 to 8); one more is answered "insufficient capacity".
//! capacity = 1
//! # Price in wei per `pixels_per_unit` units of work (input pixels, or tokens for llm), at most
//! # 9223372036854775807 wei (an int64).
//! price_per_unit = "0"
//! pixels_per_unit = 1
//! # Load the model at start and keep it loaded, instead of loading it at the first request.
//! warm = false
//!
//! [transcoder]
//! # The orchestrator to work for (required).
//! orchestrator = "https://127.0.0.1:8935"
//! # The file holding the orchestrator's shared secret (required).
//! secret_file = "secret.txt"
//! # Segments transcoded at once.
//! capacity = 1
//! # libx264 preset: ultrafast superfast veryfast faster fast medium slow slower veryslow placebo.
//! x264_preset = "veryfast"
//! # Where segments are decoded: "cpu", "nvdec" (GPU 0) or "nvdec:N".
//! video_decoder = "cpu"
//!
//! [ai_worker]
//! # A remote AI worker (`livepeer ai-worker`): it dials the orchestrator's /transcoder WebSocket,
//! # as a transcoder does, and runs AI requests on its own models. The orchestrator to work for
//! # (required).
//! orchestrator = "https://127.0.0.1:8935"
//! # The file holding the orchestrator's shared secret (required).
//! secret_file = "secret.txt"
//! # ONNX Runtime, device, threads and cold-model memory, as for the orchestrator.
//! # onnxruntime_path = "build/onnxruntime/libonnxruntime.so"
//! ai_device = "cpu"
//! ai_threads = 0
//! ai_cold_memory_mb = 4096
//! # NudeNet's 320n.onnx: image answers with safety_check say whether they are nsfw.
//! # Default: unset (nsfw is always false).
//! # safety_model = "build/models/nudenet/320n.onnx"
//!
//! # The models served, one [[ai_worker.models]] table each (at least one; capacities add up to
//! # at most 8). Prices are the orchestrator's: it sends a worker requests only for the models
//! # its [[orchestrator.models]] lists.
//! [[ai_worker.models]]
//! # The pipeline (required): image-to-image, upscale, llm, image-to-text.
//! pipeline = "upscale"
//! # The model, as the orchestrator names it (required).
//! model_id = "realesr-x4"
//! # The ONNX file (a directory for image-to-text and llm) (required).
//! path = "models/realesr-x4.onnx"
//! # Requests taken at once (1 to 8).
//! capacity = 1
//! # Load the model at start and keep it loaded.
//! warm = false
//!
//! [admin]
//! # The admin listener: /metrics, /healthz, /status.
//! addr = "127.0.0.1:7935"
//!
//! # On-chain networks only (network = "devnet" | "arbitrum-one-mainnet" | "custom"):
//! # [eth]
//! # JSON-RPC URL of the chain (required).
//! # url = "http://127.0.0.1:8545"
//! # The Controller; required except on arbitrum-one-mainnet, whose controller is known.
//! # controller = "0xD8E8328501E9645d16Cf49539efC04f734606ee4"
//! # Keystore directory (JSON keystore files). Default: "<data_dir>/keystore"; a key is created
//! # there at first start when it holds none.
//! # keystore = "keystore"
//! # Which account of the keystore to use when it holds several. Default: the only one.
//! # account = "0x..."
//! # File holding the keystore password (required).
//! # password_file = "password.txt"
//! # Gas price bounds, in wei: the polled price is raised to min_gas_price; a transaction is
//! # refused when the price is above max_gas_price ("0" = no maximum). E.g. "0.01 gwei".
//! # min_gas_price = "0"
//! # max_gas_price = "0"
//! # A transaction not mined after this long is replaced with fees +11%, up to
//! # max_tx_replacements times.
//! # tx_timeout_secs = 300
//! # max_tx_replacements = 1
//! # Seconds between polls of the chain head, its logs and the gas price.
//! # block_poll_interval_secs = 5
//! # Initialize each new round after a random delay of up to initialize_round_max_delay_secs.
//! # initialize_round = false
//! # initialize_round_max_delay_secs = 30
//! # Call reward once per round while this account is an active orchestrator.
//! # reward = true
//! ```
//!
//! # Environment overrides
//!
//! `LIVEPEER_<KEY>` sets a top-level key and `LIVEPEER_<SECTION>__<KEY>` (double underscore) a key
//! of a section, e.g. `LIVEPEER_NETWORK=offchain`, `LIVEPEER_GATEWAY__HTTP_ADDR=0.0.0.0:9935`,
//! `LIVEPEER_ORCHESTRATOR__MAX_SESSIONS=20`, `LIVEPEER_GATEWAY__ORCHESTRATORS=["https://o:8935"]`.
//! Overrides apply after the file. See [`Config::from_toml_str`] for the exact rules.

#[macro_use]
mod section;
mod error;
mod read;
mod wei;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, ConfigErrors};
pub use wei::{ParseWeiError, Wei};

use read::{HTTP_URLS, WeiLimit};

section! {
    /// The whole configuration of one `livepeer` process.
    pub struct Config {
        /// Which network the node is on (`network`). Default `"offchain"`; the others need `[eth]`.
        network: Network = Network::Offchain => named,
        /// Directory for the node's state: database, keys, the orchestrator's self-signed
        /// certificate and its `livepeer bench` result (`data_dir`). Relative paths are relative
        /// to the working directory.
        /// Default `".livepeer"`.
        data_dir: PathBuf = PathBuf::from(".livepeer") => path_buf,
        /// Logging (`[log]`). Defaults apply when the section is absent.
        log: LogConfig = LogConfig::default() => section,
        /// The gateway role (`[gateway]`): present when the section is, even if empty.
        #[serde(skip_serializing_if = "Option::is_none")]
        gateway: Option<GatewayConfig> = None => section,
        /// The orchestrator role (`[orchestrator]`): present when the section is, even if empty.
        #[serde(skip_serializing_if = "Option::is_none")]
        orchestrator: Option<OrchestratorConfig> = None => section,
        /// The transcoder role (`[transcoder]`): present when the section is; then `orchestrator`
        /// and `secret_file` are required.
        #[serde(skip_serializing_if = "Option::is_none")]
        transcoder: Option<TranscoderConfig> = None => section,
        /// The AI worker role (`[ai_worker]`): present when the section is; then
        /// `orchestrator`, `secret_file` and one model at least are required.
        #[serde(skip_serializing_if = "Option::is_none")]
        ai_worker: Option<AiWorkerConfig> = None => section,
        /// The admin listener (`[admin]`), served by every role. Defaults apply when absent.
        admin: AdminConfig = AdminConfig::default() => section,
        /// The chain (`[eth]`): required on every network but offchain, refused offchain.
        #[serde(skip_serializing_if = "Option::is_none")]
        eth: Option<EthConfig> = None => section,
    }
    check = read::check_config;
}

/// The network a node is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// `"offchain"`: no chain, no payments settle; orchestrators are listed in the gateway's config.
    #[default]
    Offchain,
    /// `"devnet"`: the local chain started by `livepeer devnet`.
    Devnet,
    /// `"arbitrum-one-mainnet"`: the Livepeer protocol on Arbitrum One.
    ArbitrumOneMainnet,
    /// `"custom"`: any other chain, with its contract addresses given explicitly.
    Custom,
}

impl Network {
    /// The name used in the config file, e.g. `"arbitrum-one-mainnet"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Offchain => "offchain",
            Network::Devnet => "devnet",
            Network::ArbitrumOneMainnet => "arbitrum-one-mainnet",
            Network::Custom => "custom",
        }
    }
}

section! {
    /// Logging (`[log]`).
    pub struct LogConfig {
        /// Output format (`format`): `"pretty"` for people, `"json"` for log collectors.
        /// Default `"pretty"`.
        format: LogFormat = LogFormat::Pretty => named,
        /// What to log (`level`): a tracing `EnvFilter` directive such as `"info"`, `"debug"` or
        /// `"lp_actors=debug,info"`. Must not be empty. Default `"info"`.
        level: String = "info".to_string() => non_empty_string,
    }
}

/// The orchestrator's session cap (`max_sessions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxSessions {
    /// At most this many sessions (> 0).
    Fixed(u32),
    /// `"auto"`: the streams this machine carries, as `livepeer bench` measured them, plus the
    /// remote transcoders connected at the time (each one's own figure when it reports one,
    /// else its capacity).
    Auto,
}

impl Serialize for MaxSessions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MaxSessions::Fixed(n) => s.serialize_u32(*n),
            MaxSessions::Auto => s.serialize_str("auto"),
        }
    }
}

/// The log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// `"pretty"`: human-readable lines.
    #[default]
    Pretty,
    /// `"json"`: one JSON object per line.
    Json,
}

impl LogFormat {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        }
    }
}

section! {
    /// The gateway role (`[gateway]`): takes segments from broadcasters, has them transcoded by
    /// orchestrators and serves the renditions.
    pub struct GatewayConfig {
        /// Where the gateway listens for segments (`PUT|POST /live/{stream}/{seq}.ts`) and serves
        /// HLS (`http_addr`), as `IP:PORT`. Default `"127.0.0.1:9935"`.
        http_addr: SocketAddr = loopback(9935) => socket_addr,
        /// The orchestrators to use (`orchestrators`), each an `http://` or `https://` URL such as
        /// `"https://127.0.0.1:8935"`. Default `[]`.
        orchestrators: Vec<String> = Vec::new() => string_list(Some(HTTP_URLS)),
        /// The renditions to produce, by preset name (`profiles`), e.g. `"P720p30fps16x9"`; the
        /// node checks the names. Ignored when `profiles_file` is set.
        /// Default `["P240p30fps16x9", "P360p30fps16x9"]`.
        profiles: Vec<String> = vec!["P240p30fps16x9".to_string(), "P360p30fps16x9".to_string()]
            => string_list(None),
        /// A JSON file of custom profiles (`profiles_file`); when set it replaces `profiles`. Read
        /// by the node, not when the config is loaded. Default: unset.
        #[serde(skip_serializing_if = "Option::is_none")]
        profiles_file: Option<PathBuf> = None => path_buf,
        /// The largest segment accepted, in bytes (`max_segment_bytes`); larger uploads are
        /// refused with 413. Must be > 0. Default `300000000` (go-livepeer's `MaxSegSize`).
        max_segment_bytes: u64 = 300_000_000 => int(1, None),
        /// How many orchestrators one segment is tried on before it fails (`max_attempts`), 1 to
        /// 10. Default `3`.
        max_attempts: u32 = 3 => int(1, Some(10)),
        /// Seconds without a new segment after which a stream is closed
        /// (`stream_idle_timeout_secs`). Must be > 0. Default `60`.
        stream_idle_timeout_secs: u64 = 60 => int(1, None),
        /// Seconds a segment upload may go without sending a byte before it is refused with 408
        /// (`body_timeout_secs`); a live pusher sends a segment as it is made, so this is a
        /// silence, not a total. Must be > 0. Default `20`.
        body_timeout_secs: u64 = 20 => int(1, None),
        /// The most streams served at once (`max_streams`), and the most RTMP connections open at
        /// once (one more is closed at once). Must be > 0. Default `100`.
        max_streams: u32 = 100 => int(1, None),
        /// Segments of one stream in flight at once (`segment_queue`). Must be > 0. Default `4`.
        segment_queue: usize = 4 => int(1, None),
        /// Segments listed in each HLS media playlist (`hls_window`). Must be > 0. Default `6`.
        hls_window: usize = 6 => int(1, None),
        /// Seconds an ended stream's playlists (closed with `#EXT-X-ENDLIST`) and last segments
        /// stay readable (`hls_retention_secs`). Must be > 0. Default `600`.
        hls_retention_secs: u64 = 600 => int(1, None),
        /// Where the gateway takes RTMP (`rtmp_addr`): `rtmp://HOST:PORT/live/{stream_key}`
        /// from OBS or ffmpeg, H.264 and AAC, as `IP:PORT`. Default `"127.0.0.1:1935"`.
        rtmp_addr: SocketAddr = loopback(1935) => socket_addr,
        /// The length RTMP streams are cut into segments of, at the first keyframe after it, in
        /// seconds (`segment_secs`), 1 to 10. Default `2`.
        segment_secs: u64 = 2 => int(1, Some(10)),
        /// A directory where every stream's segments and playlists are also written as they
        /// arrive (`record_dir`): `{stream}/{start time}/index.m3u8`, one recording per run of
        /// the stream. Default: unset (nothing is recorded).
        #[serde(skip_serializing_if = "Option::is_none")]
        record_dir: Option<PathBuf> = None => path_buf,
        /// go-livepeer's stream authentication webhook (`auth_webhook_url`), an `http://` or
        /// `https://` URL: on a stream's start the gateway POSTs `{"url": "<ingest URL>"}`; 200
        /// with an empty body admits it, 200 with JSON (`manifestID`, `streamID`, `profiles`,
        /// `presets`) admits it under that id and with those renditions; anything else, or no
        /// answer within 5 s, refuses it. Default: unset (every stream is admitted).
        #[serde(skip_serializing_if = "Option::is_none")]
        auth_webhook_url: Option<String> = None => url,
        /// The highest price accepted, in wei per `pixels_per_unit` pixels
        /// (`max_price_per_unit`), at most 9223372036854775807 wei (the wire's int64); zero
        /// means no cap. Default `"0"`.
        max_price_per_unit: Wei = Wei::ZERO => wei(WeiLimit::WIRE_PRICE),
        /// The pixel count `max_price_per_unit` is quoted for (`pixels_per_unit`), 1 to
        /// 9223372036854775807 (the wire's int64). Default `1`.
        pixels_per_unit: u64 = 1 => pixel_count,
        /// On-chain: the most one payment ticket may be worth, in wei (`max_ticket_ev`); an
        /// orchestrator asking for more is not paid. Must be > 0. Default `"3000 gwei"`
        /// (go-livepeer's `-maxTicketEV`).
        max_ticket_ev: Wei = Wei::from(3_000_000_000_000) => wei(WeiLimit::POSITIVE),
        /// On-chain: the most the tickets of one payment may be worth together, in wei
        /// (`max_total_ev`). Must be > 0. Default `"20000 gwei"` (go-livepeer's `-maxTotalEV`).
        max_total_ev: Wei = Wei::from(20_000_000_000_000) => wei(WeiLimit::POSITIVE),
        /// On-chain: a ticket's face value may be at most the gateway's deposit divided by this
        /// (`deposit_multiplier`), 1 to 1000. Default `1` (go-livepeer's `-depositMultiplier`).
        deposit_multiplier: u64 = 1 => int(1, Some(1000)),
        /// The highest price accepted per AI pipeline or model (`[[gateway.ai_max_prices]]`),
        /// one table each (go-livepeer's `-maxPricePerCapability`). A request's cap is its
        /// model's entry, else its pipeline's `"default"` entry, else `max_price_per_unit`.
        /// Default: none.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        ai_max_prices: Vec<AiPriceConfig> = Vec::new() => tables,
    }
}

section! {
    /// The highest price a gateway pays for an AI pipeline's work (one
    /// `[[gateway.ai_max_prices]]` table).
    pub struct AiPriceConfig {
        required {
            /// The pipeline (`pipeline`), one of [`AI_PIPELINES`]. Required.
            pipeline: String => one_of("AI pipeline", AI_PIPELINES),
            /// The highest price, in wei per `pixels_per_unit` units (input pixels, or tokens for
            /// llm) (`price_per_unit`), at most 9223372036854775807 wei; zero means no cap.
            /// Required.
            price_per_unit: Wei => wei(WeiLimit::WIRE_PRICE),
        }
        /// The model it is for (`model_id`), or `"default"` for every model of the pipeline
        /// without an entry of its own. Default `"default"`.
        model_id: String = "default".to_string() => non_empty_string,
        /// The unit count `price_per_unit` is quoted for (`pixels_per_unit`). Default `1`.
        pixels_per_unit: u64 = 1 => pixel_count,
    }
}

section! {
    /// The orchestrator role (`[orchestrator]`): sells transcoding to gateways, doing the work
    /// itself or handing it to remote transcoders.
    pub struct OrchestratorConfig {
        /// Where the orchestrator listens for gateways and transcoders (`service_addr`), as
        /// `IP:PORT`. Default `"127.0.0.1:8935"`.
        service_addr: SocketAddr = loopback(8935) => socket_addr,
        /// The URI advertised to gateways (`service_uri`), an `http://` or `https://` URL.
        /// Default: unset, derived by the node from the bound address.
        #[serde(skip_serializing_if = "Option::is_none")]
        service_uri: Option<String> = None => url,
        /// Serve HTTPS with a self-signed certificate made at first start (`tls`). `false` (plain
        /// HTTP) is allowed only when `service_addr` is a loopback address. Default `true`.
        tls: bool = true => bool,
        /// The most transcoding sessions at once (`max_sessions`): a number > 0, or `"auto"` for
        /// what this machine carries (the streams `livepeer bench` found at a real-time duration
        /// ratio of at most 0.8, read from `<data_dir>/bench.json`, when `transcode = true`) plus
        /// the remote transcoders connected at the time: each one's own `livepeer bench` figure
        /// when it reports one, else its capacity, each slot counted as a session (go-livepeer's
        /// `auto`). Default `10`.
        max_sessions: MaxSessions = MaxSessions::Fixed(10) => max_sessions,
        /// The file holding the shared secret remote transcoders authenticate with
        /// (`secret_file`). Required when `transcode = false`. Read by the node, not when the
        /// config is loaded. Default: unset (no remote transcoders).
        #[serde(skip_serializing_if = "Option::is_none")]
        secret_file: Option<PathBuf> = None => path_buf,
        /// The price of transcoding, in wei per `pixels_per_unit` pixels (`price_per_unit`), at
        /// most 9223372036854775807 wei (the wire's int64). Default `"0"`.
        price_per_unit: Wei = Wei::ZERO => wei(WeiLimit::WIRE_PRICE),
        /// The pixel count `price_per_unit` is quoted for (`pixels_per_unit`), 1 to
        /// 9223372036854775807 (the wire's int64). Default `1`.
        pixels_per_unit: u64 = 1 => pixel_count,
        /// The expected value of one payment ticket, in wei (`ticket_ev`). Must be > 0.
        /// Default `"8000000000"` (8 gwei).
        ticket_ev: Wei = Wei::from(8_000_000_000) => wei(WeiLimit::POSITIVE),
        /// On-chain: the largest face value a ticket may have, in wei (`max_face_value`); `"0"`
        /// means no cap beyond the sender's reserve. Default `"0"`.
        max_face_value: Wei = Wei::ZERO => wei(WeiLimit::ANY),
        /// Transcode in this process, besides any remote transcoders (`transcode`). With `false`
        /// all work goes to remote transcoders, and `secret_file` is required. Default `true`.
        transcode: bool = true => bool,
        /// Segments the local transcoder works on at once when `transcode = true` (`capacity`).
        /// Must be > 0. Default `1`.
        capacity: u32 = 1 => int(1, None),
        /// The libx264 preset of the local transcoder (`x264_preset`): one of `ultrafast`,
        /// `superfast`, `veryfast`, `faster`, `fast`, `medium`, `slow`, `slower`, `veryslow`,
        /// `placebo`. Default `"veryfast"`.
        x264_preset: String = DEFAULT_X264_PRESET.to_string() => one_of("x264 preset", X264_PRESETS),
        /// Where the local transcoder decodes segments (`video_decoder`): `"cpu"`, or `"nvdec"`
        /// / `"nvdec:N"` for an NVIDIA GPU's NVDEC (scaling and x264 stay on the CPU). The GPU
        /// is opened at start, and a missing one or its driver stops the start. Default `"cpu"`.
        video_decoder: String = "cpu".to_string() => video_decoder,
        /// Seconds without a segment after which a transcoding session is closed
        /// (`session_idle_timeout_secs`). Must be > 0. Default `70` (go-livepeer's
        /// `transcodeLoopTimeout`).
        session_idle_timeout_secs: u64 = 70 => int(1, None),
        /// The ONNX Runtime library AI models run on (`onnxruntime_path`), a
        /// `libonnxruntime.so` (`make setup` installs one at
        /// `build/onnxruntime/libonnxruntime.so`, from the `onnxruntime` wheel on PyPI; the
        /// `onnxruntime-gpu` wheel's has CUDA). Default: unset, the `ORT_DYLIB_PATH`
        /// environment variable names it. Needed only with `models`.
        #[serde(skip_serializing_if = "Option::is_none")]
        onnxruntime_path: Option<PathBuf> = None => path_buf,
        /// Where AI models run (`ai_device`): `"cpu"`, or `"cuda"` / `"cuda:N"` for a GPU
        /// through ONNX Runtime's CUDA execution provider. Default `"cpu"`.
        ai_device: String = "cpu".to_string() => device,
        /// Threads one AI model uses (`ai_threads`); 0 lets ONNX Runtime use every core.
        /// Default `0`.
        ai_threads: u32 = 0 => int(0, Some(1024)),
        /// Memory for cold AI models, in MiB (`ai_cold_memory_mb`): past it the cold model
        /// used least recently is unloaded (a model counts its files' size). Warm models do not
        /// count. Default `4096`.
        ai_cold_memory_mb: u64 = 4096 => int(1, None),
        /// The safety model (`safety_model`): NudeNet's `320n.onnx` (`make setup` puts it at
        /// `build/models/nudenet/320n.onnx`, from the `nudenet` wheel). With it, an image
        /// answer of a request with `safety_check` true says whether it is `nsfw`. Default:
        /// unset (`nsfw` is always false).
        #[serde(skip_serializing_if = "Option::is_none")]
        safety_model: Option<PathBuf> = None => path_buf,
        /// The AI models offered (`[[orchestrator.models]]`), one table each; one entry per
        /// pipeline and model. Default: none.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        models: Vec<ModelConfig> = Vec::new() => tables,
    }
    check = read::check_orchestrator;
}

section! {
    /// An AI model the orchestrator offers (one `[[orchestrator.models]]` table), as in
    /// go-livepeer's `aiModels.json`.
    pub struct ModelConfig {
        required {
            /// The pipeline (`pipeline`), one of [`AI_PIPELINES`], e.g. `"upscale"`.
            /// Required.
            pipeline: String => one_of("AI pipeline", AI_PIPELINES),
            /// The model (`model_id`), as gateways name it, e.g. `"realesr-x4"`. Required, not
            /// empty.
            model_id: String => non_empty_string,
        }
        /// The model (`path`): an ONNX file for `upscale` and `image-to-image`; a directory
        /// for `image-to-text` (`det.onnx`, `rec.onnx`: PP-OCR) and `llm` (`model.onnx`,
        /// `tokenizer.json`). Read by the node, not when the config is loaded. Default: unset,
        /// the orchestrator does not run the model itself and only remote AI workers
        /// (`livepeer ai-worker`, which need `secret_file`) serve it.
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf> = None => path_buf,
        /// Requests for this model the orchestrator takes at once (`capacity`), 1 to 8, on its
        /// own inference worker; remote AI workers add theirs. One more is answered
        /// "insufficient capacity" (503), and the gateway tries another orchestrator. Default
        /// `1`.
        capacity: u32 = 1 => int(1, Some(8)),
        /// The price, in wei per `pixels_per_unit` units of the pipeline's work (pixels, ms of
        /// audio, tokens: see `docs/reference/ai.md`) (`price_per_unit`), at most
        /// 9223372036854775807 wei (the wire's int64). Default `"0"`.
        price_per_unit: Wei = Wei::ZERO => wei(WeiLimit::WIRE_PRICE),
        /// The unit count `price_per_unit` is quoted for (`pixels_per_unit`), 1 to
        /// 9223372036854775807. Default `1`.
        pixels_per_unit: u64 = 1 => pixel_count,
        /// Load the model at start and keep it loaded (`warm`), instead of loading it for the
        /// first request. Default `false`.
        warm: bool = false => bool,
    }
}

/// The AI pipelines `pipeline` accepts: those this build serves, by go-livepeer's names
/// (`docs/reference/ai.md` §1.2).
pub const AI_PIPELINES: &[&str] = &["image-to-image", "upscale", "llm", "image-to-text"];

section! {
    /// The transcoder role (`[transcoder]`): a remote worker that dials an orchestrator and
    /// transcodes the segments it is given.
    pub struct TranscoderConfig {
        required {
            /// The orchestrator to work for (`orchestrator`), an `http://` or `https://` URL such
            /// as `"https://127.0.0.1:8935"`. Required.
            orchestrator: String => url,
            /// The file holding the orchestrator's shared secret (`secret_file`). Required. Read
            /// by the node, not when the config is loaded.
            secret_file: PathBuf => path_buf,
        }
        /// Segments transcoded at once (`capacity`). Must be > 0. Default `1`.
        capacity: u32 = 1 => int(1, None),
        /// The libx264 preset (`x264_preset`), as for the orchestrator. Default `"veryfast"`.
        x264_preset: String = DEFAULT_X264_PRESET.to_string() => one_of("x264 preset", X264_PRESETS),
        /// Where segments are decoded (`video_decoder`), as for the orchestrator. Default
        /// `"cpu"`.
        video_decoder: String = "cpu".to_string() => video_decoder,
    }
}

section! {
    /// The AI worker role (`[ai_worker]`): a remote worker that dials an orchestrator and runs
    /// the AI requests it is given on its own models (`livepeer ai-worker`). The orchestrator
    /// decides what is offered and at what price (`[[orchestrator.models]]`); a worker adds
    /// capacity for the models it serves.
    pub struct AiWorkerConfig {
        required {
            /// The orchestrator to work for (`orchestrator`), an `http://` or `https://` URL such
            /// as `"https://127.0.0.1:8935"`. Required.
            orchestrator: String => url,
            /// The file holding the orchestrator's shared secret (`secret_file`). Required. Read
            /// by the node, not when the config is loaded.
            secret_file: PathBuf => path_buf,
        }
        /// The ONNX Runtime library (`onnxruntime_path`), as for the orchestrator. Default:
        /// unset, the `ORT_DYLIB_PATH` environment variable names it.
        #[serde(skip_serializing_if = "Option::is_none")]
        onnxruntime_path: Option<PathBuf> = None => path_buf,
        /// Where the models run (`ai_device`), as for the orchestrator. Default `"cpu"`.
        ai_device: String = "cpu".to_string() => device,
        /// Threads one model uses (`ai_threads`); 0 lets ONNX Runtime use every core. Default `0`.
        ai_threads: u32 = 0 => int(0, Some(1024)),
        /// Memory for cold models, in MiB (`ai_cold_memory_mb`), as for the orchestrator.
        /// Default `4096`.
        ai_cold_memory_mb: u64 = 4096 => int(1, None),
        /// The safety model (`safety_model`), as for the orchestrator. Default: unset.
        #[serde(skip_serializing_if = "Option::is_none")]
        safety_model: Option<PathBuf> = None => path_buf,
        /// The models served (`[[ai_worker.models]]`), one table each, at least one; their
        /// capacities add up to at most 8.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        models: Vec<WorkerModelConfig> = Vec::new() => tables,
    }
    check = read::check_ai_worker;
}

section! {
    /// A model an AI worker serves (one `[[ai_worker.models]]` table). Its price is the
    /// orchestrator's business: an orchestrator routes a request to the worker only for a model
    /// its own `[[orchestrator.models]]` lists.
    pub struct WorkerModelConfig {
        required {
            /// The pipeline (`pipeline`), one of [`AI_PIPELINES`]. Required.
            pipeline: String => one_of("AI pipeline", AI_PIPELINES),
            /// The model (`model_id`), as the orchestrator's config names it. Required, not empty.
            model_id: String => non_empty_string,
            /// The model's file or directory (`path`), as for `[[orchestrator.models]]`.
            /// Required. Read by the node, not when the config is loaded.
            path: PathBuf => path_buf,
        }
        /// Requests for this model the worker takes at once (`capacity`), 1 to 8. Default `1`.
        capacity: u32 = 1 => int(1, Some(8)),
        /// Load the model at start and keep it loaded (`warm`). Default `false`.
        warm: bool = false => bool,
    }
}

section! {
    /// The admin listener (`[admin]`), served by every role: `/metrics`, `/healthz`, `/status`.
    pub struct AdminConfig {
        /// Where the admin listener listens (`addr`), as `IP:PORT`. Default `"127.0.0.1:7935"`.
        addr: SocketAddr = loopback(7935) => socket_addr,
    }
}

section! {
    /// The chain connection and on-chain behaviour (`[eth]`).
    pub struct EthConfig {
        required {
            /// JSON-RPC URL of the chain (`url`), `http://` or `https://`. Required. Credentials
            /// in it are never logged.
            url: String => url,
            /// File holding the keystore password (`password_file`). Required.
            password_file: PathBuf => path_buf,
        }
        /// The Controller's address (`controller`), `0x` + 40 hex digits. Required except on
        /// `arbitrum-one-mainnet`, whose controller is known. Every other address is resolved
        /// through it.
        #[serde(skip_serializing_if = "Option::is_none")]
        controller: Option<String> = None => address,
        /// Keystore directory (`keystore`). Default: `<data_dir>/keystore`. A key is created there
        /// at first start when it holds none.
        #[serde(skip_serializing_if = "Option::is_none")]
        keystore: Option<PathBuf> = None => path_buf,
        /// The account to use when the keystore holds several (`account`). Default: the only one.
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String> = None => address,
        /// Lowest gas price used, in wei (`min_gas_price`). Default `"0"`.
        min_gas_price: Wei = Wei::ZERO => wei(WeiLimit::GAS_PRICE),
        /// Transactions are refused while the gas price is above this, in wei
        /// (`max_gas_price`); zero means no maximum. Default `"0"`.
        max_gas_price: Wei = Wei::ZERO => wei(WeiLimit::GAS_PRICE),
        /// A transaction not mined after this many seconds is replaced with fees +11%
        /// (`tx_timeout_secs`). Default `300`.
        tx_timeout_secs: u64 = 300 => int(1, None),
        /// How many times a stuck transaction is replaced before giving up
        /// (`max_tx_replacements`), 0 to 10. Default `1`.
        max_tx_replacements: u32 = 1 => int(0, Some(10)),
        /// Seconds between polls of the chain head, its logs and the gas price
        /// (`block_poll_interval_secs`). Default `5`.
        block_poll_interval_secs: u64 = 5 => int(1, None),
        /// Initialize each new round (`initialize_round`). Default `false`.
        initialize_round: bool = false => bool,
        /// Longest random delay before initializing a round, in seconds
        /// (`initialize_round_max_delay_secs`). Default `30`.
        initialize_round_max_delay_secs: u64 = 30 => int(0, None),
        /// Call `reward` once per round while this account is an active orchestrator (`reward`).
        /// Default `true`.
        reward: bool = true => bool,
    }
}

/// The libx264 presets accepted by `x264_preset`, fastest first.
pub const X264_PRESETS: &[&str] =
    &["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"];

/// The default `x264_preset`.
const DEFAULT_X264_PRESET: &str = "veryfast";

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// The prefix of every environment override.
const ENV_PREFIX: &str = "LIVEPEER_";

impl Config {
    /// Parse TOML text, apply environment overrides, validate. Collects EVERY error (unknown keys,
    /// wrong types, invalid values, missing required keys) instead of stopping at the first.
    ///
    /// Only a TOML syntax error stops early: it is then the single error, keyed `config`.
    ///
    /// `env` holds `(name, value)` pairs, usually [`Config::env_overrides`]. Names that do not
    /// start with `LIVEPEER_` are ignored. The rules:
    ///
    /// - `LIVEPEER_<KEY>` sets the top-level key `<key>`; `LIVEPEER_<SECTION>__<KEY>` (double
    ///   underscore) sets `<key>` in `[<section>]`. The name after `LIVEPEER_` is lowercased, so
    ///   `LIVEPEER_GATEWAY__HTTP_ADDR` sets `gateway.http_addr`.
    /// - The value is taken as a TOML value when it parses as one of the key's type (an integer,
    ///   a boolean, an array such as `["a","b"]`, or a quoted string); otherwise it is the string
    ///   itself, unquoted. A value of the wrong type then fails validation like a wrong value in
    ///   the file, and the error names the variable.
    /// - Setting a key of an absent section creates the section, so an override can enable a
    ///   role (`LIVEPEER_GATEWAY__HTTP_ADDR=...` alone runs a gateway with defaults otherwise).
    /// - A variable naming no known key is an error keyed by the variable's name, as is one
    ///   naming a section itself (`LIVEPEER_GATEWAY`) or with more than one `__`.
    /// - Overrides apply after the file: the variable wins over the file for its key, the file's
    ///   other values stand. With the same variable listed twice, the later wins.
    pub fn from_toml_str(text: &str, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
        read::parse("config", text, env)
    }

    /// Read the file (an unreadable file is one error), then as [`Config::from_toml_str`].
    /// Errors about the file itself (unreadable, TOML syntax) are keyed by its path.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
        let origin = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => read::parse(&origin, &text, env),
            Err(e) => Err(ConfigErrors(vec![ConfigError::new(origin, format!("cannot read the config file: {e}"))])),
        }
    }

    /// As [`Config::load`] (or [`Config::from_toml_str`] of an empty text without a path), but
    /// every error together with the config as read: keys with errors keep their defaults, so
    /// the caller can run its own checks (profile files, secrets) and report everything at once.
    /// The config is `None` when the file cannot be read or is not TOML.
    pub fn load_all(path: Option<&Path>, env: &[(String, String)]) -> (Option<Config>, Vec<ConfigError>) {
        let Some(path) = path else { return read::parse_all("config", "", env) };
        let origin = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => read::parse_all(&origin, &text, env),
            Err(e) => (None, vec![ConfigError::new(origin, format!("cannot read the config file: {e}"))]),
        }
    }

    /// The effective config as TOML (for `--dump-config`), every key written out, unset optional
    /// keys left out. For any config returned by [`Config::from_toml_str`],
    /// `Config::from_toml_str(&cfg.to_toml(), &[]) == Ok(cfg)`.
    pub fn to_toml(&self) -> String {
        // Only a number beyond i64 (not representable in TOML, so never produced by loading)
        // can make serialization fail.
        toml::to_string(self).unwrap_or_else(|e| format!("# the configuration cannot be written as TOML: {e}\n"))
    }

    /// Environment overrides from the process environment: the variables starting with
    /// `LIVEPEER_`, sorted by name. Non-UTF-8 names are skipped; non-UTF-8 values are converted
    /// lossily.
    pub fn env_overrides() -> Vec<(String, String)> {
        Self::overrides_in(std::env::vars_os())
    }

    /// [`Config::env_overrides`] of the environment `vars`.
    pub fn overrides_in(
        vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let name = name.into_string().ok()?;
                name.starts_with(ENV_PREFIX).then(|| (name, value.to_string_lossy().into_owned()))
            })
            .collect();
        vars.sort();
        vars
    }
}

#[cfg(test)]
mod doc_example;

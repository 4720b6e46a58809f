//! Metric names and recording helpers. Names are go-livepeer's (`monitor/census.go`) where it has
//! the same metric, so existing dashboards keep working. Labels have bounded values: error codes
//! and profile sets, never a stream id.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use lp_wire::ErrorCode;

pub const SEGMENT_SOURCE_APPEARED: &str = "livepeer_segment_source_appeared_total";
pub const SEGMENT_TRANSCODED: &str = "livepeer_segment_transcoded_total";
pub const SEGMENT_TRANSCODE_FAILED: &str = "livepeer_segment_transcode_failed_total";
pub const TRANSCODE_TIME: &str = "livepeer_transcode_time_seconds";
pub const TRANSCODE_OVERALL_LATENCY: &str = "livepeer_transcode_overall_latency_seconds";
pub const TRANSCODE_RETRIED: &str = "livepeer_transcode_retried";
pub const CURRENT_SESSIONS: &str = "livepeer_current_sessions_total";
pub const MAX_SESSIONS: &str = "livepeer_max_sessions_total";
pub const TRANSCODERS_NUMBER: &str = "livepeer_transcoders_number";
pub const TRANSCODERS_CAPACITY: &str = "livepeer_transcoders_capacity";
pub const TRANSCODERS_LOAD: &str = "livepeer_transcoders_load";
pub const STREAM_CREATED: &str = "livepeer_stream_created_total";
pub const STREAM_ENDED: &str = "livepeer_stream_ended_total";
pub const RECORDING_ERRORS: &str = "livepeer_recording_errors_total";
pub const WORKER_RESTARTS: &str = "livepeer_transcode_worker_restarts_total";
pub const MIL_PIXELS_PROCESSED: &str = "livepeer_mil_pixels_processed";
pub const TRANSCODE_ABANDONED: &str = "livepeer_transcode_abandoned_total";
pub const AI_WORKERS_NUMBER: &str = "livepeer_ai_workers_number";
pub const AI_WORKERS_CAPACITY: &str = "livepeer_ai_workers_capacity";
pub const AI_WORKERS_LOAD: &str = "livepeer_ai_workers_load";
pub const AI_ABANDONED: &str = "livepeer_ai_abandoned_total";
pub const AI_WORKER_RESTARTS: &str = "livepeer_ai_worker_restarts_total";
/// Gateway side: AI requests served, by pipeline and model (go-livepeer's name).
pub const AI_REQUEST_COUNT: &str = "livepeer_ai_request_count";
/// Gateway side: seconds the last AI request took, by pipeline and model (go-livepeer's name;
/// ours is the whole request's time, not per pixel and step).
pub const AI_REQUEST_LATENCY: &str = "livepeer_ai_request_latency_score";
/// Gateway side: AI request attempts that failed, by pipeline, model and `error_code`
/// (`insufficient_capacity`, `bad_request`, `orchestrator_error`, `unreachable`,
/// `no_orchestrator`) (go-livepeer's name).
pub const AI_REQUEST_ERRORS: &str = "livepeer_ai_request_errors";
/// Orchestrator side: seconds one AI job took on its worker, by pipeline.
pub const AI_JOB_TIME: &str = "livepeer_ai_job_time_seconds";
/// Seconds a model took to load, by pipeline.
pub const AI_MODEL_LOAD_TIME: &str = "livepeer_ai_model_load_seconds";
/// Cold models evicted to make room for another, by the evicted model's pipeline.
pub const AI_MODEL_EVICTIONS: &str = "livepeer_ai_model_evictions_total";
pub const ACTOR_RESTARTS: &str = "livepeer_actor_restarts_total";
pub const ACTOR_FAILURES: &str = "livepeer_actor_failures_total";
/// What winning tickets redeemed by this node paid it, in gwei (go-livepeer's `value_redeemed`
/// and its unit).
pub const VALUE_REDEEMED: &str = "livepeer_value_redeemed";
/// Attempts at a winning ticket that did not redeem it, by `error` (go-livepeer's
/// `ticket_redemption_errors`, with a label of [`REDEMPTION_ERRORS`]).
pub const TICKET_REDEMPTION_ERRORS: &str = "livepeer_ticket_redemption_errors";
/// The values of the `error` label of [`TICKET_REDEMPTION_ERRORS`]: `used` (redeemed by another
/// transaction first), `expired`, `no_block_hash` (its creation round has none), `revert` (any
/// other refusal of the broker), `unprofitable` (face value or the sender's funds not above the
/// transaction's cost), `rpc`, `gas_price` (above the maximum), `timeout` (not mined), `other`.
pub const REDEMPTION_ERRORS: &[&str] =
    &["used", "expired", "no_block_hash", "revert", "unprofitable", "rpc", "gas_price", "timeout", "other"];

/// Register descriptions (the `# HELP` lines) and declare every series at zero, so that a
/// scrape shows them (and `rate()` works) before their first event (histograms excepted: the
/// exporter renders them from their first observation). Call once after
/// installing a recorder.
pub fn describe() {
    describe_only();
    crate::payment::describe();
    for code in ErrorCode::ALL {
        counter!(SEGMENT_TRANSCODE_FAILED, "error_code" => code.as_str()).increment(0);
    }
    for stage in ["queued", "running"] {
        counter!(TRANSCODE_ABANDONED, "stage" => stage).increment(0);
        counter!(AI_ABANDONED, "stage" => stage).increment(0);
    }
    counter!(SEGMENT_SOURCE_APPEARED, "seg_type" => "live").increment(0);
    for name in [
        SEGMENT_TRANSCODED,
        STREAM_CREATED,
        STREAM_ENDED,
        RECORDING_ERRORS,
        WORKER_RESTARTS,
        AI_WORKER_RESTARTS,
        MIL_PIXELS_PROCESSED,
    ] {
        counter!(name).increment(0);
    }
    counter!(crate::chain::reward_caller::REWARD_CALL_ERRORS).increment(0);
    counter!(crate::chain::round_initializer::ROUND_INITIALIZE_ERRORS).increment(0);
    counter!(VALUE_REDEEMED).increment(0);
    for error in REDEMPTION_ERRORS {
        counter!(TICKET_REDEMPTION_ERRORS, "error" => *error).increment(0);
    }
    for name in [
        CURRENT_SESSIONS,
        MAX_SESSIONS,
        TRANSCODERS_NUMBER,
        TRANSCODERS_CAPACITY,
        TRANSCODERS_LOAD,
        AI_WORKERS_NUMBER,
        AI_WORKERS_CAPACITY,
        AI_WORKERS_LOAD,
    ] {
        gauge!(name).increment(0.0);
    }
    // Histograms: the Prometheus exporter shows them from their first observation.
}

fn describe_only() {
    describe_counter!(SEGMENT_SOURCE_APPEARED, "Source segments received by the gateway's ingest");
    describe_counter!(SEGMENT_TRANSCODED, "Segments transcoded into every rendition");
    describe_counter!(SEGMENT_TRANSCODE_FAILED, "Segments that failed, by error_code");
    describe_histogram!(TRANSCODE_TIME, "Orchestrator-side transcode time of a segment, seconds");
    describe_histogram!(
        TRANSCODE_OVERALL_LATENCY,
        "Gateway-side time from a segment's arrival to its renditions, seconds"
    );
    describe_counter!(TRANSCODE_RETRIED, "Segment attempts after the first, by try");
    describe_gauge!(CURRENT_SESSIONS, "Gateway sessions the orchestrator currently serves");
    describe_gauge!(
        MAX_SESSIONS,
        "The orchestrator's max_sessions now (with auto: the measured local streams plus the remote transcoders' capacity)"
    );
    describe_gauge!(TRANSCODERS_NUMBER, "Transcoders registered with the orchestrator");
    describe_gauge!(TRANSCODERS_CAPACITY, "Total capacity of the registered transcoders");
    describe_gauge!(TRANSCODERS_LOAD, "Segments the registered transcoders are working on");
    describe_gauge!(AI_WORKERS_NUMBER, "AI workers registered, once per model each serves");
    describe_gauge!(AI_WORKERS_CAPACITY, "Concurrent AI jobs the registered workers take, over their models");
    describe_gauge!(AI_WORKERS_LOAD, "AI jobs the registered workers are running");
    describe_counter!(AI_WORKER_RESTARTS, "Local AI workers restarted after a crash");
    describe_counter!(AI_REQUEST_COUNT, "AI requests the gateway had served, by pipeline and model_id");
    describe_gauge!(AI_REQUEST_LATENCY, "Seconds the gateway's last AI request took, by pipeline and model_id");
    describe_counter!(
        AI_REQUEST_ERRORS,
        "AI request attempts that failed at the gateway, by pipeline, model_id and error_code"
    );
    describe_histogram!(AI_JOB_TIME, "Orchestrator-side time of one AI job on its worker, seconds, by pipeline");
    describe_histogram!(AI_MODEL_LOAD_TIME, "Time a model took to load, seconds, by pipeline");
    describe_counter!(
        AI_MODEL_EVICTIONS,
        "Cold models evicted to make room for another, by the evicted model's pipeline"
    );
    describe_counter!(AI_ABANDONED, "AI jobs dropped because their caller stopped waiting, by stage");
    describe_counter!(STREAM_CREATED, "Streams the gateway started");
    describe_counter!(STREAM_ENDED, "Streams the gateway ended (publisher gone, idle timeout or deleted)");
    describe_counter!(RECORDING_ERRORS, "Recording writes (record_dir) that failed or were dropped");
    describe_counter!(WORKER_RESTARTS, "Transcode workers restarted after a crash");
    describe_counter!(MIL_PIXELS_PROCESSED, "Millions of pixels transcoded by the orchestrator");
    describe_counter!(
        TRANSCODE_ABANDONED,
        "Segments the orchestrator dropped because their gateway stopped waiting, by stage (queued, running)"
    );
    describe_counter!(ACTOR_RESTARTS, "Actors restarted in place after a panic, by actor");
    describe_counter!(ACTOR_FAILURES, "Actors not restarted after panicking too often, by actor");
    describe_counter!(crate::chain::reward_caller::REWARD_CALL_ERRORS, "Failed reward calls (each retry counts)");
    describe_gauge!(
        crate::chain::reward_caller::LAST_REWARD_ROUND,
        "The last round the reward caller found rewarded (by its own call or another of the account's)"
    );
    describe_counter!(
        crate::chain::round_initializer::ROUND_INITIALIZE_ERRORS,
        "Failed initializeRound calls (each retry counts)"
    );
    describe_counter!(VALUE_REDEEMED, "Value of the winning tickets this node redeemed, gwei");
    describe_counter!(TICKET_REDEMPTION_ERRORS, "Winning ticket attempts that did not redeem it, by error");
}

static REDEEMED: crate::payment::GweiCounter = crate::payment::GweiCounter::new(VALUE_REDEEMED);

/// One attempt at a winning ticket: redeemed by us (`error` `None`), the value it paid counted;
/// or not, counted by `error` (one of [`REDEMPTION_ERRORS`]).
pub fn ticket_redemption(error: Option<&'static str>, outcome: &lp_chain::db::TicketOutcome) {
    match error {
        None => {
            if let lp_chain::db::TicketOutcome::Redeemed { paid: Some(paid), .. } = outcome {
                REDEEMED.add(*paid);
            }
        }
        Some(error) => counter!(TICKET_REDEMPTION_ERRORS, "error" => error).increment(1),
    }
}

/// A job of a worker pool (`kind` `transcode` or `ai`) dropped because its caller stopped
/// waiting, by `stage` (`queued`, `running`).
pub fn job_abandoned(kind: &'static str, stage: &'static str) {
    match kind {
        "transcode" => counter!(TRANSCODE_ABANDONED, "stage" => stage).increment(1),
        _ => counter!(AI_ABANDONED, "stage" => stage).increment(1),
    }
}

pub fn segment_appeared() {
    counter!(SEGMENT_SOURCE_APPEARED, "seg_type" => "live").increment(1);
}

pub fn segment_transcoded(latency_secs: f64) {
    counter!(SEGMENT_TRANSCODED).increment(1);
    histogram!(TRANSCODE_OVERALL_LATENCY).record(latency_secs);
}

pub fn segment_failed(code: ErrorCode) {
    counter!(SEGMENT_TRANSCODE_FAILED, "error_code" => code.as_str()).increment(1);
}

/// Declare `livepeer_transcode_retried` at zero for each try a gateway with `max_attempts`
/// makes after the first.
pub fn declare_retries(max_attempts: u32) {
    for attempt in 2..=max_attempts {
        counter!(TRANSCODE_RETRIED, "try" => attempt.to_string()).increment(0);
    }
}

pub fn transcode_retried(attempt: u32) {
    counter!(TRANSCODE_RETRIED, "try" => attempt.to_string()).increment(1);
}

pub fn transcode_time(secs: f64, pixels: u64) {
    histogram!(TRANSCODE_TIME).record(secs);
    counter!(MIL_PIXELS_PROCESSED).increment(pixels / 1_000_000);
}

pub fn sessions(current: usize, max: u32) {
    gauge!(CURRENT_SESSIONS).set(current as f64);
    max_sessions(max);
}

/// The session cap now (`max_sessions = "auto"` follows the remote transcoders).
pub fn max_sessions(max: u32) {
    gauge!(MAX_SESSIONS).set(max as f64);
}

/// The workers of a pool (`kind` `transcode` or `ai`; an AI worker counts once per model it
/// serves), their capacity and their load.
pub fn workers(kind: &'static str, number: usize, capacity: u32, load: u32) {
    let names = match kind {
        "transcode" => [TRANSCODERS_NUMBER, TRANSCODERS_CAPACITY, TRANSCODERS_LOAD],
        _ => [AI_WORKERS_NUMBER, AI_WORKERS_CAPACITY, AI_WORKERS_LOAD],
    };
    for (name, value) in names.into_iter().zip([number as f64, capacity as f64, load as f64]) {
        gauge!(name).set(value);
    }
}

pub fn stream_created() {
    counter!(STREAM_CREATED).increment(1);
}

pub fn stream_ended() {
    counter!(STREAM_ENDED).increment(1);
}

pub fn recording_error() {
    counter!(RECORDING_ERRORS).increment(1);
}

pub fn ai_request(pipeline: &'static str, model: &str, secs: f64) {
    counter!(AI_REQUEST_COUNT, "pipeline" => pipeline, "model_id" => model.to_string()).increment(1);
    gauge!(AI_REQUEST_LATENCY, "pipeline" => pipeline, "model_id" => model.to_string()).set(secs);
}

pub fn ai_request_error(pipeline: &'static str, model: &str, error: &'static str) {
    counter!(AI_REQUEST_ERRORS, "pipeline" => pipeline, "model_id" => model.to_string(), "error_code" => error)
        .increment(1);
}

pub fn ai_job_done(pipeline: &'static str, secs: f64) {
    histogram!(AI_JOB_TIME, "pipeline" => pipeline).record(secs);
}

pub fn ai_model_loaded(pipeline: &'static str, secs: f64) {
    histogram!(AI_MODEL_LOAD_TIME, "pipeline" => pipeline).record(secs);
}

pub fn ai_model_evicted(pipeline: &'static str) {
    counter!(AI_MODEL_EVICTIONS, "pipeline" => pipeline).increment(1);
}

/// A local worker (`kind` `transcode` or `ai`) restarted after a crash.
pub fn worker_restarted(kind: &'static str) {
    match kind {
        "transcode" => counter!(WORKER_RESTARTS).increment(1),
        _ => counter!(AI_WORKER_RESTARTS).increment(1),
    }
}

/// Declare an actor kind's restart and failure series at zero when it first starts.
pub fn actor_declared(actor: &'static str) {
    counter!(ACTOR_RESTARTS, "actor" => actor).increment(0);
    counter!(ACTOR_FAILURES, "actor" => actor).increment(0);
}

pub fn actor_restarted(actor: &'static str) {
    counter!(ACTOR_RESTARTS, "actor" => actor).increment(1);
}

pub fn actor_failed(actor: &'static str) {
    counter!(ACTOR_FAILURES, "actor" => actor).increment(1);
}

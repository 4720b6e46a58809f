//! go-livepeer's stream authentication webhook (`-authWebhookUrl`, `server/auth.go`): on a
//! stream's start the gateway POSTs `{"url": "<ingest URL>"}`. A 200 with an empty body admits
//! the stream as it is; a 200 with a JSON body admits it under its `manifestID` (required
//! there) with its `profiles` (go-livepeer's JSON profiles) or `presets` (preset names), if
//! any. Any other status, a body that does not parse, or no answer within [`WEBHOOK_TIMEOUT`]
//! refuses the stream: the gateway fails closed.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lp_pipelines::Profile;

/// How long the webhook is waited for.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer read.
const MAX_ANSWER_BYTES: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct AuthWebhook {
    url: String,
}

/// What the webhook decided for an admitted stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookAnswer {
    /// The stream's id (its HLS path); `None`: the stream key.
    pub manifest_id: Option<String>,
    /// The operator's own stream id, for the logs.
    pub stream_id: Option<String>,
    /// The renditions; `None`: the gateway's.
    pub profiles: Option<Vec<Profile>>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    #[error("the auth webhook is unreachable: {0}")]
    Unreachable(String),
    #[error("the auth webhook refused the stream (HTTP {status}: {body})")]
    Refused { status: u16, body: String },
    #[error("the auth webhook's answer is not usable: {0}")]
    BadAnswer(String),
}

impl AuthWebhook {
    pub fn new(url: String) -> Self {
        AuthWebhook { url }
    }

    /// Ask whether the stream coming in at `ingest_url` may start.
    pub async fn authenticate(&self, ingest_url: &str) -> Result<WebhookAnswer, WebhookError> {
        let client = awc::Client::builder()
            .connector(awc::Connector::new().rustls_0_23(tls_config()).timeout(WEBHOOK_TIMEOUT))
            .timeout(WEBHOOK_TIMEOUT)
            .finish();
        let mut resp = client
            .post(&self.url)
            .send_json(&serde_json::json!({ "url": ingest_url }))
            .await
            .map_err(|e| WebhookError::Unreachable(format!("{}: {e}", self.url)))?;
        let body = resp
            .body()
            .limit(MAX_ANSWER_BYTES)
            .await
            .map_err(|e| WebhookError::Unreachable(format!("{}: reading the answer: {e}", self.url)))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let body = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(WebhookError::Refused { status, body });
        }
        parse_answer(&body)
    }
}

/// The answer, read as go-livepeer reads its `authWebhookResponse` (Go's JSON decoding matches
/// field names regardless of case): an empty body admits as is; otherwise `manifestID` is
/// required, and the renditions are the known `presets` (unknown ones skipped) followed by the
/// `profiles`.
fn parse_answer(body: &[u8]) -> Result<WebhookAnswer, WebhookError> {
    if body.is_empty() {
        return Ok(WebhookAnswer::default());
    }
    let bad = |m: String| WebhookError::BadAnswer(m);
    let answer: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let field = |name: &str| answer.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    let text = |name: &str| field(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let manifest_id = text("manifestID");
    if manifest_id.is_empty() {
        return Err(bad("empty manifestID".into()));
    }
    if !crate::http::gateway::valid_name(&manifest_id) {
        return Err(bad(format!("manifestID {manifest_id:?} is not 1-128 characters of A-Z a-z 0-9 _ -")));
    }
    let mut profiles: Vec<Profile> = field("presets")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|name| lp_pipelines::preset(name.as_str()?))
        .collect();
    if let Some(list) = field("profiles").and_then(|v| v.as_array()).filter(|l| !l.is_empty()) {
        let json = serde_json::Value::Array(list.clone()).to_string();
        profiles.extend(lp_pipelines::profiles_from_json(&json).map_err(|e| bad(format!("profiles: {e}")))?);
    }
    if !profiles.is_empty() {
        lp_pipelines::validate_profiles(&profiles).map_err(|e| bad(format!("profiles: {e}")))?;
    }
    let stream_id = text("streamID");
    Ok(WebhookAnswer {
        manifest_id: Some(manifest_id),
        stream_id: (!stream_id.is_empty()).then_some(stream_id),
        profiles: (!profiles.is_empty()).then_some(profiles),
    })
}

/// TLS to the webhook checks its certificate (made once per process).
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| Arc::new(crate::tls::verified_client_config())).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_as_go_livepeer_writes_them() {
        assert_eq!(parse_answer(b"").unwrap(), WebhookAnswer::default());
        let a = parse_answer(
            br#"{"manifestID":"abc","streamID":"s-1","profiles":[{"name":"low","width":320,"height":180,"bitrate":200000,"fps":30}]}"#,
        )
        .unwrap();
        assert_eq!(a.manifest_id.as_deref(), Some("abc"));
        assert_eq!(a.stream_id.as_deref(), Some("s-1"));
        let p = &a.profiles.unwrap()[0];
        assert_eq!((p.name.as_str(), p.width, p.height), ("low", 320, 180));
        // Keys in any case, as Go decodes them; known presets first (an unknown one skipped),
        // then the profiles.
        let a = parse_answer(
            br#"{"manifestId":"abc","presets":["P144p30fps16x9","P9000p"],"profiles":[{"name":"low","width":320,"height":180,"bitrate":200000}]}"#,
        )
        .unwrap();
        let names: Vec<String> = a.profiles.unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["P144p30fps16x9", "low"]);
    }

    #[test]
    fn unusable_answers_refuse_the_stream() {
        for (body, why) in [
            (&br#"{"streamID":"x"}"#[..], "empty manifestID"),
            (b"not json", "expected ident"),
            (br#"{"manifestID":"../x"}"#, "is not 1-128 characters"),
            (br#"{"manifestID":"a","profiles":[{"name":"x","width":1}]}"#, "profiles"),
            (b" ", "EOF while parsing"),
        ] {
            let e = parse_answer(body).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }
}

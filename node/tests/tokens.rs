//! An expired auth token at the orchestrator's HTTP port: `/segment` and `/endSession` answer
//! 403 `AuthFailed` "expired auth token", and a fresh token from `/getOrchestrator` is taken
//! again. The orchestrator issues tokens valid for three seconds (go-livepeer's are valid for 30
//! minutes), so the test sees one expire.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{App, test, web};
use base64::Engine;
use lp_actors::orchestrator::{Links, OrchestratorHandle, OrchestratorSettings};
use lp_actors::supervision::Watchdog;
use lp_node::http::orchestrator::{self, OrchestratorState};
use lp_wire::{AuthToken, EndSession, ErrorCode, OrchestratorInfo, OrchestratorRequest, TranscodeFailure};

fn segment(token: &AuthToken, data: &[u8]) -> String {
    let seg = lp_actors::testing::seg_data(Some(token.clone()), data);
    base64::engine::general_purpose::STANDARD.encode(lp_wire::encode(&seg))
}

#[actix::test]
async fn an_expired_token_is_refused_and_a_fresh_one_taken() {
    let settings =
        OrchestratorSettings { auth_token_validity: Duration::from_secs(3), ..OrchestratorSettings::offchain("o", 4) };
    let state = OrchestratorState {
        orchestrator: OrchestratorHandle::start(settings, &Watchdog::new()),
        secret: None,
        links: Links::default(),
    };
    let app = test::init_service(App::new().app_data(web::Data::new(state)).configure(orchestrator::configure)).await;
    let terms = || {
        let body = lp_wire::encode(&OrchestratorRequest::default());
        test::TestRequest::post().uri("/getOrchestrator").set_payload(body).to_request()
    };
    let data = b"not a real segment: no transcoder is asked before the token is checked".to_vec();
    let submit = |token: &AuthToken| {
        test::TestRequest::post()
            .uri("/segment")
            .insert_header(("Livepeer-Segment", segment(token, &data)))
            .set_payload(data.clone())
            .to_request()
    };
    let end = |token: &AuthToken| {
        let body = lp_wire::encode(&EndSession { auth_token: token.clone() });
        test::TestRequest::post().uri("/endSession").set_payload(body).to_request()
    };

    let info: OrchestratorInfo = lp_wire::decode(&test::call_and_read_body(&app, terms()).await).unwrap();
    let old = info.auth_token.expect("a token");
    // Past the token's expiration (whole seconds since the epoch).
    while SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 <= old.expiration {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    for request in [submit(&old), end(&old)] {
        let path = request.path().to_string();
        let resp = test::call_service(&app, request).await;
        assert_eq!(resp.status(), 403, "{path}");
        let failure: TranscodeFailure = lp_wire::decode(&test::read_body(resp).await).unwrap();
        assert_eq!(failure.code, ErrorCode::AuthFailed, "{path}: {failure}");
        assert_eq!(failure.message, "expired auth token", "{path}");
    }

    // Fresh terms: the new token is accepted (the segment then fails on its bytes, not its token).
    let info: OrchestratorInfo = lp_wire::decode(&test::call_and_read_body(&app, terms()).await).unwrap();
    let fresh = info.auth_token.expect("a token");
    assert!(fresh.expiration > old.expiration);
    let resp = test::call_service(&app, submit(&fresh)).await;
    let status = resp.status();
    assert_ne!(status, 403, "{:?}", test::read_body(resp).await);
    assert_eq!(test::call_service(&app, end(&fresh)).await.status(), 200);
}

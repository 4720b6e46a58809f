//! The Grafana dashboard in deploy/ charts only metrics the node records, so it never rots.

#[test]
fn every_metric_the_dashboard_charts_exists() {
    let text = include_str!("../../deploy/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    let mut checked = 0;
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for (at, _) in expr.match_indices("livepeer_") {
                let name: String = expr[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                let base = name.strip_suffix("_bucket").unwrap_or(&name);
                assert!(lp_actors::metrics::ALL.contains(&base), "{} charts unknown metric {name}", panel["title"]);
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} metric references found");
}

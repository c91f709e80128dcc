//! Plugins through the facade: `coldstart::telemetry::plugin!` at link time and
//! `Builder::plugin` in code, in one priority order.

use coldstart::telemetry::plugin::Plugin;

struct Named(&'static str);

impl Plugin for Named {
    fn name(&self) -> &str {
        self.0
    }
}

coldstart::telemetry::plugin!(AUDIT: Named = Named("audit"), priority = 100);

#[test]
fn link_time_and_builder_plugins_run_in_priority_order() {
    let order = coldstart::Builder::new()
        .set("COLDSTART_METRICS_ADDR", "off")
        .set("OTEL_TRACES_EXPORTER", "none")
        .plugin(-1, Named("first"))
        .plugin(100, Named("alphabetically-before-audit"))
        .block_on(async {
            coldstart::telemetry::plugin::order()
                .iter()
                .map(|p| p.name().to_owned())
                .collect::<Vec<_>>()
        });
    assert_eq!(order, ["first", "alphabetically-before-audit", "audit"]);
}

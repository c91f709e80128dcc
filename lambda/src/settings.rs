//! The Lambda settings in use: those telemetry was installed with, else read once
//! from the environment and the configuration file.

use std::sync::OnceLock;

/// `COLDSTART_LAMBDA_FLUSH_TIMEOUT`, `COLDSTART_LAMBDA_EXTENSION`,
/// `COLDSTART_EMF_NAMESPACE`.
pub(crate) type Settings = coldstart_exporters::config::Lambda;

/// The settings: from the installed telemetry's configuration (all layers), else
/// from the environment and the configuration file (code sets none here), with bad
/// values reported once and their defaults used.
pub(crate) fn current() -> Settings {
    static FROM_ENV: OnceLock<Settings> = OnceLock::new();
    if let Some(config) = coldstart_exporters::installed() {
        return config.lambda.clone();
    }
    FROM_ENV
        .get_or_init(|| {
            // The layers telemetry would have read, the configuration file's included
            // (a build without telemetry installs none).
            let env = coldstart_bootstrap::Env::process()
                .with_file_from_env()
                .unwrap_or_else(|e| {
                    coldstart_bootstrap::say!(
                        "coldstart: {e}; the Lambda settings are read from the environment alone"
                    );
                    coldstart_bootstrap::Env::process()
                });
            let (config, errors) = coldstart_exporters::Config::from(&env);
            for e in errors
                .iter()
                .filter(|e| e.key.contains("LAMBDA") || e.key.contains("EMF"))
            {
                coldstart_bootstrap::say!("coldstart: {e}");
            }
            config.lambda
        })
        .clone()
}

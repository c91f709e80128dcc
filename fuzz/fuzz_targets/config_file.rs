//! The configuration file (`coldstart.toml`, `config/<env>.toml`): any text parses or
//! is refused naming the file and a line; what parses is then read by the plan and the
//! telemetry settings as the variables it sets, which accept or refuse each value.
#![no_main]

use coldstart_bootstrap::config::ConfigFile;
use coldstart_bootstrap::{Env, Plan, Probe};

libfuzzer_sys::fuzz_target!(|text: &str| {
    let file = match ConfigFile::parse("coldstart.toml", text) {
        Ok(file) => file,
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("coldstart.toml"), "{message}");
            return;
        }
    };
    let vars: Vec<(&str, String)> = coldstart_bootstrap::config::VARIABLES
        .iter()
        .filter_map(|v| file.get(v).map(|entry| (*v, entry.value.clone())))
        .collect();
    let env = Env::fixed(vars);
    let budget = Probe::new().env(env.clone()).run();
    if let Ok(plan) = Plan::from_budget(&budget, &Default::default(), &env) {
        assert!((1..=1024).contains(&plan.worker_threads.value));
    }
    let _ = coldstart_exporters::Config::from(&env);
});

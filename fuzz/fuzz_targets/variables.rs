//! Every variable coldstart reads but the file and profile paths, set to any value: the
//! plan, the telemetry settings and the Lambda function's settings each accept it or
//! refuse it with a message that names the variable; nothing panics.
#![no_main]

use arbitrary::Arbitrary;
use coldstart_bootstrap::config::VARIABLES;
use coldstart_bootstrap::{Env, Plan, Probe};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// (which variable, by index into the list coldstart reads; its value).
    vars: Vec<(u8, &'a str)>,
}

/// The Lambda function's variables, which the list of coldstart's own leaves out.
const LAMBDA: [&str; 7] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_REGION",
];

/// Read from the environment only, and not files (the configuration and profile
/// paths, which the `config_file` and `init_profile` targets cover by their content).
const ENVIRONMENT: [&str; 2] = ["TOKIO_WORKER_THREADS", "RUST_LOG"];

libfuzzer_sys::fuzz_target!(|input: Input<'_>| {
    let names: Vec<&'static str> = VARIABLES
        .iter()
        .chain(&LAMBDA)
        .chain(&ENVIRONMENT)
        .copied()
        .collect();
    let vars: Vec<(&str, &str)> = input
        .vars
        .iter()
        .map(|(i, v)| (names[usize::from(*i) % names.len()], *v))
        .collect();
    check(&vars);
});

fn check(vars: &[(&'static str, &str)]) {
    let env = Env::fixed(vars.iter().copied());
    // The probe of this machine, with the variables that change it (Lambda's memory).
    let budget = Probe::new().env(env.clone()).run();
    match Plan::from_budget(&budget, &Default::default(), &env) {
        Ok(plan) => assert!((1..=1024).contains(&plan.worker_threads.value)),
        Err(e) => {
            let message = e.to_string();
            assert!(
                vars.iter().any(|(name, _)| message.contains(name)),
                "the plan's error names no variable that was set: {message}"
            );
        }
    }
    let (_config, errors) = coldstart_exporters::Config::from(&env);
    for e in errors {
        let message = e.to_string();
        assert!(
            vars.iter().any(|(name, _)| message.contains(name)),
            "a telemetry setting's error names no variable that was set: {message}"
        );
    }
    let lookup = |key: &str| {
        vars.iter()
            .rev()
            .find(|(name, _)| *name == key)
            .map(|(_, v)| (*v).to_owned())
    };
    if let Err(e) = coldstart_lambda::Function::from_lookup(lookup) {
        let message = e.to_string();
        let named = coldstart_lambda::REQUIRED
            .iter()
            .chain(vars.iter().map(|(name, _)| name))
            .any(|name| message.contains(name));
        assert!(
            named,
            "the Lambda settings' error names no variable: {message}"
        );
    }
}

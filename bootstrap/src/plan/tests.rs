use super::*;
use crate::{Figure, Probe, Source};

fn budget(cores: Option<f64>, memory: Option<u64>) -> Budget {
    let mut b = Probe::new().root("/nonexistent").host(2, 8 << 30).run();
    b.cpu_cores = cores.map_or_else(
        || Figure::unknown("test"),
        |c| Figure::known(c, Source::Given),
    );
    b.memory_bytes = memory.map_or_else(
        || Figure::unknown("test"),
        |m| Figure::known(m, Source::Given),
    );
    b
}

fn none() -> Env {
    Env::fixed::<&str, &str>([])
}

#[test]
fn quarter_cpu_is_minimal_current_thread() {
    let plan =
        Plan::from_budget(&budget(Some(0.25), Some(1 << 30)), &Settings::NONE, &none()).unwrap();
    assert_eq!(plan.strategy.value, Strategy::Minimal);
    assert_eq!(plan.flavor.value, Flavor::CurrentThread);
    assert_eq!(plan.worker_threads.value, 1);
    assert_eq!(
        plan.strategy.reason.to_string(),
        "CPU 0.25 cores is at most 1"
    );
    let one =
        Plan::from_budget(&budget(Some(1.0), Some(1 << 30)), &Settings::NONE, &none()).unwrap();
    assert_eq!(
        one.flavor.value,
        Flavor::CurrentThread,
        "one core of quota: no parallel capacity"
    );
}

#[test]
fn small_memory_is_minimal_even_with_cpus() {
    let plan =
        Plan::from_budget(&budget(Some(2.0), Some(64 << 20)), &Settings::NONE, &none()).unwrap();
    assert_eq!(plan.strategy.value, Strategy::Minimal);
    assert_eq!(plan.max_blocking_threads.value, 16, "64 MiB / 4 MiB");
    assert_eq!(plan.allocator.value.purge_delay_ms, Some(0));
}

#[test]
fn fractional_cores_round_up_within_the_affinity_mask() {
    let plan =
        Plan::from_budget(&budget(Some(1.5), Some(1 << 30)), &Settings::NONE, &none()).unwrap();
    assert_eq!(plan.strategy.value, Strategy::Balanced);
    assert_eq!(
        plan.worker_threads.reason.to_string(),
        "one worker per started core of 1.50"
    );
    assert_eq!(plan.flavor.value, Flavor::MultiThread);
    assert_eq!(plan.worker_threads.value, 2);
    let plan =
        Plan::from_budget(&budget(Some(8.0), Some(4 << 30)), &Settings::NONE, &none()).unwrap();
    assert_eq!(plan.strategy.value, Strategy::Throughput);
    assert_eq!(
        plan.worker_threads.value, 2,
        "never more workers than CPUs in the mask"
    );
}

/// A quota a hair above a whole core is that core, as the reasons show it: Lambda at
/// 1770 MB (1.0006 vCPU) is one core, not a multi-thread runtime of two workers.
#[test]
fn a_hair_above_a_whole_core_is_that_core() {
    let plan = Plan::from_budget(
        &budget(Some(1770.0 / 1769.0), Some(1770 << 20)),
        &Settings::NONE,
        &none(),
    )
    .unwrap();
    assert_eq!(plan.strategy.value, Strategy::Minimal);
    assert_eq!(plan.worker_threads.value, 1);
    assert_eq!(plan.cores, 1.0);
    let plan =
        Plan::from_budget(&budget(Some(1.01), Some(1 << 30)), &Settings::NONE, &none()).unwrap();
    assert_eq!(
        plan.strategy.value,
        Strategy::Balanced,
        "a hundredth more counts"
    );
    assert_eq!(plan.worker_threads.value, 2);
    let tiny = Plan::from_budget(
        &budget(Some(0.001), Some(1 << 30)),
        &Settings::NONE,
        &none(),
    )
    .unwrap();
    assert_eq!(tiny.cores, 0.001, "no quota is rounded to none");
}

#[test]
fn unknown_budget_plans_for_the_host_and_says_so() {
    let plan = Plan::from_budget(&budget(None, None), &Settings::NONE, &none()).unwrap();
    assert_eq!(plan.cores, 2.0);
    assert_eq!(plan.strategy.value, Strategy::Balanced);
    let small = Plan::from_budget(&budget(Some(0.5), None), &Settings::NONE, &none()).unwrap();
    assert!(small.strategy.reason.to_string().contains("0.50 cores"));
}

#[test]
fn variables_beat_attributes_beat_the_plan() {
    let b = budget(Some(0.25), Some(1 << 30));
    let attr = Settings {
        worker_threads: Some(3),
        ..Settings::NONE
    };
    let plan = Plan::from_budget(&b, &attr, &none()).unwrap();
    assert_eq!(plan.worker_threads.value, 3);
    assert_eq!(
        plan.flavor.value,
        Flavor::MultiThread,
        "a worker count asks for multi_thread"
    );
    assert_eq!(
        plan.worker_threads.reason.to_string(),
        "set by attribute argument `worker_threads`"
    );

    let env = Env::fixed([
        ("COLDSTART_WORKER_THREADS", "5"),
        ("COLDSTART_STRATEGY", "throughput"),
    ]);
    let plan = Plan::from_budget(&b, &attr, &env).unwrap();
    assert_eq!(plan.worker_threads.value, 5);
    assert_eq!(plan.strategy.value, Strategy::Throughput);
    assert_eq!(
        plan.worker_threads.reason.origin,
        Origin::Env("COLDSTART_WORKER_THREADS")
    );
}

#[test]
fn tokio_worker_threads_counts_only_without_a_count_in_code() {
    let b = budget(Some(2.0), Some(1 << 30));
    let env = Env::fixed([("TOKIO_WORKER_THREADS", "7")]);
    let plan = Plan::from_budget(&b, &Settings::NONE, &env).unwrap();
    assert_eq!(plan.worker_threads.value, 7);
    let attr = Settings {
        worker_threads: Some(2),
        ..Settings::NONE
    };
    assert_eq!(
        Plan::from_budget(&b, &attr, &env)
            .unwrap()
            .worker_threads
            .value,
        2
    );
    // A variable, it beats the file's count, but not the count code gives.
    let file =
        crate::config::ConfigFile::parse("coldstart.toml", "[coldstart]\nworker_threads = 2\n")
            .unwrap();
    let file: &'static _ = Box::leak(Box::new(file));
    let plan = Plan::from_budget(&b, &Settings::NONE, &env.clone().with_file(file)).unwrap();
    assert_eq!(plan.worker_threads.value, 7);
    assert_eq!(
        plan.worker_threads.reason.origin,
        Origin::Env("TOKIO_WORKER_THREADS")
    );
    let coded = env
        .clone()
        .with_file(file)
        .with_code("COLDSTART_WORKER_THREADS", "3".into());
    let plan = Plan::from_budget(&b, &Settings::NONE, &coded).unwrap();
    assert_eq!(plan.worker_threads.value, 3);
    // Also where the plan's current_thread becomes multi-thread by the file's count.
    let small = budget(Some(0.5), Some(256 << 20));
    let plan = Plan::from_budget(&small, &Settings::NONE, &env.clone().with_file(file)).unwrap();
    assert_eq!(
        (plan.flavor.value, plan.worker_threads.value),
        (Flavor::MultiThread, 7)
    );
    // The file's count it takes the place of is not read, so a bad one stops nothing
    // (a file's `worker_threads = 0` stopped the program under `TOKIO_WORKER_THREADS=8`).
    for bad in ["0", "\"lots\"", "2000"] {
        let text = format!("[coldstart]\nworker_threads = {bad}\n");
        let bad_file = crate::config::ConfigFile::parse("coldstart.toml", &text).unwrap();
        let bad_file: &'static _ = Box::leak(Box::new(bad_file));
        for b in [&b, &small] {
            let plan = Plan::from_budget(b, &Settings::NONE, &env.clone().with_file(bad_file));
            assert_eq!(plan.unwrap().worker_threads.value, 7, "{bad}");
        }
        // Without the variable, it is read and refused.
        let alone = Env::fixed::<&str, &str>([]).with_file(bad_file);
        let err = Plan::from_budget(&b, &Settings::NONE, &alone).unwrap_err();
        assert!(err.to_string().contains("coldstart.toml line 2"), "{err}");
    }
    // Alone, the file's count counts.
    let plan = Plan::from_budget(
        &b,
        &Settings::NONE,
        &Env::fixed::<&str, &str>([]).with_file(file),
    )
    .unwrap();
    assert_eq!(plan.worker_threads.value, 2);
    // With a count given, a value tokio would never read stops nothing.
    let counted = Env::fixed([
        ("TOKIO_WORKER_THREADS", "abc"),
        ("COLDSTART_WORKER_THREADS", "4"),
    ]);
    let plan = Plan::from_budget(&b, &Settings::NONE, &counted).unwrap();
    assert_eq!(plan.worker_threads.value, 4);
    let bad = Env::fixed([("TOKIO_WORKER_THREADS", "abc")]);
    let plan = Plan::from_budget(&b, &attr, &bad).unwrap();
    assert_eq!(plan.worker_threads.value, 2, "the code's count");
    assert_eq!(
        plan.worker_threads.reason.origin,
        Origin::Attribute("worker_threads")
    );
    assert!(Plan::from_budget(&b, &Settings::NONE, &bad).is_err());
}

/// As in tokio, where `#[tokio::main(worker_threads = 1)]` is the multi-thread
/// scheduler with one worker (`block_in_place` works there, and panics on
/// current_thread).
#[test]
fn one_worker_given_is_multi_thread_with_one_worker() {
    let small = budget(Some(0.25), Some(1 << 30));
    let attr = Settings {
        worker_threads: Some(1),
        ..Settings::NONE
    };
    let env = Env::fixed([("COLDSTART_WORKER_THREADS", "1")]);
    for plan in [
        Plan::from_budget(&small, &attr, &none()).unwrap(),
        Plan::from_budget(&small, &Settings::NONE, &env).unwrap(),
    ] {
        assert_eq!(plan.flavor.value, Flavor::MultiThread);
        assert_eq!(plan.worker_threads.value, 1);
    }
    // With the flavor given as well, one worker is what current_thread has.
    let both = Env::fixed([
        ("COLDSTART_WORKER_THREADS", "1"),
        ("COLDSTART_FLAVOR", "current_thread"),
    ]);
    let plan = Plan::from_budget(&small, &Settings::NONE, &both).unwrap();
    assert_eq!(plan.flavor.value, Flavor::CurrentThread);
}

/// tokio reads `TOKIO_WORKER_THREADS` only for the multi-thread scheduler without a
/// count in code: so does coldstart, and a value it would not read stops nothing.
/// tokio takes any count above 0; coldstart 1 to 1024, as for its own variable:
/// `355435435` (the fuzzer's) made tokio ask for 45 GB at once, and the process abort.
#[test]
fn tokio_worker_threads_is_read_only_where_tokio_reads_it() {
    let small = budget(Some(0.25), Some(1 << 30));
    let odd = Env::fixed([("TOKIO_WORKER_THREADS", "many")]);
    let plan = Plan::from_budget(&small, &Settings::NONE, &odd).unwrap();
    assert_eq!(plan.flavor.value, Flavor::CurrentThread);
    let counted = Settings {
        worker_threads: Some(2),
        ..Settings::NONE
    };
    let plan = Plan::from_budget(&small, &counted, &odd).unwrap();
    assert_eq!(plan.worker_threads.value, 2, "the code's count");
    let two_cores = budget(Some(2.0), Some(1 << 30));
    let most = Env::fixed([("TOKIO_WORKER_THREADS", "1024")]);
    let plan = Plan::from_budget(&two_cores, &Settings::NONE, &most);
    assert_eq!(plan.unwrap().worker_threads.value, 1024);
    for refused in ["0", "1025", "355435435"] {
        let env = Env::fixed([("TOKIO_WORKER_THREADS", refused)]);
        let e = Plan::from_budget(&two_cores, &Settings::NONE, &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TOKIO_WORKER_THREADS")
                && e.contains("a whole number from 1 to 1024")
                && e.contains(refused),
            "{refused}: {e}"
        );
    }
}

#[test]
fn contradictions_and_bad_values_are_errors_that_say_what_to_do() {
    let b = budget(Some(2.0), Some(1 << 30));
    let env = Env::fixed([
        ("COLDSTART_FLAVOR", "current_thread"),
        ("COLDSTART_WORKER_THREADS", "4"),
    ]);
    let err = Plan::from_budget(&b, &Settings::NONE, &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "COLDSTART_WORKER_THREADS asks for 4 worker threads but COLDSTART_FLAVOR asks for the current_thread scheduler, which has one; drop one of them"
    );
    for (var, value) in [
        ("COLDSTART_STRATEGY", "fast"),
        ("COLDSTART_FLAVOR", "multi"),
        ("COLDSTART_WORKER_THREADS", "0"),
        ("COLDSTART_MAX_BLOCKING_THREADS", "-1"),
        ("COLDSTART_THREAD_STACK_SIZE", "1G"),
        ("COLDSTART_PREWARM", "yes"),
        ("TOKIO_WORKER_THREADS", "many"),
    ] {
        let err = Plan::from_budget(&b, &Settings::NONE, &Env::fixed([(var, value)])).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with(&format!("set {var} to ")), "{text}");
        assert!(text.ends_with(&format!("got `{value}`")), "{text}");
    }
    // A value with a line break is said on one line, the break escaped.
    let env = Env::fixed([("COLDSTART_STRATEGY", "fast\nlane")]);
    let err = Plan::from_budget(&b, &Settings::NONE, &env).unwrap_err();
    assert!(err.to_string().ends_with("got `fast\\nlane`"), "{err}");
}

/// Of two bad variables the one whose decision comes first in the plan is said, as
/// `from_budget` promises: a program fixing its settings one message at a time sees
/// them in one order.
#[test]
fn of_two_bad_variables_the_first_in_the_plan_is_said() {
    let b = budget(Some(2.0), Some(1 << 30));
    let bad = [
        ("COLDSTART_STRATEGY", "fast"),
        ("COLDSTART_FLAVOR", "multi"),
        ("COLDSTART_WORKER_THREADS", "0"),
        ("TOKIO_WORKER_THREADS", "many"),
        ("COLDSTART_MAX_BLOCKING_THREADS", "-1"),
        ("COLDSTART_THREAD_STACK_SIZE", "1G"),
        ("COLDSTART_PREWARM", "yes"),
        ("COLDSTART_FIRST_RESPONSE_FALLBACK", "soon"),
        ("COLDSTART_DRAIN_TIMEOUT", "soon"),
    ];
    for (i, first) in bad.iter().enumerate() {
        for later in &bad[i + 1..] {
            let env = Env::fixed([*later, *first]);
            let err = Plan::from_budget(&b, &Settings::NONE, &env).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with(&format!("set {} to ", first.0)), "{text}");
        }
    }
}

/// Numbers set in code (a `Builder`'s worker count) are checked as the variables
/// are: 0 workers made tokio panic, 5000 started 5000 threads.
#[test]
fn numbers_set_in_code_are_checked_like_the_variables() {
    let b = budget(Some(2.0), Some(1 << 30));
    for (settings, expected) in [
        (
            Settings {
                worker_threads: Some(0),
                ..Settings::NONE
            },
            "set worker_threads to a whole number from 1 to 1024, got `0`",
        ),
        (
            Settings {
                worker_threads: Some(5000),
                ..Settings::NONE
            },
            "set worker_threads to a whole number from 1 to 1024, got `5000`",
        ),
        (
            Settings {
                max_blocking_threads: Some(0),
                ..Settings::NONE
            },
            "set max_blocking_threads to a whole number from 1 to 4096, got `0`",
        ),
        (
            Settings {
                thread_stack_size: Some(4096),
                ..Settings::NONE
            },
            "set thread_stack_size to a size from 64K to 256M: a whole number of bytes, or with a `K`, `KB`, `KiB`, `M`, `MB` or `MiB` suffix in any case (powers of 1024), got `4096`",
        ),
        // tokio panics on a blank runtime name.
        (
            Settings {
                name: Some(" "),
                ..Settings::NONE
            },
            "set name to a name that is not blank, got ` `",
        ),
    ] {
        let err = Plan::from_budget(&b, &settings, &none()).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
    let fine = Settings {
        worker_threads: Some(1024),
        max_blocking_threads: Some(4096),
        thread_stack_size: Some(64 << 10),
        name: Some("api"),
        ..Settings::NONE
    };
    assert_eq!(
        Plan::from_budget(&b, &fine, &none())
            .unwrap()
            .worker_threads
            .value,
        1024
    );
}

#[test]
fn the_file_is_below_attributes_and_variables() {
    let b = budget(Some(2.0), Some(1 << 30));
    let file = crate::config::ConfigFile::parse(
        "config/prod.toml",
        "[coldstart]\nworker_threads = 3\nmax_blocking_threads = 16\nprewarm = \"sometimes\"\n",
    )
    .unwrap();
    let file: &'static _ = Box::leak(Box::new(file));
    let attr = Settings {
        worker_threads: Some(2),
        ..Settings::NONE
    };
    let env = none().with_file(file);
    let err = Plan::from_budget(&b, &attr, &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "set COLDSTART_PREWARM to one of `on`, `off`, `true`, `false`, `1`, `0`, got `sometimes` (config/prod.toml line 4, `[coldstart] prewarm`)"
    );

    let env = Env::fixed([("COLDSTART_PREWARM", "off")]).with_file(file);
    let plan = Plan::from_budget(&b, &attr, &env).unwrap();
    assert_eq!(plan.worker_threads.value, 2, "the attribute beats the file");
    assert_eq!(plan.max_blocking_threads.value, 16);
    assert_eq!(
        plan.max_blocking_threads.reason.to_string(),
        "set by `[coldstart] max_blocking_threads` in config/prod.toml line 3"
    );
    let plan = Plan::from_budget(&b, &Settings::NONE, &env).unwrap();
    assert_eq!(plan.worker_threads.value, 3, "the file beats the plan");
    let env = env.with_code("COLDSTART_WORKER_THREADS", "4".into());
    let plan = Plan::from_budget(&b, &attr, &env).unwrap();
    assert_eq!(
        plan.worker_threads.value, 4,
        "the builder beats the attribute"
    );
    assert_eq!(
        plan.worker_threads.reason.origin,
        Origin::Code("COLDSTART_WORKER_THREADS")
    );
}

/// A bad value in the file under an attribute argument for it is neither used nor
/// checked, as under a `Builder`'s value (the code layer): the attribute stopped
/// start-up where the builder did not.
#[test]
fn a_bad_file_value_under_an_argument_is_not_read() {
    let b = budget(Some(2.0), Some(1 << 30));
    let file = crate::config::ConfigFile::parse(
        "coldstart.toml",
        "[coldstart]\nstrategy = \"fast\"\nthread_stack_size = \"huge\"\n",
    )
    .unwrap();
    let file: &'static _ = Box::leak(Box::new(file));
    let env = none().with_file(file);
    let attr = Settings {
        strategy: Some(Strategy::Minimal),
        thread_stack_size: Some(1 << 20),
        ..Settings::NONE
    };
    let plan = Plan::from_budget(&b, &attr, &env).unwrap();
    assert_eq!(plan.strategy.value, Strategy::Minimal);
    assert_eq!(plan.thread_stack_size.value, 1 << 20);
    let code = env
        .clone()
        .with_code("COLDSTART_STRATEGY", "minimal".into())
        .with_code("COLDSTART_THREAD_STACK_SIZE", "1M".into());
    let plan = Plan::from_budget(&b, &Settings::NONE, &code).unwrap();
    assert_eq!(plan.strategy.value, Strategy::Minimal);
    // Without an argument or a value in code, the file's value is the one used: refused.
    let err = Plan::from_budget(&b, &Settings::NONE, &env).unwrap_err();
    assert!(
        err.to_string()
            .contains("got `fast` (coldstart.toml line 2"),
        "{err}"
    );
}

/// On a host of more CPUs than a worker count may be, the plan's count is the most
/// `COLDSTART_WORKER_THREADS` accepts.
#[test]
fn the_planned_worker_count_is_one_the_settings_accept() {
    let mut b = Probe::new().root("/nonexistent").host(2048, 64 << 30).run();
    b.cpu_cores = Figure::known(2000.0, Source::Given);
    let plan = Plan::from_budget(&b, &Settings::NONE, &none()).unwrap();
    assert_eq!(plan.worker_threads.value, 1024);
    // And at the other end: a budget that rounds to no hundredth of a core still
    // plans one worker, never 0 (which tokio refuses with a panic).
    for tiny in [0.001, 0.004, f64::MIN_POSITIVE] {
        b.cpu_cores = Figure::known(tiny, Source::Given);
        let plan = Plan::from_budget(&b, &Settings::NONE, &none()).unwrap();
        assert_eq!(plan.worker_threads.value, 1, "{tiny} cores");
        assert!(plan.cores > 0.0, "{tiny} cores planned as {}", plan.cores);
    }
}

/// The budget line and the strategy's reason show the cores the plan decided on.
/// `{:.2}` of the probe's figure alone printed 2.00 for a quota of 2.005 cores (the
/// binary figure is a hair below 2.005) beside a plan of 2.01 cores and 3 workers.
#[test]
fn the_budget_line_shows_the_cores_the_plan_decided_on() {
    for (quota, shown, workers) in [
        (2.005, "2.01", 3),
        (100_500.0 / 100_000.0, "1.01", 2),
        (0.015, "0.02", 1),
        (1.0006, "1.00", 1),
        (1.0049, "1.00", 1),
        // Below half a hundredth the plan keeps the quota, and so does the line: a
        // legal quota of 1 ms a second was shown as 0.00 cores.
        (0.001, "0.001", 1),
        (0.000_33, "0.00033", 1),
        (0.000_333_3, "0.00033", 1),
        (0.0049, "0.0049", 1),
        (0.004_999, "0.0049", 1),
    ] {
        let mut b = Probe::new().root("/nonexistent").host(8, 8 << 30).run();
        b.cpu_cores = Figure::known(quota, Source::Given);
        let plan = Plan::from_budget(&b, &Settings::NONE, &none()).unwrap();
        assert_eq!(plan.worker_threads.value, workers, "{quota}");
        let report = Report {
            budget: &b,
            plan: &plan,
            mimalloc: None,
        }
        .to_string();
        let cpu = report
            .lines()
            .find(|l| l.trim_start().starts_with("cpu "))
            .unwrap();
        assert!(cpu.contains(&format!(" {shown} cores")), "{quota}: {cpu}");
        assert!(
            plan.strategy
                .reason
                .to_string()
                .contains(&format!("CPU {shown} cores")),
            "{quota}: {}",
            plan.strategy.reason
        );
    }
}

/// A flavor and a worker count given in two layers do not contradict each other: the
/// later layer wins, as for every setting. In one layer they do (above).
#[test]
fn a_flavor_and_a_worker_count_in_two_layers_the_later_wins() {
    let b = budget(Some(4.0), Some(1 << 30));
    let file = crate::config::ConfigFile::parse(
        "coldstart.toml",
        "[coldstart]\nworker_threads = 3\nflavor = \"current_thread\"\n",
    )
    .unwrap();
    let file: &'static _ = Box::leak(Box::new(file));
    let counted =
        crate::config::ConfigFile::parse("coldstart.toml", "[coldstart]\nworker_threads = 3\n")
            .unwrap();
    let counted: &'static _ = Box::leak(Box::new(counted));
    let single = crate::config::ConfigFile::parse(
        "coldstart.toml",
        "[coldstart]\nflavor = \"current_thread\"\n",
    )
    .unwrap();
    let single: &'static _ = Box::leak(Box::new(single));

    // Both in the file: a contradiction, said.
    let err = Plan::from_budget(&b, &Settings::NONE, &none().with_file(file)).unwrap_err();
    assert!(err.to_string().contains("drop one of them"), "{err}");

    // The file's count, a variable's flavor: current_thread, one thread.
    let env = Env::fixed([("COLDSTART_FLAVOR", "current_thread")]).with_file(counted);
    let plan = Plan::from_budget(&b, &Settings::NONE, &env).unwrap();
    assert_eq!(
        (plan.flavor.value, plan.worker_threads.value),
        (Flavor::CurrentThread, 1)
    );
    assert_eq!(
        plan.worker_threads.reason.to_string(),
        "set by COLDSTART_FLAVOR"
    );

    // The same flavor given in code.
    let coded = none()
        .with_file(counted)
        .with_code("COLDSTART_FLAVOR", "current_thread".into());
    let plan = Plan::from_budget(&b, &Settings::NONE, &coded).unwrap();
    assert_eq!(
        (plan.flavor.value, plan.worker_threads.value),
        (Flavor::CurrentThread, 1)
    );

    // The file's flavor, a variable's count: multi-thread with that count.
    let env = Env::fixed([("COLDSTART_WORKER_THREADS", "2")]).with_file(single);
    let plan = Plan::from_budget(&b, &Settings::NONE, &env).unwrap();
    assert_eq!(
        (plan.flavor.value, plan.worker_threads.value),
        (Flavor::MultiThread, 2)
    );
    assert_eq!(
        plan.flavor.reason.to_string(),
        "set by COLDSTART_WORKER_THREADS"
    );
}

/// On Lambda the first invocation's answer is the first response; a timer, overdue
/// when a frozen environment thaws for a late first invocation, would start deferred
/// work beside it. The variable still sets one.
#[test]
fn on_lambda_no_fallback_timer_unless_set() {
    let mut lambda = budget(Some(0.29), Some(512 << 20));
    lambda.platform = Platform::AwsLambda;
    let plan = Plan::from_budget(&lambda, &Settings::NONE, &none()).unwrap();
    assert_eq!(plan.first_response_fallback.value, None);
    assert_eq!(
        plan.first_response_fallback.reason.to_string(),
        "on Lambda the first invocation's answer starts deferred work"
    );
    let set = Env::fixed([("COLDSTART_FIRST_RESPONSE_FALLBACK", "5s")]);
    let plan = Plan::from_budget(&lambda, &Settings::NONE, &set).unwrap();
    assert_eq!(
        plan.first_response_fallback.value,
        Some(std::time::Duration::from_secs(5))
    );
    let elsewhere = Plan::from_budget(
        &budget(Some(0.29), Some(512 << 20)),
        &Settings::NONE,
        &none(),
    );
    assert_eq!(
        elsewhere.unwrap().first_response_fallback.value,
        Some(DEFAULT_FIRST_RESPONSE_FALLBACK)
    );
}

/// Prewarming runs on worker threads: asked for under current_thread it would do
/// nothing, so the plan turns it off and says why, whoever asked for it.
#[test]
fn prewarm_asked_under_current_thread_is_off_and_says_why() {
    let quarter = budget(Some(0.25), Some(1 << 30));
    let asked = Settings {
        prewarm: Some(true),
        ..Settings::NONE
    };
    let plan = Plan::from_budget(&quarter, &asked, &none()).unwrap();
    assert_eq!(plan.flavor.value, Flavor::CurrentThread);
    assert!(!plan.prewarm.value);
    assert_eq!(
        plan.prewarm.reason.to_string(),
        "current_thread has no worker threads to prewarm"
    );

    // Both set explicitly: the plan's reason still, as `worker_threads` shows.
    let env = Env::fixed([
        ("COLDSTART_PREWARM", "on"),
        ("COLDSTART_FLAVOR", "current_thread"),
    ]);
    let two = budget(Some(2.0), Some(1 << 30));
    let plan = Plan::from_budget(&two, &Settings::NONE, &env).unwrap();
    assert!(!plan.prewarm.value);
    assert_eq!(plan.prewarm.reason, Reason::plan(Why::NoWorkersToPrewarm));

    // Under multi_thread it stays as asked.
    let env = Env::fixed([("COLDSTART_PREWARM", "on")]);
    let plan = Plan::from_budget(&two, &Settings::NONE, &env).unwrap();
    assert_eq!(plan.flavor.value, Flavor::MultiThread);
    assert!(plan.prewarm.value);
    assert_eq!(plan.prewarm.reason.origin, Origin::Env("COLDSTART_PREWARM"));
}

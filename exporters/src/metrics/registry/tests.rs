use super::*;
use crate::problem::Dropped;

#[test]
fn renders_every_kind_sorted_with_help() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    rec.describe_counter("jobs_total".into(), None, "Jobs done.".into());
    rec.register_counter(
        &Key::from_parts("jobs_total", vec![metrics::Label::new("kind", "a\"b")]),
        &m,
    )
    .increment(3);
    rec.register_gauge(&Key::from_name("1queue-depth"), &m)
        .set(2.5);
    let h = rec.register_histogram(&Key::from_name("wait_seconds"), &m);
    h.record(0.0002);
    h.record(20.0);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(
        out.starts_with(
            "# HELP _1queue_depth 1queue depth\n# TYPE _1queue_depth gauge\n_1queue_depth 2.5\n"
        ),
        "{out}"
    );
    assert!(out.contains("# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total{kind=\"a\\\"b\"} 3\n"), "{out}");
    assert!(
        out.contains(
            "wait_seconds_bucket{le=\"0.0001\"} 0\nwait_seconds_bucket{le=\"0.00025\"} 1\n"
        ),
        "{out}"
    );
    assert!(out.contains("wait_seconds_bucket{le=\"10\"} 1\nwait_seconds_bucket{le=\"+Inf\"} 2\nwait_seconds_sum 20.0002\nwait_seconds_count 2\n"), "{out}");
}

#[test]
fn a_name_coldstart_owns_is_left_out() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    rec.register_gauge(&Key::from_name("process_threads"), &m)
        .set(99.0);
    rec.register_counter(&Key::from_name("jobs_total"), &m)
        .increment(1);
    let mut out = String::new();
    R.render(&mut out, &["process_threads"], &[]);
    assert!(!out.contains("process_threads"), "{out}");
    assert!(out.contains("\njobs_total 1\n"), "{out}");
}

#[test]
fn a_key_registered_twice_is_one_series() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    for _ in 0..3 {
        rec.register_counter(&Key::from_name("hits_total"), &m)
            .increment(1);
    }
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(out.contains("\nhits_total 3\n"), "{out}");
}
/// Each of these made Prometheus (and promtool) refuse the whole scrape.
#[test]
fn what_would_make_the_scrape_unreadable_is_left_out() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    let label = metrics::Label::new;
    rec.register_counter(&Key::from_name(""), &m).increment(1);
    rec.register_counter(
        &Key::from_parts(
            "x_total",
            vec![
                label("a.b", "1"),
                label("a-b", "2"),
                label("", "3"),
                label("__tenant", "4"),
                label("-_id", "5"),
            ],
        ),
        &m,
    )
    .increment(1);
    rec.register_histogram(&Key::from_parts("wait_seconds", vec![label("le", "x")]), &m)
        .record(0.5);
    rec.register_counter(&Key::from_name("jobs"), &m)
        .increment(2);
    rec.register_histogram(&Key::from_name("jobs"), &m)
        .record(1.0);
    rec.register_gauge(&Key::from_name("depth.now"), &m)
        .set(1.0);
    rec.register_gauge(&Key::from_name("depth-now"), &m)
        .set(2.0);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(!out.contains("\n{"), "a sample without a name: {out}");
    assert!(out.contains("\nx_total{a_b=\"1\"} 1\n"), "{out}");
    assert!(
        out.contains("\nwait_seconds_bucket{le=\"0.5\"} 1\n"),
        "{out}"
    );
    assert!(out.contains("\nwait_seconds_sum 0.5\n"), "{out}");
    assert!(out.contains("# TYPE jobs counter\njobs 2\n"), "{out}");
    assert!(!out.contains("jobs_bucket"), "{out}");
    assert_eq!(out.matches("\ndepth_now ").count(), 1, "{out}");
    assert_eq!(out.matches("# TYPE").count(), 4, "{out}");
}

/// Each metric left out is named, not only the first of its kind of problem:
/// the reports are counted apart by name.
#[test]
fn every_name_left_out_is_named() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    rec.register_histogram(&Key::from_name("lag_seconds"), &m)
        .record(1.0);
    rec.register_gauge(&Key::from_name("lag_seconds_sum"), &m)
        .set(1.0);
    rec.register_counter(&Key::from_name("lag_seconds_count"), &m)
        .increment(1);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    let named = crate::problem::subjects("metrics-histogram-suffix");
    for name in ["lag_seconds_sum", "lag_seconds_count"] {
        assert!(named.iter().any(|n| n == name), "{name}: {named:?}");
        assert!(!out.contains(&format!("# TYPE {name} ")), "{out}");
    }
}

#[test]
fn a_nan_sample_counts_in_inf_only_and_leaves_the_sum_alone() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    let h = rec.register_histogram(&Key::from_name("wait_seconds"), &m);
    h.record(f64::NAN);
    h.record(0.5);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(
        out.contains("wait_seconds_bucket{le=\"0.0001\"} 0\n"),
        "{out}"
    );
    assert!(
        out.contains("wait_seconds_bucket{le=\"+Inf\"} 2\n"),
        "{out}"
    );
    assert!(
        out.contains("wait_seconds_sum 0.5\nwait_seconds_count 2\n"),
        "{out}"
    );
}

#[test]
fn a_description_reaches_a_name_that_needed_cleaning() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    rec.describe_counter("my.requests".into(), None, "Requests taken.".into());
    rec.register_counter(&Key::from_name("my.requests"), &m)
        .increment(1);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(
        out.starts_with("# HELP my_requests Requests taken.\n"),
        "{out}"
    );
}
/// The HTTP names are kept past the limit on names, and so are their
/// descriptions, made as the exporters start: after a program's 1000, they were
/// dropped and the families got the default help. So is the description of a name
/// recorded already, past a library's descriptions of names it never records.
#[test]
fn the_http_descriptions_are_kept_past_the_limit() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    for i in 0..NAMES + 3 {
        rec.describe_counter(format!("app_{i}_total").into(), None, "An app's.".into());
    }
    let http = super::super::HTTP_REQUESTS;
    rec.describe_counter(http.into(), None, "HTTP requests answered.".into());
    rec.describe_counter("one_more_total".into(), None, "Past the limit.".into());
    rec.register_counter(&Key::from_name(http), &m).increment(1);
    rec.register_counter(&Key::from_name("one_more_total"), &m)
        .increment(1);
    rec.register_counter(&Key::from_name("recorded_total"), &m)
        .increment(1);
    rec.describe_counter(
        "recorded_total".into(),
        None,
        "Described once recorded.".into(),
    );
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(
        out.contains(&format!("# HELP {http} HTTP requests answered.\n")),
        "{out}"
    );
    assert!(!out.contains("Past the limit."), "{out}");
    assert!(
        out.contains("# HELP recorded_total Described once recorded.\n"),
        "{out}"
    );
}

#[test]
fn a_name_gets_the_buckets_set_for_it() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    R.set_buckets("payload.bytes", &[1024.0, 4096.0]).unwrap();
    let h = rec.register_histogram(&Key::from_name("payload.bytes"), &m);
    h.record(5000.0);
    h.record(100.0);
    rec.register_histogram(&Key::from_name("wait_seconds"), &m)
        .record(0.5);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(
        out.contains(
            "payload_bytes_bucket{le=\"1024\"} 1\npayload_bytes_bucket{le=\"4096\"} 1\npayload_bytes_bucket{le=\"+Inf\"} 2\npayload_bytes_sum 5100\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("wait_seconds_bucket{le=\"0.0001\"} 0\n"),
        "{out}"
    );
    let err = R.set_buckets("wait_seconds", &[1.0]).unwrap_err();
    assert!(
        err.starts_with("`wait_seconds` was recorded before its buckets were set"),
        "{err}"
    );
    // Named as given, and as recorded: the cleaned name was neither.
    let err = R.set_buckets("wait-seconds", &[1.0]).unwrap_err();
    assert!(
        err.starts_with("`wait-seconds` was recorded (as `wait_seconds`, the same name in the exposition) before"),
        "{err}"
    );
    for bad in [&[][..], &[2.0, 1.0], &[1.0, f64::INFINITY]] {
        let err = R.set_buckets("other", bad).unwrap_err();
        assert!(err.contains("increasing order"), "{err}");
    }
}

#[test]
fn of_two_names_that_clean_to_one_the_first_by_name_is_kept_whatever_the_values() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    let dotted = rec.register_gauge(&Key::from_name("a.b"), &m);
    dotted.set(5.0);
    rec.register_gauge(&Key::from_name("a-b"), &m).set(30.0);
    for later in [5.0, 100.0] {
        dotted.set(later);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        // `a-b` sorts before `a.b`: the series does not jump with the values.
        assert!(out.contains("\na_b 30\n"), "{out}");
    }
}

/// Of two counters that clean to one series the counts are added: the export
/// never goes down when a name sorting first comes later.
#[test]
fn two_counters_that_clean_to_one_series_are_added() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    rec.register_counter(&Key::from_name("jobs_done"), &m)
        .increment(5000);
    let render = || {
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        out
    };
    assert!(render().contains("\njobs_done 5000\n"));
    // `jobs.done` sorts before `jobs_done`: it was the one exported, at 1.
    rec.register_counter(&Key::from_name("jobs.done"), &m)
        .increment(1);
    let out = render();
    assert!(out.contains("\njobs_done 5001\n"), "{out}");
    assert_eq!(out.matches("\njobs_done ").count(), 1, "{out}");
    // Their labels given in different orders: still one series, written once.
    let labelled = |name: &'static str, labels: [(&'static str, &'static str); 2]| {
        Key::from_parts(
            name,
            labels.map(|(k, v)| metrics::Label::new(k, v)).to_vec(),
        )
    };
    rec.register_counter(&labelled("jobs_done", [("a", "1"), ("b", "2")]), &m)
        .increment(2);
    rec.register_counter(&labelled("jobs.done", [("b", "2"), ("a", "1")]), &m)
        .increment(3);
    let out = render();
    assert!(out.contains("\njobs_done{a=\"1\",b=\"2\"} 5\n"), "{out}");
    assert!(!out.contains("b=\"2\",a="), "{out}");
}

/// Of two histograms that clean to one series each bucket, the sum and the count
/// are added: a histogram's buckets are counters, and the first by name alone made
/// them fall when a name sorting first came later (read by `rate()` as a reset).
#[test]
fn two_histograms_that_clean_to_one_series_are_added() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    let h = rec.register_histogram(&Key::from_name("lat_seconds"), &m);
    for _ in 0..5 {
        h.record(0.5);
    }
    let render = || {
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        out
    };
    assert!(render().contains("\nlat_seconds_count 5\n"));
    // `lat.seconds` sorts before `lat_seconds`: it was the one exported, at 1.
    rec.register_histogram(&Key::from_name("lat.seconds"), &m)
        .record(0.25);
    let out = render();
    assert!(out.contains("\nlat_seconds_count 6\n"), "{out}");
    assert!(out.contains("\nlat_seconds_sum 2.75\n"), "{out}");
    assert!(
        out.contains("\nlat_seconds_bucket{le=\"0.25\"} 1\n"),
        "{out}"
    );
    assert!(
        out.contains("\nlat_seconds_bucket{le=\"+Inf\"} 6\n"),
        "{out}"
    );
    assert_eq!(out.matches("\nlat_seconds_count ").count(), 1, "{out}");
    assert_eq!(
        out.matches("lat_seconds_bucket{le=\"+Inf\"}").count(),
        1,
        "{out}"
    );
}

/// A label with an empty value is no label, as Prometheus reads it: `x{a=""}` and
/// `x` were written as two series that a scrape stored as one, one value lost.
#[test]
fn a_label_with_an_empty_value_is_left_out() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    rec.register_counter(
        &Key::from_parts("jobs_total", vec![metrics::Label::new("tenant", "")]),
        &m,
    )
    .increment(5);
    rec.register_counter(&Key::from_name("jobs_total"), &m)
        .increment(7);
    rec.register_gauge(
        &Key::from_parts(
            "depth",
            vec![
                metrics::Label::new("queue", ""),
                metrics::Label::new("kind", "a"),
            ],
        ),
        &m,
    )
    .set(3.0);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(out.contains("\njobs_total 12\n"), "{out}");
    assert_eq!(out.matches("\njobs_total").count(), 1, "{out}");
    assert!(out.contains("\ndepth{kind=\"a\"} 3\n"), "{out}");
    assert!(!out.contains("tenant") && !out.contains("queue"), "{out}");
}

/// A histogram's problems are said by the histogram's name, once, not by each of
/// its `_bucket`, `_sum` and `_count` series (names that do not exist).
#[test]
fn a_histograms_problems_name_the_histogram() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    rec.register_histogram(
        &Key::from_parts("grouped_seconds", vec![metrics::Label::new("job", "x")]),
        &m,
    )
    .record(1.0);
    let mut out = String::new();
    R.render(&mut out, &[], &["job"]);
    assert!(
        out.contains("grouped_seconds_count{exported_job=\"x\"} 1\n"),
        "{out}"
    );
    let subjects = problem::subjects("metrics-grouping-label");
    assert!(
        subjects.iter().any(|s| s == "grouped_seconds"),
        "{subjects:?}"
    );
    assert!(
        !subjects.iter().any(|s| s.starts_with("grouped_seconds_")),
        "{subjects:?}"
    );
}

/// A HELP line always has text: `promtool check metrics` refuses one without
/// (an empty description, or a name that reads as nothing).
#[test]
fn a_help_line_is_never_empty() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    rec.describe_gauge("x".into(), None, " ".into());
    rec.register_gauge(&Key::from_name("x"), &m).set(1.0);
    rec.register_gauge(&Key::from_name("_"), &m).set(2.0);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(out.contains("# HELP x x\n"), "{out}");
    assert!(out.contains("# HELP _ _\n"), "{out}");
    assert!(!out.contains(" \n"), "{out}");
}

/// A counter at its greatest value stays there: wrapped to 0, Prometheus would
/// read a reset.
#[test]
fn a_counter_saturates_instead_of_wrapping() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    let counter = rec.register_counter(&Key::from_name("huge_total"), &m);
    counter.absolute(u64::MAX - 1);
    counter.increment(5);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(
        out.contains(&format!("\nhuge_total {}\n", u64::MAX)),
        "{out}"
    );
}

/// Clashing series are said by their family: one subject however many label
/// values clash, so what the problem reports keep stays bounded.
#[test]
fn past_the_series_limit_a_name_records_in_its_overflow_series() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    let per_user = |id: usize| {
        let key = Key::from_parts(
            "logins_total",
            vec![metrics::Label::new("user", id.to_string())],
        );
        rec.register_counter(&key, &m)
    };
    for id in 0..SERIES_PER_NAME + 5 {
        per_user(id).increment(2);
    }
    // A label set kept before the limit is still its own series.
    per_user(7).increment(1);
    // Another name has limits of its own.
    rec.register_counter(
        &Key::from_parts("other_total", vec![metrics::Label::new("user", "x")]),
        &m,
    )
    .increment(1);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert_eq!(
        out.matches("\nlogins_total{user=").count(),
        SERIES_PER_NAME,
        "{out}"
    );
    assert!(out.contains("\nlogins_total{user=\"7\"} 3\n"), "{out}");
    assert!(
        out.contains("\nlogins_total{otel_metric_overflow=\"true\"} 10\n"),
        "{out}"
    );
    assert!(out.contains("\nother_total{user=\"x\"} 1\n"), "{out}");
    assert_eq!(
        crate::problem::subjects("metrics-series-limit"),
        ["logins_total"],
        "said once, for the name past its limit"
    );
}

/// A label set past [`LABEL_BYTES`] is recorded in the overflow series: 2000 paths
/// of 64 KiB each were kept whole, 128 MiB for one name.
#[test]
fn a_label_set_too_long_is_recorded_in_the_overflow_series() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    let hit = |path: String| {
        let key = Key::from_parts("hits_total", vec![metrics::Label::new("path", path)]);
        rec.register_counter(&key, &m).increment(1);
    };
    // `path` and the value: at the limit, kept; one byte more, not.
    hit("a".repeat(LABEL_BYTES - "path".len()));
    hit("b".repeat(LABEL_BYTES - "path".len() + 1));
    hit("c".repeat(64 << 10));
    hit("/short".to_owned());
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(out.contains(&format!(
        "\nhits_total{{path=\"{}\"}} 1\n",
        "a".repeat(4092)
    )));
    assert!(!out.contains("bbb") && !out.contains("ccc"), "kept whole");
    assert!(
        out.contains("\nhits_total{otel_metric_overflow=\"true\"} 2\n"),
        "{out}"
    );
    assert!(out.contains("\nhits_total{path=\"/short\"} 1\n"), "{out}");
    assert_eq!(
        crate::problem::subjects("metrics-label-length"),
        ["hits_total"]
    );
}

/// A name's label sets together are kept to [`NAME_LABEL_BYTES`]: a histogram of
/// 2000 series of 4 KiB paths rendered 156 MB at each scrape, each label set written
/// on its 19 lines.
#[test]
fn a_names_label_sets_past_their_bytes_go_to_the_overflow_series() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    let path = |i: usize| format!("/{i:04}/{}", "p".repeat(3000));
    let seconds = |i: usize| {
        let key = Key::from_parts("req_seconds", vec![metrics::Label::new("path", path(i))]);
        rec.register_histogram(&key, &m).record(0.01);
    };
    // Each label set is 4 + 3006 bytes: 87 fit in 256 KiB.
    let fit = NAME_LABEL_BYTES / ("path".len() + path(0).len());
    for i in 0..fit + 50 {
        seconds(i);
    }
    // One kept before the limit is still its own series.
    seconds(3);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    let kept = out.matches("\nreq_seconds_count{path=").count();
    assert_eq!(kept, fit, "series kept");
    assert!(out.contains(&format!("\nreq_seconds_count{{path=\"{}\"}} 2\n", path(3))));
    assert!(
        out.contains("\nreq_seconds_count{otel_metric_overflow=\"true\"} 50\n"),
        "{}",
        &out[out.len().saturating_sub(2000)..]
    );
    assert!(
        out.len() < 20 * NAME_LABEL_BYTES + 100_000,
        "{} bytes",
        out.len()
    );
    assert_eq!(
        crate::problem::subjects("metrics-label-bytes"),
        ["req_seconds"]
    );
}

/// Held by the tests that count `name_limit` drops, a count of the whole process.
static NAME_LIMIT_COUNTED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A name past 255 bytes is not recorded: counted as dropped, said once; one of 255
/// bytes is kept.
#[test]
fn a_name_past_255_bytes_is_counted_as_dropped_not_kept() {
    let _counting = NAME_LIMIT_COUNTED.lock().unwrap_or_else(|p| p.into_inner());
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    let dropped = || problem::dropped(Dropped::MetricNameLimit);
    let before = dropped();
    let reported = problem::reports("metrics-name-length");
    let long = format!("requests_{}", "x".repeat(NAME_BYTES - 8));
    let longest = format!("requests_{}", "y".repeat(NAME_BYTES - 9));
    assert_eq!((long.len(), longest.len()), (NAME_BYTES + 1, NAME_BYTES));
    rec.describe_counter(long.clone().into(), None, "Never kept.".into());
    rec.register_counter(&Key::from_name(long.clone()), &m)
        .increment(1);
    rec.register_gauge(&Key::from_name(long.clone()), &m)
        .set(1.0);
    rec.register_counter(&Key::from_name(longest.clone()), &m)
        .increment(1);
    assert_eq!(dropped() - before, 2);
    assert_eq!(problem::reports("metrics-name-length") - reported, 1);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(!out.contains(&long), "{out}");
    assert!(out.contains(&format!("\n{longest} 1\n")), "{out}");
    assert!(R.help.read().unwrap().is_empty(), "no description kept");
}

#[test]
fn past_the_name_limit_a_new_name_is_counted_as_dropped_not_kept() {
    let _counting = NAME_LIMIT_COUNTED.lock().unwrap_or_else(|p| p.into_inner());
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    let named = |name: String| Key::from_name(name);
    // Names of the three kinds share the limit.
    for i in 0..NAMES - 2 {
        rec.register_counter(&named(format!("requests_{i}_total")), &m)
            .increment(1);
    }
    rec.register_gauge(&named("queue_depth".into()), &m)
        .set(4.0);
    rec.register_histogram(&named("wait_seconds".into()), &m)
        .record(0.5);
    let dropped = || problem::dropped(Dropped::MetricNameLimit);
    let before = dropped();
    let reported = problem::reports("metrics-name-limit");
    rec.describe_counter("late_total".into(), None, "Never kept.".into());
    rec.register_counter(&named("late_total".into()), &m)
        .increment(3);
    rec.register_gauge(&named("late_gauge".into()), &m).set(1.0);
    rec.register_histogram(&named("late_seconds".into()), &m)
        .record(1.0);
    rec.register_histogram(&named("late_seconds".into()), &m)
        .record(2.0);
    // One count a sample, whatever it added; said once, not at every sample.
    assert_eq!(dropped() - before, 4);
    assert_eq!(problem::reports("metrics-name-limit") - reported, 1);
    // coldstart's own HTTP names are kept past the limit, and count in none.
    rec.register_gauge(&named("http_requests_in_flight".into()), &m)
        .set(2.0);
    // A name kept before the limit still takes new label sets and samples.
    rec.register_counter(
        &Key::from_parts("requests_0_total", vec![metrics::Label::new("code", "500")]),
        &m,
    )
    .increment(2);
    rec.register_gauge(&named("queue_depth".into()), &m)
        .set(5.0);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert_eq!(out.matches("# TYPE ").count(), NAMES + 1, "{out}");
    assert!(out.contains("\nhttp_requests_in_flight 2\n"), "{out}");
    assert!(!out.contains("late_"), "{out}");
    assert!(
        out.contains("\nrequests_0_total{code=\"500\"} 2\n"),
        "{out}"
    );
    assert!(out.contains("\nqueue_depth 5\n"), "{out}");
    assert!(out.contains("\nwait_seconds_count 1\n"), "{out}");
    assert!(R.help.read().unwrap().len() <= NAMES);
}

#[test]
fn clashing_series_are_said_once_per_family_not_per_label_value() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    for id in 0..200 {
        for name in ["jobs.clash", "jobs-clash"] {
            let key = Key::from_parts(name, vec![metrics::Label::new("id", id.to_string())]);
            rec.register_gauge(&key, &m).set(1.0);
        }
    }
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert_eq!(out.matches("\njobs_clash{").count(), 200, "{out}");
    assert_eq!(
        crate::problem::subjects("metrics-same-series")
            .iter()
            .filter(|s| s.starts_with("jobs_clash"))
            .collect::<Vec<_>>(),
        ["jobs_clash"]
    );
    // Reported once a rendering, not once a line: 200 lines each took the problems'
    // lock and told every plugin. A histogram's added lines too (19 a series).
    for id in 0..50 {
        for name in ["wait.clash", "wait-clash"] {
            let key = Key::from_parts(name, vec![metrics::Label::new("id", id.to_string())]);
            rec.register_histogram(&key, &m).record(0.5);
        }
    }
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(out.contains("\nwait_clash_count{id=\"7\"} 2\n"), "{out}");
    for name in ["jobs_clash", "wait_clash"] {
        let reports = crate::problem::reports_about("metrics-same-series", name);
        assert_eq!(reports, if name == "jobs_clash" { 2 } else { 1 }, "{name}");
    }
}

#[test]
fn a_family_named_as_a_histograms_own_series_is_left_out() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    rec.register_histogram(&Key::from_name("payload"), &m)
        .record(1.0);
    rec.register_counter(&Key::from_name("payload_count"), &m)
        .increment(7);
    rec.register_gauge(&Key::from_name("payload_sum"), &m)
        .set(7.0);
    rec.register_counter(&Key::from_name("payload_bucket"), &m)
        .increment(7);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(out.contains("\npayload_count 1\n"), "{out}");
    assert!(!out.contains("# TYPE payload_count"), "{out}");
    assert!(!out.contains("# TYPE payload_sum"), "{out}");
    assert!(!out.contains("# TYPE payload_bucket"), "{out}");
    assert!(!out.contains(" 7\n"), "{out}");
}

#[test]
fn infinities_are_spelled_as_the_format_says() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    rec.register_gauge(&Key::from_name("up"), &m)
        .set(f64::INFINITY);
    rec.register_gauge(&Key::from_name("down"), &m)
        .set(f64::NEG_INFINITY);
    let h = rec.register_histogram(&Key::from_name("wait_seconds"), &m);
    h.record(1.0);
    h.record(f64::INFINITY);
    h.record(f64::NEG_INFINITY);
    h.record(f64::NAN);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(out.contains("\nup +Inf\n"), "{out}");
    assert!(out.contains("\ndown -Inf\n"), "{out}");
    // Counted in their buckets, kept out of the sum: one infinity made it +Inf for
    // good, and one of each sign NaN.
    assert!(
        out.contains("\nwait_seconds_bucket{le=\"+Inf\"} 4\n"),
        "{out}"
    );
    assert!(
        out.contains("\nwait_seconds_bucket{le=\"0.0001\"} 1\n"),
        "{out}"
    );
    assert!(out.contains("\nwait_seconds_sum 1\n"), "{out}");
    assert!(out.contains("\nwait_seconds_count 4\n"), "{out}");
}

/// A label or a name that begins with a digit keeps it, after a `_`: `0_shard` was
/// cleaned to `__shard`, a reserved name, and left out.
#[test]
fn a_name_that_begins_with_a_digit_keeps_it() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    rec.register_counter(
        &Key::from_parts("5xx_total", vec![metrics::Label::new("0_shard", "a")]),
        &m,
    )
    .increment(1);
    let mut out = String::new();
    R.render(&mut out, &[], &[]);
    assert!(out.contains("\n_5xx_total{_0_shard=\"a\"} 1\n"), "{out}");
}

/// The gateway sets a push's grouping labels on every series: two series that
/// differed only by one would clash, and every push would be refused.
#[test]
fn a_push_writes_the_programs_grouping_labels_as_exported() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    for job in ["resize", "thumb"] {
        let key = Key::from_parts("tasks_total", vec![metrics::Label::new("job", job)]);
        rec.register_counter(&key, &m).increment(1);
    }
    let mut out = String::new();
    R.render(&mut out, &[], &["job", "instance"]);
    assert!(
        out.contains(
            "\ntasks_total{exported_job=\"resize\"} 1\ntasks_total{exported_job=\"thumb\"} 1\n"
        ),
        "{out}"
    );
    let mut scraped = String::new();
    R.render(&mut scraped, &[], &[]);
    assert!(
        scraped.contains("\ntasks_total{job=\"resize\"} 1\n"),
        "{scraped}"
    );
}

/// A label renamed or left out is said once a family in a rendering, not once a
/// sample line: each saying takes the problems' lock and tells every plugin.
#[test]
fn a_labels_problem_is_said_once_a_family_not_once_a_line() {
    static R: Registry = Registry::new();
    let rec = Installed(&R);
    let m = Metadata::new("t", metrics::Level::INFO, None);
    for job in ["a", "b", "c"] {
        let labels = vec![
            metrics::Label::new("job", job),
            metrics::Label::new("__x", "y"),
        ];
        let key = Key::from_parts("said_once_seconds", labels);
        rec.register_histogram(&key, &m).record(0.5);
    }
    let said = |kind| problem::reports_about(kind, "said_once_seconds");
    let before = (
        said("metrics-grouping-label"),
        said("metrics-label-left-out"),
    );
    let mut out = String::new();
    R.render(&mut out, &[], &["job"]);
    assert!(out.contains("exported_job=\"c\""), "{out}");
    assert!(!out.contains("__x"), "{out}");
    assert_eq!(
        (
            said("metrics-grouping-label"),
            said("metrics-label-left-out")
        ),
        (before.0 + 1, before.1 + 1)
    );
}

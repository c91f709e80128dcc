use super::parse::variable_of;
use super::*;
use proptest::prelude::*;

fn parse(text: &str) -> Result<ConfigFile, FileError> {
    ConfigFile::parse("coldstart.toml", text)
}

#[test]
fn tables_keys_and_values() {
    let file = parse(
        "# the checkout service\n\
         [coldstart]\n\
         worker_threads = 2   # two cores\n\
         metrics_addr = \"0.0.0.0:9464\"\n\
         prewarm = false\n\
         \n\
         [otel]\n\
         service_name = 'checkout # east'\n\
         traces_sampler_arg = 0.25\n\
         exporter_otlp_headers = \"authorization=Bearer \\\"x\\\"\"\n\
         bsp_max_queue_size = 4_096\n",
    )
    .unwrap();
    let values: Vec<_> = file
        .entries
        .iter()
        .map(|e| (e.variable, e.value.as_str(), e.line))
        .collect();
    assert_eq!(
        values,
        [
            ("COLDSTART_WORKER_THREADS", "2", 3),
            ("COLDSTART_METRICS_ADDR", "0.0.0.0:9464", 4),
            ("COLDSTART_PREWARM", "false", 5),
            ("OTEL_SERVICE_NAME", "checkout # east", 8),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25", 9),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer \"x\"",
                10
            ),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4096", 11),
        ]
    );
}

#[test]
fn every_mistake_names_the_line_and_what_is_accepted() {
    let cases = [
        (
            "worker_threads = 2",
            "line 1: `worker_threads` is outside a table",
        ),
        (
            "[tokio]",
            "line 1: `[tokio]` is not a table coldstart reads",
        ),
        (
            "[coldstart]\nworker_thread = 2",
            "line 2: `[coldstart] worker_thread` is not a setting",
        ),
        ("[coldstart]\nWORKER_THREADS = 2", "is not a setting"),
        ("[otel]\nconfig = 'x'", "is not a setting"),
        ("[coldstart]\nstrategy = minimal", "bare word needs quotes"),
        ("[coldstart]\nstrategy = \"minimal", "without its closing"),
        (
            "[otel]\npropagators = [\"tracecontext\"]",
            "is an array or a table",
        ),
        (
            "[coldstart]\nprewarm = true\nprewarm = false",
            "line 3: `prewarm` is given twice (first on line 2)",
        ),
        ("[otel]\n[otel]", "line 2: [otel] appears twice"),
        ("[coldstart]\nlog", "line 2: expected `key = value`"),
    ];
    for (text, expected) in cases {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{text:?} gave {err:?}");
        assert!(err.starts_with("coldstart.toml line "), "{err}");
    }
}

/// What TOML allows and a hand-written file may hold: a byte order mark, quoted
/// keys and table names, every TOML 1.0 escape, whole numbers in other bases.
#[test]
fn toml_forms_beyond_the_plain_ones() {
    let file = parse(
        "\u{feff}[coldstart]\n\
         \"strategy\" = 'minimal'\n\
         worker_threads = 0x2\n\
         max_blocking_threads = 0o10\n\
         thread_stack_size = 0b1_0000_0000_0000_0000\n\
         [ \"otel\" ]\n\
         service_name = \"a\\bb\\fc\\U0001F600\"\n",
    )
    .unwrap();
    let values: Vec<_> = file
        .entries
        .iter()
        .map(|e| (e.variable, e.value.as_str()))
        .collect();
    assert_eq!(
        values,
        [
            ("COLDSTART_STRATEGY", "minimal"),
            ("COLDSTART_WORKER_THREADS", "2"),
            ("COLDSTART_MAX_BLOCKING_THREADS", "8"),
            ("COLDSTART_THREAD_STACK_SIZE", "65536"),
            ("OTEL_SERVICE_NAME", "a\u{8}b\u{c}c\u{1F600}"),
        ]
    );
    // What coldstart's files do not use is named as such, not as a mistake.
    for (text, expected) in [
        ("coldstart.strategy = 'minimal'", "is a dotted key"),
        (
            "[otel]\nservice_name = \"\"\"x\"\"\"",
            "is a multi-line string",
        ),
        (
            "[coldstart]\nworker_threads = 0xZZ",
            "in the base its prefix names",
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{text:?} gave {err:?}");
    }
}

/// A control character in a string is refused, as TOML 1.0 says (tab and escapes
/// are fine), and an error line never carries one: a lone carriage return, which
/// `lines()` leaves inside a line, would overwrite the message on a terminal.
/// The value and its table are named.
#[test]
fn control_characters_are_refused_and_never_printed() {
    for text in [
        "[otel]\nservice_name = \"a\u{1b}[2Jb\"",
        "[otel]\nservice_name = 'a\u{0}b'",
        "[otel]\nservice_name = \"a\u{7f}\"",
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("control character"), "{err:?}");
        assert!(!err.chars().any(|c| c.is_control()), "{err:?}");
    }
    let ok = parse("[otel]\nservice_name = \"a\tb\\u001b\"").unwrap();
    assert_eq!(ok.entries[0].value, "a\tb\u{1b}");
    let err = parse("[coldstart]\rworker_threads = 2")
        .unwrap_err()
        .to_string();
    assert!(!err.chars().any(|c| c.is_control()), "{err:?}");
    assert!(err.contains("\\r"), "{err:?}");
    let err = parse("[coldstart]\nstrategy = minimal")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`[coldstart] strategy`, `minimal`,"), "{err}");
    // Durations, sizes and addresses written without quotes are told to have them,
    // not how TOML spells numbers; nothing and infinity are named as such.
    for (value, said) in [
        ("10s", "`10s`, is text that needs quotes"),
        ("2M", "`2M`, is text that needs quotes"),
        ("0.0.0.0:9464", "`0.0.0.0:9464`, is text that needs quotes"),
        ("", "``, is missing: nothing follows the `=`"),
        ("-inf", "`-inf`, is TOML's infinity"),
        ("nan", "`nan`, is TOML's infinity or not-a-number"),
        ("'10s' x", "has text after its literal string's closing `'`"),
        ("'it''s'", "has text after its literal string's closing `'`"),
        ("'10s", "is a literal string without its closing `'`"),
        ("1.5.2", "`1.5.2`, is not a TOML number"),
    ] {
        let err = parse(&format!("[coldstart]\ndrain_timeout = {value}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(said), "{value}: {err}");
    }
    // Secrets are not named with the value: a headers value, a URL's password.
    let err = parse("[otel]\nexporter_otlp_headers = authorization=Bearer%20s3cret")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`<not shown>`") && !err.contains("s3cret"),
        "{err}"
    );
    let err = parse("[coldstart]\nmetrics_push_url = http://ci:s3cret@gw")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("http://<not shown>@gw") && !err.contains("s3cret"),
        "{err}"
    );
    // Nor in a line that could not be read at all: only its start is quoted.
    for (text, said) in [
        (
            "[coldstart]\nmetrics_push_url: \"http://ci:s3cret@gw:9091\"",
            "a line that begins `metrics_push_url...`",
        ),
        (
            "[coldstart] metrics_push_url = \"http://ci:s3cret@gw\"",
            "`[coldstart]` has more after it on its line",
        ),
        (
            "[otel] exporter_otlp_headers = \"authorization=s3cret\"",
            "`[otel]` has more after it on its line",
        ),
        (
            "[coldstart]\nhttp://ci:s3cret@gw",
            "a line that begins `http...`",
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(said) && !err.contains("s3cret"), "{err}");
    }
    // A line that looks like no key is not quoted at all: an access key pasted
    // alone, a megabyte of text.
    for line in [
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
        "0123456789abcdef0123456789abcdef".to_owned(),
        "x".repeat(100_000),
    ] {
        let err = parse(&format!("[coldstart]\n{line}"))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 300, "{err}");
        assert!(err.contains("got neither (the line is not shown"), "{err}");
        let err = parse(&format!("[{line}]")).unwrap_err().to_string();
        assert!(
            err.contains("its table is not one coldstart reads"),
            "{err}"
        );
        assert!(!err.contains(&line[..20]), "{err}");
        // Nor with `=` after it (base64's padding), as a key outside a table, a
        // dotted key or one that is not a setting, nor as a table's name with
        // more after it on its line.
        for text in [
            format!("[coldstart]\n{line}=="),
            format!("{line} = 1"),
            format!("[coldstart]\n{line}.x = 1"),
            format!("[{line}] x = 1"),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.len() < 300, "{err}");
            assert!(err.contains("not shown: it may hold a secret"), "{err}");
            assert!(!err.contains(&line[..20]), "{err}");
        }
    }
    let err = parse("[database]").unwrap_err().to_string();
    assert!(
        err.contains("`[database]` is not a table coldstart reads"),
        "{err}"
    );
}

/// A key for a variable coldstart reads from the environment only is said to be
/// one; the README lists it, so "not a setting" contradicted it.
#[test]
fn a_setting_read_from_the_environment_only_is_said_to_be_one() {
    let err = parse("[coldstart]\nprofile = \"a.profile\"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "`[coldstart] profile` is read from the environment only, as COLDSTART_PROFILE"
        ),
        "{err}"
    );
    let err = parse("[coldstart]\nthreads = 2").unwrap_err().to_string();
    assert!(err.contains("is not a setting coldstart reads"), "{err}");
    assert!(!err.contains("did you mean"), "{err}");
}

/// A key a typo away from a setting's names the setting, long keys too (a key of
/// over 32 characters was not shown at all, in case it was a secret).
#[test]
fn a_typo_of_a_key_names_the_setting_meant() {
    for (text, typo, meant) in [
        (
            "[otel]\ninstrumentation_http_known_method = \"GET\"",
            "[otel] instrumentation_http_known_method",
            "[otel] instrumentation_http_known_methods",
        ),
        (
            "[coldstart]\nstrategi = \"minimal\"",
            "[coldstart] strategi",
            "[coldstart] strategy",
        ),
        (
            "[coldstart]\nStrategy = \"minimal\"",
            "[coldstart] Strategy",
            "[coldstart] strategy",
        ),
        (
            "[otel]\nexporter_otlp_traces_client_certificat = \"c.pem\"",
            "[otel] exporter_otlp_traces_client_certificat",
            "[otel] exporter_otlp_traces_client_certificate",
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "`{typo}` is not a setting coldstart reads; did you mean `{meant}`?"
            )),
            "{err}"
        );
    }
    // Shown escaped, never as the character.
    let err = parse("[coldstart]\nstrat\u{1b}y = 1")
        .unwrap_err()
        .to_string();
    assert!(!err.chars().any(|c| c.is_control()), "{err:?}");
    assert!(err.contains("did you mean `[coldstart] strategy`"), "{err}");
}

/// Numbers TOML refuses are refused, as another TOML reader of the same file
/// would; those it takes keep their value.
#[test]
fn numbers_as_toml_spells_them() {
    let value = |v: &str| {
        parse(&format!("[otel]\nbsp_max_queue_size = {v}"))
            .map(|f| f.entries[0].value.clone())
            .map_err(|e| e.to_string())
    };
    for (v, expected) in [
        ("2048", "2048"),
        ("+2_048", "2048"),
        ("0", "0"),
        ("-1", "-1"),
        ("0.5", "0.5"),
        ("1e3", "1e3"),
        ("6.02E+2_3", "6.02E+23"),
        ("0x1_F", "31"),
    ] {
        assert_eq!(value(v).as_deref(), Ok(expected), "{v}");
    }
    for v in [
        "007", "0_1", "1__0", "1_", "_1", "5.", ".5", "1e", "1e_3", "1._5", "+0x10", "0x", "0x_1",
        "1.2.3", "--1", "1-2", "-", "+", "1e+", "-e5",
    ] {
        let err = value(v).unwrap_err();
        assert!(
            err.contains("TOML number") || err.contains("base its prefix"),
            "{v}: {err}"
        );
    }
    // Integers are 64-bit signed in TOML; escapes take hex digits only.
    // A hexadecimal number too large was "not a whole number in the base".
    for v in [
        "99999999999999999999",
        "0xFFFFFFFFFFFFFFFF",
        "0o7777777777777777777777",
    ] {
        let err = value(v).unwrap_err();
        assert!(err.contains("64-bit signed"), "{v}: {err}");
    }
    assert_eq!(
        value("9223372036854775807").as_deref(),
        Ok("9223372036854775807")
    );
    let escape = parse("[otel]\nservice_name = \"\\u+041\"").unwrap_err();
    assert!(
        escape.to_string().contains("bad \\u or \\U escape"),
        "{escape}"
    );
}

#[test]
fn the_environment_chooses_the_file() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert_eq!(
        which_file(vars(&[("COLDSTART_ENV", "prod"), ("APP_ENV", "dev")])),
        Ok(Some(("config/prod.toml".to_owned(), false)))
    );
    assert_eq!(
        which_file(vars(&[
            ("COLDSTART_CONFIG", "/etc/svc.toml"),
            ("COLDSTART_ENV", "prod")
        ])),
        Ok(Some(("/etc/svc.toml".to_owned(), true)))
    );
    assert_eq!(
        which_file(vars(&[("APP_ENV", "prod.eu-1")])),
        Ok(Some(("config/prod.eu-1.toml".to_owned(), false)))
    );
    // Blanks around a name or a path are not part of it, as for every setting.
    assert_eq!(
        which_file(vars(&[("COLDSTART_ENV", "prod ")])),
        Ok(Some(("config/prod.toml".to_owned(), false)))
    );
    assert_eq!(
        which_file(vars(&[("COLDSTART_CONFIG", " /etc/svc.toml\t")])),
        Ok(Some(("/etc/svc.toml".to_owned(), true)))
    );
    assert_eq!(which_file(vars(&[("COLDSTART_CONFIG", " off ")])), Ok(None));
    // A name that cannot name a file there is said: reading no file would drop
    // every setting in it without a word.
    for bad in ["../../etc/passwd", "prod eu", ".hidden", "a/b"] {
        let err = which_file(|k| (k == "APP_ENV").then(|| bad.to_owned())).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "config/<env>.toml: APP_ENV=`{bad}` cannot name it"
            )),
            "{err}"
        );
    }
}

#[test]
fn a_named_file_must_exist_and_others_may_be_missing() {
    let missing = "/nonexistent/coldstart-test.toml";
    let err =
        ConfigFile::find(|k| (k == "COLDSTART_CONFIG").then(|| missing.to_owned())).unwrap_err();
    assert!(err.to_string().starts_with(missing), "{err}");
    let none = ConfigFile::find(|k| (k == "COLDSTART_ENV").then(|| "no-such-env".to_owned()));
    assert_eq!(none, Ok(None));
}

/// A path that is not a regular file is refused by name, and not read: a FIFO
/// with no writer would block the open forever, `/dev/zero` would fill memory.
#[test]
fn a_file_that_is_not_a_regular_file_is_refused_without_reading_it() {
    let named = |path: String| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tx.send(ConfigFile::find(|k| {
                (k == "COLDSTART_CONFIG").then(|| path.clone())
            }))
        });
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .expect("the configuration file's read did not return")
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        named("/dev/zero".to_owned()),
        "/dev/zero: cannot be read (is a character device, not a regular file); \
         COLDSTART_CONFIG=off reads no file"
    );
    let dir = std::env::temp_dir().join(format!("coldstart-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("coldstart.toml");
    coldstart_test_support::fifo(&fifo);
    assert_eq!(
        named(fifo.display().to_string()),
        format!(
            "{}: cannot be read (is a FIFO, not a regular file); \
             COLDSTART_CONFIG=off reads no file",
            fifo.display()
        )
    );
    let large = dir.join("large.toml");
    std::fs::write(&large, vec![b'#'; (1 << 20) + 1]).unwrap();
    assert_eq!(
        named(large.display().to_string()),
        format!(
            "{}: cannot be read (is larger than 1 MiB, more than such a file holds); \
             COLDSTART_CONFIG=off reads no file",
            large.display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_variable_has_a_file_key_that_maps_back() {
    for variable in VARIABLES {
        let key = file_key(variable);
        let (table, key) = key[1..].split_once("] ").unwrap();
        assert_eq!(variable_of(table, key), Some(*variable));
    }
}

proptest! {
    #[test]
    fn parsing_never_panics(text in "\\PC*(\n\\PC*){0,4}") {
        let _ = parse(&text);
    }

    /// Values of any characters, control ones and carriage returns among them,
    /// under a table and a key coldstart reads, so that the value's parser is
    /// reached (random text mostly fails at its first line).
    #[test]
    fn values_never_panic(value in "[\\x00-\\x7f\\PC]{0,40}") {
        let _ = parse(&format!("[coldstart]\ndrain_timeout = {value}"));
        let _ = parse(&format!("[otel]\nservice_name = {value}\n"));
    }

    #[test]
    fn strings_round_trip(s in "[^\"\\\\\\x00-\\x08\\x0a-\\x1f\\x7f]*") {
        let file = parse(&format!("[otel]\nservice_name = \"{s}\"")).unwrap();
        prop_assert_eq!(&file.entries[0].value, &s);
    }
}

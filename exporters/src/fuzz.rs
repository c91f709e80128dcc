/*!
Entry points for the fuzz targets in `fuzz/`: the `/proc` parsers behind the process
metrics, which are not public API. Compiled only under `cfg(fuzzing)`, which
`cargo fuzz` sets.
*/

/// `/proc/self/stat` and `/proc/stat`.
pub fn process_files(text: &str) {
    if crate::metrics::process::parse_stat(text, 100.0, 4096.0).is_some() {
        // Fields are read after the last `)`, so a command name cannot shift them.
        assert!(text.contains(')'));
    }
    let _ = crate::metrics::process::parse_boot_time(text);
}

/*!
What the workspace's integration tests share: temporary directories, free ports and
plain HTTP requests, programs that are killed when the test ends, and the real tools
(Prometheus, the Pushgateway, the OTLP receiver) found with the CI rule: a tool missing
under `CI=true` fails the test; elsewhere the test says it is skipped and why.

A test that writes files puts them in a [`TempDir`] (or a [`TempFile`], one file in a
directory of its own): the directory is new, no other test of the process shares it
(tests run in parallel), and it is removed when dropped, so a failing assertion leaves
nothing behind either.

```
let dir = coldstart_test_support::temp_dir("example");
std::fs::write(dir.join("coldstart.toml"), "[coldstart]\n").unwrap();
let kept = dir.to_path_buf();
drop(dir);
assert!(!kept.exists());
```
*/
// A helper that cannot go on fails the test, loudly.
#![allow(clippy::unwrap_used)]

mod collector;
mod http;
mod lambda;
mod process;
mod temp;
mod tools;

pub use collector::Collector;
pub use http::{free_port, get, get_http10, get_with, poll, read_request};
pub use lambda::{run_as_function, runtime_api};
pub use process::{
    Lines, Reaper, output_within, start_server, start_server_without, status_within,
    wait_with_output_within,
};
pub use temp::{TempDir, TempFile, fifo, runnable_by_anyone, temp_dir, temp_file};
pub use tools::{
    in_ci, otlp_python, prometheus_query, skipped, start_prometheus, start_pushgateway, tool,
};

/*!
`cargo coldstart`: print the budget and plan (`doctor`), compare the cold starts of two
programs ([`compare`]), and measure start-up of whole processes ([`measure`]),
optionally inside a real cgroup ([`cgroup`]).

This crate is a tool, not part of any service: it may allocate, spawn and use
cgroups-rs freely. The measurement engine here is the one the start-up harness in
`benches/` uses; there is no second copy.
*/
#![warn(missing_docs, unreachable_pub)]

pub mod build;
pub mod cgroup;
pub mod compare;
pub mod doctor;
pub mod interrupt;
pub mod measure;
pub mod profile;

/// Makes a FIFO at `path`, for tests of what a path that is not a file does.
#[cfg(test)]
pub(crate) fn test_fifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt as _;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string and mode.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
}

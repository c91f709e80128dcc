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

#[coldstart::init(eager)]
fn unknown() {}

#[coldstart::init(critical, deferred)]
fn both_phases() {}

#[coldstart::init(critical, fatal)]
fn fatal_critical() {}

#[coldstart::init(name = " padded")]
fn bad_name() {}

#[coldstart::init(critical = true)]
fn valued_flag() {}

#[coldstart::init(fatal)]
fn fatal_without_deferred() {}

#[coldstart::init(self::deferred)]
fn a_path() {}

fn main() {}

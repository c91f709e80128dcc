#[coldstart::init(eager)]
fn unknown() {}

#[coldstart::init(critical, deferred)]
fn both_phases() {}

#[coldstart::init(critical, fatal)]
fn fatal_critical() {}

#[coldstart::init(name = " padded")]
fn bad_name() {}

#[coldstart::init(name = "app::db\u{200b}")]
fn invisible_name() {}

#[coldstart::init(critical = true)]
fn valued_flag() {}

#[coldstart::init(fatal)]
fn fatal_without_deferred() {}

#[coldstart::init(self::deferred)]
fn a_path() {}

// A static whose arguments are refused is still the `Lazy` it would be: the argument's
// error is the only one, none on its initialiser or where it is read.
#[coldstart::init(eager)]
static CONFIG: String = std::env::var("X").unwrap_or_default();

fn reads_it() -> String {
    (*CONFIG).clone()
}

fn main() {}

//! The ordering rule: what the first request needs runs before serving, longest
//! first (slow statics apart, each on its own thread, the rest one after the other);
//! everything else runs after the first response.
//!
//! A registration's declared phase always wins. Without one, a function runs before
//! serving (it has no reads to profile), and for a static the profile decides; a
//! registration the profile does not name runs before serving (the safe default,
//! since running early is never wrong, only slower). Without a profile, each list is
//! ordered by name. The rule is pure: same registrations and profile, same order.

use std::cmp::Reverse;

use super::profile::Profile;
use super::{Declared, Registration, Work};

/// When a registration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Before the body of `main`.
    BeforeServing,
    /// After the first response.
    AfterFirstResponse,
}

impl Place {
    /// A short name: `before_serving` or `after_first_response`.
    pub fn as_str(self) -> &'static str {
        match self {
            Place::BeforeServing => "before_serving",
            Place::AfterFirstResponse => "after_first_response",
        }
    }
}

/// A static the profile timed at this many microseconds or more runs apart, on a
/// thread of its own, beside the other registrations before serving. Starting one there
/// costs a thread; from a millisecond on, running apart was faster in every case
/// measured, sleeping or computing, in a 0.25-CPU cgroup too, and at 250 µs computing
/// was slower (BENCHMARKS.md, "Slow statics side by side").
pub const APART_FROM_MICROS: u64 = 1000;

/// The registrations split into the two phases, each in the order it runs.
#[derive(Debug, Default)]
pub struct Order {
    /// Run before the body of `main`, in this order. The first [`apart`](Order::apart)
    /// are started first, each on a thread of its own; the rest run one after the
    /// other beside them, and the body waits for all.
    pub before: Vec<&'static Registration>,
    /// How many of `before`, from its start, run apart: statics the profile timed at
    /// [`APART_FROM_MICROS`] or more, when the profile times the rest of `before`
    /// (all but its longest) at that much too: otherwise there is too little to
    /// overlap for a thread's cost. Only statics: their values are read through
    /// `Deref`, which waits for one being initialised elsewhere, so whatever needs one
    /// gets it whichever thread runs it. A function's effects have no such guard. 0
    /// without a profile, which has no durations.
    pub apart: usize,
    /// Run after the first response, in this order.
    pub after: Vec<&'static Registration>,
    /// What did not match between the profile and the program, and names shared by
    /// two registrations, as one line (warn once); `None` when all is well.
    pub mismatch: Option<String>,
}

impl Order {
    /// Orders `registrations` (in any order, e.g. link order) with `profile`.
    ///
    /// ```
    /// use coldstart_bootstrap::init::{Order, Profile, registrations};
    /// let profile = Profile::parse("coldstart-profile 1\n").unwrap();
    /// let order = Order::new(&registrations(), Some(&profile));
    /// assert!(order.before.is_empty() && order.after.is_empty());
    /// ```
    pub fn new(registrations: &[&'static Registration], profile: Option<&Profile<'_>>) -> Order {
        Order::of(registrations.iter().copied(), profile)
    }

    /// [`Order::new`] over any list of registrations, such as the whole
    /// [`INITS`](super::INITS) slice, without collecting it into a `Vec` first.
    ///
    /// ```
    /// use coldstart_bootstrap::init::{INITS, Order};
    /// let order = Order::of(INITS.iter(), None);
    /// assert_eq!(order.before.len() + order.after.len(), INITS.len());
    /// ```
    pub fn of<I>(mut registrations: I, profile: Option<&Profile<'_>>) -> Order
    where
        I: Iterator<Item = &'static Registration>,
    {
        // Generic only this far: one copy of the ordering (and its sorts) serves
        // every kind of list.
        match profile {
            None => by_name(registrations.map(|r| (0, r)).collect()),
            Some(p) => by_profile(&mut registrations, p),
        }
    }

    /// Where `name` runs, if it is registered.
    pub fn place(&self, name: &str) -> Option<Place> {
        if self.before.iter().any(|r| r.name == name) {
            Some(Place::BeforeServing)
        } else if self.after.iter().any(|r| r.name == name) {
            Some(Place::AfterFirstResponse)
        } else {
            None
        }
    }
}

/// No profile: declared phases, and the rest before serving; each list by name.
/// One sorted list is built and split; nothing is copied twice.
fn by_name(mut keyed: Vec<(u128, &'static Registration)>) -> Order {
    sort_keyed_by_name(&mut keyed);
    let shared = shared_names(&keyed);
    // Few registrations are deferred: `before` gets room for all of them at once.
    let mut before = Vec::with_capacity(keyed.len());
    let mut after = Vec::new();
    for (_, r) in keyed {
        match r.declared {
            Declared::Deferred => after.push(r),
            Declared::Auto | Declared::Critical => before.push(r),
        }
    }
    Order {
        before,
        after,
        apart: 0,
        mismatch: join(None, shared_line(&shared)),
    }
}

/// Sorts by name, as `a.name.cmp(b.name)` would.
pub(crate) fn sort_by_name(list: &mut [&'static Registration]) {
    let mut keyed: Vec<_> = list.iter().map(|&r| (0, r)).collect();
    sort_keyed_by_name(&mut keyed);
    for (slot, (_, r)) in list.iter_mut().zip(keyed) {
        *slot = r;
    }
}

/// Sorts the registrations by name, and gives each its sort key. Names share long
/// prefixes (a crate's module path), so each is first compared by the 16 bytes that
/// follow the prefix all of them share, read as one big-endian integer (zero past
/// the end); equal windows fall back to the whole names. With 1000 registrations
/// this orders them in about 30 µs less than comparing the names past the shared
/// prefix (BENCHMARKS.md, "Registry overhead"). The keys given are overwritten.
fn sort_keyed_by_name(keyed: &mut [(u128, &'static Registration)]) {
    let mut names = keyed.iter().map(|(_, r)| r.name.as_bytes());
    let Some(first) = names.next() else {
        return;
    };
    // At most every name's length, so slicing each name there is in bounds.
    let shared = names.fold(first.len(), |len, name| {
        first[..len]
            .iter()
            .zip(name)
            .take_while(|(a, b)| a == b)
            .count()
    });
    let window = |name: &str| {
        let rest = &name.as_bytes()[shared..];
        let mut bytes = [0u8; 16];
        let n = rest.len().min(16);
        bytes[..n].copy_from_slice(&rest[..n]);
        u128::from_be_bytes(bytes)
    };
    for (key, r) in keyed.iter_mut() {
        *key = window(r.name);
    }
    // Names are unique but for a mistake the order reports; unstable sort is faster.
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(b.1.name)));
}

/// With a profile: each list longest first, ties in profile order (name order in a
/// profile coldstart wrote), then what the profile does not name, by name. No string
/// is compared more than once per registration: the start-up path with a profile
/// is the one that must stay cheap.
fn by_profile(
    registrations: &mut dyn Iterator<Item = &'static Registration>,
    profile: &Profile<'_>,
) -> Order {
    let entries = profile.entries();
    // Whether a registration has claimed each profile line.
    let mut claimed = vec![false; entries.len()];
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut unprofiled = Vec::new();
    let mut shared = Vec::new();
    for r in registrations {
        let Some(line) = profile.position(r.name) else {
            unprofiled.push(r);
            continue;
        };
        if std::mem::replace(&mut claimed[line], true) {
            shared.push(r.name);
        }
        let entry = &entries[line];
        let key = (Reverse(entry.micros), line, r);
        // A function has no reads to profile: without a declared phase it runs before
        // serving, as it would without a profile, and the profile only orders it. So a
        // stale line (say, from when it was `deferred`) cannot keep it late for ever.
        let needed = entry.needed || !matches!(r.work, Work::Static(_));
        match (r.declared, needed) {
            (Declared::Critical, _) | (Declared::Auto, true) => before.push(key),
            (Declared::Deferred, _) | (Declared::Auto, false) => after.push(key),
        }
    }
    // Slow statics run apart when there is enough else to overlap them with: besides
    // the longest registration, the profile's times (none for what it does not name)
    // add up to the threshold. They go first, the order they are started in; each
    // part stays longest first.
    let (total, longest) = before.iter().fold(
        (0u64, 0u64),
        |(total, longest), &(Reverse(micros), _, _)| {
            (total.saturating_add(micros), longest.max(micros))
        },
    );
    let overlaps = total - longest >= APART_FROM_MICROS;
    let runs_apart = |micros: u64, r: &Registration| {
        overlaps && micros >= APART_FROM_MICROS && matches!(r.work, Work::Static(_))
    };
    before.sort_unstable_by_key(|&(Reverse(micros), line, r)| {
        (!runs_apart(micros, r), Reverse(micros), line)
    });
    let apart = before
        .iter()
        .take_while(|&&(Reverse(micros), _, r)| runs_apart(micros, r))
        .count();
    after.sort_unstable_by_key(|&(micros, line, _)| (micros, line));
    let mut unprofiled: Vec<_> = unprofiled.into_iter().map(|r| (0, r)).collect();
    sort_keyed_by_name(&mut unprofiled);
    shared.extend(shared_names(&unprofiled));
    let missing: Vec<&str> = unprofiled
        .iter()
        .filter(|(_, r)| r.declared == Declared::Auto)
        .map(|(_, r)| r.name)
        .collect();
    let mut order = Order {
        before: before.into_iter().map(|(_, _, r)| r).collect(),
        after: after.into_iter().map(|(_, _, r)| r).collect(),
        apart,
        mismatch: None,
    };
    for (_, r) in unprofiled {
        match r.declared {
            Declared::Deferred => order.after.push(r),
            Declared::Auto | Declared::Critical => order.before.push(r),
        }
    }
    // A line no registration claimed (a profile names each registration once).
    let unknown: Vec<&str> = entries
        .iter()
        .enumerate()
        .filter(|&(i, _)| !claimed[i])
        .map(|(_, e)| e.name)
        .collect();
    order.mismatch = join(mismatch(&missing, &unknown), shared_line(&shared));
    order
}

/// Names that appear twice in a list [`sort_keyed_by_name`] sorted. Equal names have equal
/// keys: only those pairs compare whole names.
fn shared_names(sorted: &[(u128, &'static Registration)]) -> Vec<&'static str> {
    sorted
        .windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[0].1.name == w[1].1.name)
        .map(|w| w[0].1.name)
        .collect()
}

fn shared_line(shared: &[&str]) -> Option<String> {
    (!shared.is_empty()).then(|| {
        format!(
            "names given to more than one registration (profiles cannot tell them apart; \
             give one a `name = \"...\"`): {}",
            listed(shared)
        )
    })
}

/// The first [`SHOWN`] of `names`, and how many more: a profile from another program can
/// name tens of thousands, which on one line would be megabytes.
fn listed(names: &[&str]) -> String {
    let shown: Vec<String> = names[..names.len().min(SHOWN)]
        .iter()
        // Whole, as registrations are named (a module path and an item, often past
        // 40 characters, whose end tells them apart); only a name from a file that
        // long is cut.
        .map(|name| super::profile::clip_to(name, 200))
        .collect();
    let mut text = shown.join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// How many names a line about the profile shows.
const SHOWN: usize = 10;

fn join(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

fn mismatch(missing: &[&str], unknown: &[&str]) -> Option<String> {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "{} not in the profile, run before serving (the default): {}",
            missing.len(),
            listed(missing)
        ));
    }
    if !unknown.is_empty() {
        parts.push(format!(
            "{} named in the profile but not registered, ignored: {}",
            unknown.len(),
            listed(unknown)
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{Lazy, Outcome, Work};

    fn ok() -> Outcome {
        Ok(())
    }

    /// A function registration.
    fn leak(name: &str, declared: Declared) -> &'static Registration {
        register(name, declared, Work::Fn(ok))
    }

    /// A static registration: the kind whose place a profile decides.
    fn leak_static(name: &str, declared: Declared) -> &'static Registration {
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        let lazy: &'static Lazy<u8> = Box::leak(Box::new(Lazy::new(name, || 0)));
        register(name, declared, Work::Static(lazy))
    }

    fn register(name: &str, declared: Declared, work: Work) -> &'static Registration {
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        Box::leak(Box::new(Registration::new(name, declared, false, work)))
    }

    fn names(list: &[&Registration]) -> Vec<&'static str> {
        list.iter().map(|r| r.name).collect()
    }

    fn regs() -> Vec<&'static Registration> {
        vec![
            leak_static("a", Declared::Auto),
            leak_static("b", Declared::Auto),
            leak("c", Declared::Deferred),
            leak("d", Declared::Critical),
            leak_static("e", Declared::Auto),
        ]
    }

    #[test]
    fn without_a_profile_undeclared_runs_before_serving_by_name() {
        let order = Order::new(&regs(), None);
        assert_eq!(names(&order.before), ["a", "b", "d", "e"]);
        assert_eq!(names(&order.after), ["c"]);
        assert_eq!(order.mismatch, None);
    }

    #[test]
    fn the_profile_places_undeclared_and_orders_longest_first() {
        let profile = Profile::parse(
            "coldstart-profile 1\nneeded 5 fn a\nlater 90 fn b\nneeded 50 fn e\nlater 1 fn d\nneeded 70 fn c\n",
        )
        .unwrap();
        let order = Order::new(&regs(), Some(&profile));
        // d and c keep their declared phases whatever the profile says.
        assert_eq!(names(&order.before), ["e", "a", "d"]);
        assert_eq!(names(&order.after), ["b", "c"]);
        assert_eq!(order.mismatch, None);
        assert_eq!(order.place("b"), Some(Place::AfterFirstResponse));
        assert_eq!(order.place("zz"), None);
    }

    #[test]
    fn a_function_without_a_phase_runs_before_serving_whatever_the_profile_says() {
        // `later` lines, as a profile recorded while `f` and `g` were `deferred` has.
        let profile = Profile::parse(
            "coldstart-profile 1\nlater 5 fn f\nlater 90 async g\nlater 50 static s\n",
        )
        .unwrap();
        let regs = [
            leak("f", Declared::Auto),
            register(
                "g",
                Declared::Auto,
                Work::Async(|| Box::pin(async { Ok(()) })),
            ),
            leak_static("s", Declared::Auto),
        ];
        let order = Order::new(&regs, Some(&profile));
        assert_eq!(names(&order.before), ["g", "f"], "longest first");
        assert_eq!(
            names(&order.after),
            ["s"],
            "a static's place is the profile's"
        );
        assert_eq!(order.mismatch, None);
    }

    #[test]
    fn slow_statics_run_apart_and_first_when_something_else_runs_too() {
        let profile = Profile::parse(
            "coldstart-profile 1\nneeded 1000 static slow\nneeded 999 static quick\n\
             needed 5000 fn f\nneeded 20000 static slowest\nlater 30000 static late\n",
        )
        .unwrap();
        let regs = [
            leak_static("slow", Declared::Auto),
            leak_static("quick", Declared::Auto),
            leak("f", Declared::Auto),
            leak_static("slowest", Declared::Auto),
            leak_static("late", Declared::Auto),
            leak("unprofiled", Declared::Auto),
        ];
        let order = Order::new(&regs, Some(&profile));
        // Statics from a millisecond, longest first; then the rest longest first, and
        // what the profile does not name. Functions never run apart.
        assert_eq!(
            names(&order.before),
            ["slowest", "slow", "f", "quick", "unprofiled"]
        );
        assert_eq!(order.apart, 2);
        assert_eq!(names(&order.after), ["late"]);

        // Without a profile there are no durations, so nothing runs apart.
        assert_eq!(Order::new(&regs, None).apart, 0);
    }

    #[test]
    fn a_slow_static_runs_apart_only_beside_a_millisecond_of_other_work() {
        let profile = Profile::parse(
            "coldstart-profile 1\nneeded 9000 static s\nneeded 999 fn quick\n\
             needed 1000 fn f\nneeded 1000 static t\n",
        )
        .unwrap();
        let apart = |regs: &[&'static Registration]| Order::new(regs, Some(&profile)).apart;
        let s = leak_static("s", Declared::Auto);
        assert_eq!(apart(&[s]), 0, "nothing to overlap with");
        assert_eq!(apart(&[s, leak("quick", Declared::Auto)]), 0, "too little");
        // What runs after the first response, or what the profile does not time,
        // adds nothing to overlap with.
        assert_eq!(apart(&[s, leak("d", Declared::Deferred)]), 0);
        assert_eq!(apart(&[s, leak("u", Declared::Auto)]), 0);
        let order = Order::new(&[leak("f", Declared::Auto), s], Some(&profile));
        assert_eq!((order.apart, names(&order.before)), (1, vec!["s", "f"]));
        // Two slow statics overlap each other.
        assert_eq!(apart(&[s, leak_static("t", Declared::Auto)]), 2);
    }

    #[test]
    fn sorting_by_name_matches_comparing_whole_names() {
        // A shared prefix, names that are prefixes of others, and names that differ
        // only after the 16-byte window.
        let given = [
            "app::b",
            "app::a",
            "app::",
            "app::aaaaaaaaaaaaaaaaaaaa2",
            "app::aaaaaaaaaaaaaaaaaaaa1",
            "app::aaaaaaaaaaaaaaaa",
            "app::B",
            "app::a\0",
        ];
        let mut list: Vec<_> = given.iter().map(|n| leak(n, Declared::Auto)).collect();
        sort_by_name(&mut list);
        let mut expected = given.to_vec();
        expected.sort();
        assert_eq!(names(&list), expected);
    }

    proptest::proptest! {
        #[test]
        fn sorting_by_name_is_a_name_sort(
            prefix in "[a-z:é]{0,20}",
            rest in proptest::collection::vec("[ab:_\\x00é]{0,24}", 0..40),
        ) {
            let all: Vec<String> = rest.iter().map(|r| format!("{prefix}{r}")).collect();
            let mut list: Vec<_> = all.iter().map(|n| leak(n, Declared::Auto)).collect();
            sort_by_name(&mut list);
            let mut expected: Vec<&str> = all.iter().map(String::as_str).collect();
            expected.sort_unstable();
            proptest::prop_assert_eq!(names(&list), expected);
        }
    }

    #[test]
    fn a_name_repeated_in_a_profile_built_in_code_is_not_called_unknown() {
        let entry = |needed| crate::init::profile::Entry {
            name: "a",
            needed,
            micros: 1,
            kind: "fn",
        };
        let profile = Profile::new(vec![entry(false), entry(true)]);
        let order = Order::new(&[leak_static("a", Declared::Auto)], Some(&profile));
        assert_eq!(
            names(&order.before),
            ["a"],
            "needed if either entry says so"
        );
        assert_eq!(order.mismatch, None);
    }

    #[test]
    fn a_shared_name_is_reported() {
        let regs = vec![leak("a", Declared::Auto), leak("a", Declared::Deferred)];
        let order = Order::new(&regs, None);
        assert_eq!(order.before.len() + order.after.len(), 2);
        assert!(
            order
                .mismatch
                .unwrap()
                .ends_with("give one a `name = \"...\"`): a")
        );
    }

    #[test]
    fn missing_and_unknown_names_fall_back_and_are_reported_in_one_line() {
        let profile =
            Profile::parse("coldstart-profile 1\nlater 9 fn a\nneeded 3 static gone::X\n").unwrap();
        let order = Order::new(&regs(), Some(&profile));
        assert_eq!(names(&order.before), ["b", "d", "e"]);
        assert_eq!(names(&order.after), ["a", "c"]);
        assert_eq!(
            order.mismatch.as_deref(),
            Some(
                "2 not in the profile, run before serving (the default): b, e; \
                 1 named in the profile but not registered, ignored: gone::X"
            )
        );
    }

    /// A profile of another program names thousands this one lacks: the line names
    /// ten and counts the rest, instead of growing to megabytes.
    #[test]
    fn a_long_mismatch_names_ten_and_counts_the_rest() {
        let text: String = std::iter::once("coldstart-profile 1\n".to_owned())
            .chain((0..5000).map(|i| format!("later 1 fn other::f{i:04}\n")))
            .collect();
        let profile = Profile::parse(&text).unwrap();
        let order = Order::new(&regs(), Some(&profile));
        let line = order.mismatch.unwrap();
        assert!(line.len() < 500, "{} bytes", line.len());
        assert!(
            line.ends_with("5000 named in the profile but not registered, ignored: other::f0000, other::f0001, other::f0002, other::f0003, other::f0004, other::f0005, other::f0006, other::f0007, other::f0008, other::f0009 and 4990 more"),
            "{line}"
        );
    }
}

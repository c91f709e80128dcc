//! The ordering rule: what the first request needs runs before serving, longest
//! first; everything else runs after the first response.
//!
//! A registration's declared phase always wins. Without one, the profile decides;
//! a registration the profile does not name runs before serving (the safe default,
//! since running early is never wrong, only slower). Without a profile, each list is
//! ordered by name. The rule is pure: same registrations and profile, same order.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::profile::Profile;
use super::{Declared, Fx, Registration};

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

/// The registrations split into the two phases, each in the order it runs.
#[derive(Debug, Default)]
pub struct Order {
    /// Run before the body of `main`, in this order.
    pub before: Vec<&'static Registration>,
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
    pub fn new(registrations: &[&'static Registration], profile: Option<&Profile>) -> Order {
        match profile {
            None => by_name(registrations),
            Some(p) => by_profile(registrations, p),
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
fn by_name(registrations: &[&'static Registration]) -> Order {
    let mut all = registrations.to_vec();
    // Names are unique but for a mistake, reported below; unstable sort is faster.
    all.sort_unstable_by(|a, b| a.name.cmp(b.name));
    let shared = shared_names(&all);
    let (before, after) = all
        .into_iter()
        .partition(|r| r.declared != Declared::Deferred);
    Order {
        before,
        after,
        mismatch: join(None, shared_line(&shared)),
    }
}

/// With a profile: each list longest first, ties in profile order (name order in a
/// profile coldstart wrote), then what the profile does not name, by name. No string
/// is compared more than once per registration: the start-up path with a profile
/// is the one that must stay cheap.
fn by_profile(registrations: &[&'static Registration], profile: &Profile) -> Order {
    // Each profile line by name, and whether a registration has claimed it.
    let mut lines: HashMap<&str, (usize, bool), BuildHasherDefault<Fx>> =
        HashMap::with_capacity_and_hasher(profile.entries.len(), BuildHasherDefault::default());
    for (i, e) in profile.entries.iter().enumerate() {
        lines.insert(e.name.as_str(), (i, false));
    }
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut unprofiled = Vec::new();
    let mut shared = Vec::new();
    for &r in registrations {
        let Some((line, claimed)) = lines.get_mut(r.name) else {
            unprofiled.push(r);
            continue;
        };
        if std::mem::replace(claimed, true) {
            shared.push(r.name);
        }
        let entry = &profile.entries[*line];
        let key = (Reverse(entry.micros), *line, r);
        match (r.declared, entry.needed) {
            (Declared::Critical, _) | (Declared::Auto, true) => before.push(key),
            (Declared::Deferred, _) | (Declared::Auto, false) => after.push(key),
        }
    }
    before.sort_unstable_by_key(|&(micros, line, _)| (micros, line));
    after.sort_unstable_by_key(|&(micros, line, _)| (micros, line));
    unprofiled.sort_unstable_by(|a, b| a.name.cmp(b.name));
    shared.extend(shared_names(&unprofiled));
    let missing: Vec<&str> = unprofiled
        .iter()
        .filter(|r| r.declared == Declared::Auto)
        .map(|r| r.name)
        .collect();
    let mut order = Order {
        before: before.into_iter().map(|(_, _, r)| r).collect(),
        after: after.into_iter().map(|(_, _, r)| r).collect(),
        mismatch: None,
    };
    for r in unprofiled {
        match r.declared {
            Declared::Deferred => order.after.push(r),
            Declared::Auto | Declared::Critical => order.before.push(r),
        }
    }
    let unknown: Vec<&str> = profile
        .entries
        .iter()
        .map(|e| e.name.as_str())
        .filter(|n| lines.get(n).is_some_and(|(_, claimed)| !claimed))
        .collect();
    order.mismatch = join(mismatch(&missing, &unknown), shared_line(&shared));
    order
}

/// Names that appear twice in a list sorted by name.
fn shared_names(sorted: &[&'static Registration]) -> Vec<&'static str> {
    sorted
        .windows(2)
        .filter(|w| w[0].name == w[1].name)
        .map(|w| w[0].name)
        .collect()
}

fn shared_line(shared: &[&str]) -> Option<String> {
    (!shared.is_empty()).then(|| {
        format!(
            "names given to more than one registration (profiles cannot tell them apart; \
             give one a `name = \"...\"`): {}",
            shared.join(", ")
        )
    })
}

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
            missing.join(", ")
        ));
    }
    if !unknown.is_empty() {
        parts.push(format!(
            "{} named in the profile but not registered, ignored: {}",
            unknown.len(),
            unknown.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{Outcome, Work};

    fn ok() -> Outcome {
        Ok(())
    }

    fn leak(name: &str, declared: Declared) -> &'static Registration {
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        Box::leak(Box::new(Registration::new(
            name,
            declared,
            false,
            Work::Fn(ok),
        )))
    }

    fn names(list: &[&Registration]) -> Vec<&'static str> {
        list.iter().map(|r| r.name).collect()
    }

    fn regs() -> Vec<&'static Registration> {
        vec![
            leak("a", Declared::Auto),
            leak("b", Declared::Auto),
            leak("c", Declared::Deferred),
            leak("d", Declared::Critical),
            leak("e", Declared::Auto),
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
}
